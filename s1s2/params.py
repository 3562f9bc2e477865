"""ROS-free parameter specifications: one `ParamSpec` per node parameter.

`s1s2.ros.declare_parameters` turns these into rclpy parameters with `ParameterDescriptor`s;
cores and tests use `validate` directly. A bad value raises `ConfigError` naming the parameter
and the value, so a node stops at start with one clear line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    """A parameter value a node cannot run with."""


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: Any
    description: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None
    read_only: bool = False  # model paths and anything only read at start
    must_exist: bool = False  # a path that must exist when the node starts
    extra: dict = field(default_factory=dict)

    def validate(self, value: Any) -> Any:
        """Return `value` if acceptable, else raise ConfigError naming parameter and value."""
        if isinstance(self.default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"parameter '{self.name}': expected true/false, got {value!r}")
            return value
        if isinstance(self.default, (int, float)) and not isinstance(self.default, bool):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"parameter '{self.name}': expected a number, got {value!r}")
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"parameter '{self.name}': must be finite, got {value!r}")
            if self.min is not None and value < self.min:
                raise ConfigError(f"parameter '{self.name}': {value!r} is below the minimum {self.min}")
            if self.max is not None and value > self.max:
                raise ConfigError(f"parameter '{self.name}': {value!r} is above the maximum {self.max}")
            return value
        if self.choices is not None and value not in self.choices:
            raise ConfigError(
                f"parameter '{self.name}': unknown value {value!r}; valid: {', '.join(self.choices)}"
            )
        if self.must_exist:
            from s1s2 import resolve_path

            if not resolve_path(value).exists():
                raise ConfigError(
                    f"parameter '{self.name}': path {value!r} does not exist "
                    f"(resolved to {resolve_path(value)}); run `make models` or fix the path"
                )
        return value


def validate_all(specs: list[ParamSpec], values: dict[str, Any]) -> dict[str, Any]:
    """Validate a dict of values against specs (unknown names are an error, defaults fill gaps)."""
    by_name = {s.name: s for s in specs}
    unknown = sorted(set(values) - set(by_name))
    if unknown:
        raise ConfigError(f"unknown parameter(s): {', '.join(unknown)}; known: {', '.join(sorted(by_name))}")
    return {s.name: s.validate(values.get(s.name, s.default)) for s in specs}
