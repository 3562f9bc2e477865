"""Configuration dataclasses as the single source of parameters (ROS-free).

Each node's settings are one dataclass whose fields carry their default, range and description
in `field(metadata=...)` (the way peft's `LoraConfig` uses `field(metadata={"help": ...})`):

    @dataclass
    class ControllerConfig:
        rate_hz: float = param(50.0, "control loop rate", min=1.0, max=1000.0, read_only=True)

        def __post_init__(self):
            check_fields(self)           # ranges, choices, types: ConfigError naming field + value

`param_specs(ControllerConfig)` derives one `ParamSpec` per field; `s1s2.ros.declare_parameters`
turns those into rclpy parameters with ParameterDescriptors (description, range, read-only) and
builds the dataclass from the declared values. Cores and tests build the dataclass directly.
A bad value raises `ConfigError` naming the parameter and the value, so a node stops at start
with one clear line.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass
from typing import Any


class ConfigError(ValueError):
    """A parameter value a node cannot run with."""


_META = "s1s2_param"


def param(
    default: Any,
    help: str,
    *,
    min: float | None = None,
    max: float | None = None,
    choices: tuple[str, ...] | None = None,
    read_only: bool = False,
    must_exist: bool = False,
    length: int | None = None,
    ros: bool = True,
) -> Any:
    """A dataclass field that is also a node parameter. `ros=False`: a core setting that nodes do
    not expose (its type has no ROS equivalent, e.g. an optional value). `length`: a list of
    exactly this many elements. Lists get a fresh copy of `default` per instance."""
    meta = {
        _META: ParamMeta(
            help, min, max, tuple(choices) if choices else None, read_only, must_exist, length, ros
        )
    }
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class ParamMeta:
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None
    read_only: bool = False
    must_exist: bool = False
    length: int | None = None
    ros: bool = True


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: name, default, description, range/choices; `validate` checks a value."""

    name: str
    default: Any
    description: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None
    read_only: bool = False  # model paths and anything only read at start
    must_exist: bool = False  # a path that must exist when the node starts
    length: int | None = None  # lists: exact number of elements

    def validate(self, value: Any) -> Any:
        """Return `value` if acceptable, else raise ConfigError naming parameter and value."""
        d = self.default
        if isinstance(d, (list, tuple)):
            if not isinstance(value, (list, tuple)):
                raise ConfigError(f"parameter '{self.name}': expected a list, got {value!r}")
            if self.length is not None and len(value) != self.length:
                raise ConfigError(
                    f"parameter '{self.name}': expected {self.length} values, got {len(value)}: {list(value)!r}"
                )
            if d:
                item = dataclasses.replace(self, default=d[0], length=None)
                for v in value:
                    item.validate(v)
            return value
        if isinstance(d, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"parameter '{self.name}': expected true/false, got {value!r}")
            return value
        if isinstance(d, (int, float)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"parameter '{self.name}': expected a number, got {value!r}")
            if isinstance(d, int) and not isinstance(value, int):
                raise ConfigError(f"parameter '{self.name}': expected an integer, got {value!r}")
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"parameter '{self.name}': must be finite, got {value!r}")
            if self.min is not None and value < self.min:
                raise ConfigError(f"parameter '{self.name}': {value!r} is below the minimum {self.min}")
            if self.max is not None and value > self.max:
                raise ConfigError(f"parameter '{self.name}': {value!r} is above the maximum {self.max}")
            return value
        if isinstance(d, str) and not isinstance(value, str):
            raise ConfigError(f"parameter '{self.name}': expected a string, got {value!r}")
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


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    raise TypeError(f"field {f.name!r} has no default")


def _spec(f: dataclasses.Field) -> ParamSpec:
    m: ParamMeta = f.metadata[_META]
    return ParamSpec(
        f.name, _field_default(f), m.help, m.min, m.max, m.choices, m.read_only, m.must_exist, m.length
    )


def param_fields(cls_or_obj) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls_or_obj) if _META in f.metadata]


def param_specs(cls_or_obj, ros_only: bool = True) -> list[ParamSpec]:
    """ParamSpecs of a config dataclass's `param` fields (by default only those nodes expose)."""
    return [_spec(f) for f in param_fields(cls_or_obj) if not ros_only or f.metadata[_META].ros]


def check_fields(obj) -> None:
    """Validate every `param` field of a config dataclass instance (call from __post_init__).
    Fields whose default is None (optional settings) accept None."""
    for f in param_fields(obj):
        value = getattr(obj, f.name)
        spec = _spec(f)
        if spec.default is None or (value is None and not f.metadata[_META].ros):
            continue
        spec.validate(value)


def from_values(cls, values: dict[str, Any]):
    """`cls(**values)` where an unknown name is a ConfigError listing the known ones."""
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown parameter(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return cls(**values)


def to_values(obj, ros_only: bool = True) -> dict[str, Any]:
    """{name: value} of a config's `param` fields, as a node would declare them."""
    return {s.name: getattr(obj, s.name) for s in param_specs(obj, ros_only)}
