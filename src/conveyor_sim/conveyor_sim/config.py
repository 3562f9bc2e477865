"""Settings of the cell (`SimConfig`, the core's) and of the `conveyor_sim` node
(`ConveyorSimConfig`: the core's plus the node's own). ROS-free; each field is the single source
of its default, range and description (s1s2.params), the node's parameters derive from them.
"""

from __future__ import annotations

from dataclasses import dataclass

from conveyor_sim.lighting import DOMAINS, ShiftSchedule
from s1s2.cell import DEFAULT_CELL_PATH
from s1s2.params import ConfigError, check_fields, param

NODE_NAME = "conveyor_sim"


@dataclass
class SimConfig:
    """Configuration of one simulated cell. Validated on construction (bad value named)."""

    seed: int = param(0, "spawner / noise seed", min=0, max=2**31 - 1)
    lighting: str = param("daylight", "lighting domain (settable at runtime)", choices=tuple(DOMAINS))
    camera_width: int = param(
        0, "camera image width, pixels; 0 = the cell description's camera", min=0, max=4096, read_only=True
    )  # fmt: skip
    camera_height: int = param(
        0, "camera image height, pixels; 0 = the cell description's camera", min=0, max=4096, read_only=True
    )  # fmt: skip
    camera_fovy_deg: float = param(
        0.0, "vertical field of view, degrees; 0 = the cell description's", min=0.0, max=170.0, read_only=True
    )  # fmt: skip
    physics_dt: float = param(0.002, "physics time step, s", min=1e-4, max=0.01, read_only=True)
    belt_speed: float = param(
        -1.0, "belt speed, m/s; negative = the cell description's nominal speed", min=-1.0, max=1.0
    )  # fmt: skip
    spawn_interval_s: float = param(
        4.0, "mean seconds between items (0 = no spawning)", min=0.0, max=120.0, read_only=True
    )  # fmt: skip
    spawn_jitter: float = param(0.3, "+- fraction of the spawn interval", min=0.0, max=0.99, read_only=True)
    item_classes: tuple = param(
        (), "item classes the spawner draws from; () = every class of the cell", ros=False
    )
    pool_per_class: int = param(6, "simultaneous items of one class", min=1, max=50, read_only=True)
    render_enabled: bool = param(True, "render the camera", ros=False)

    def __post_init__(self):
        check_fields(self)
        for name in ("camera_width", "camera_height"):
            if 0 < getattr(self, name) < 16:
                raise ConfigError(f"parameter '{name}': {getattr(self, name)!r} is below 16 (0 = the cell's)")
        if 0.0 < self.camera_fovy_deg < 5.0:
            raise ConfigError(
                f"parameter 'camera_fovy_deg': {self.camera_fovy_deg!r} is below 5 (0 = the cell's)"
            )
        self.item_classes = tuple(self.item_classes)

    def classes(self, desc) -> list[str]:
        """The spawner's classes in `desc`; ConfigError naming an unknown one."""
        for c in self.item_classes:
            if c not in desc.class_names:
                raise ConfigError(
                    f"parameter 'item_classes': unknown class {c!r}; valid: {', '.join(desc.class_names)}"
                )
        return list(self.item_classes) or desc.class_names


@dataclass
class ConveyorSimConfig(SimConfig):
    cell: str = param(DEFAULT_CELL_PATH, "cell description YAML", read_only=True, must_exist=True)
    controller: str = param(
        "stack",
        "who moves the arm: 'stack' applies /joint_commands, 'expert' runs the scripted expert from "
        "ground truth (incoming commands are counted, not applied)",
        choices=("stack", "expert"),
    )
    lighting_spec: str = param(
        "",
        'custom lighting as JSON, e.g. \'{"name": "sodium_vapour", "colour_temp_k": 1900, "intensity": 0.7}\' '
        "(fields of conveyor_sim.lighting.custom_domain); replaces 'lighting' at start-up; '' = 'lighting'",
        read_only=True,
    )
    lighting_schedule: str = param(
        "", "shift-day timeline 'domain:seconds,domain:seconds,...' (repeats); '' = fixed lighting"
    )  # fmt: skip
    camera_rate_hz: float = param(
        0.0, "camera publish rate, Hz; 0 = the cell description's camera rate", min=0.0, max=60.0
    )  # fmt: skip
    joint_state_rate_hz: float = param(50.0, "arm joint state publish rate", min=1.0, max=500.0)
    belt_rate_hz: float = param(50.0, "belt state publish rate", min=1.0, max=500.0)
    vacuum_rate_hz: float = param(50.0, "vacuum (holding) sensor publish rate", min=1.0, max=500.0)
    ground_truth_rate_hz: float = param(10.0, "ground truth publish rate", min=0.5, max=100.0)
    physics_rate_hz: float = param(
        100.0, "rate of the physics timer (steps real time in between)", min=20.0, max=1000.0, read_only=True
    )  # fmt: skip
    diagnostics_period_s: float = param(1.0, "diagnostics publish period", min=0.1, max=60.0)

    def __post_init__(self):
        super().__post_init__()
        parse_schedule(self.lighting_schedule)
        parse_lighting_spec(self.lighting_spec)
        if 0.0 < self.camera_rate_hz < 0.5:
            raise ConfigError(
                f"parameter 'camera_rate_hz': {self.camera_rate_hz!r} is below 0.5 (0 = the cell's)"
            )

    def sim_config(self) -> SimConfig:
        return SimConfig(**{k: getattr(self, k) for k in SimConfig.__dataclass_fields__})


def parse_lighting_spec(text: str):
    """JSON lighting spec -> LightingDomain; '' -> None. Raises ConfigError naming the bad value."""
    import json

    from conveyor_sim.lighting import custom_domain

    text = (text or "").strip()
    if not text:
        return None
    try:
        spec = json.loads(text)
        if not isinstance(spec, dict):
            raise ValueError(f"expected a JSON object, got {type(spec).__name__}")
        spec = dict(spec)
        return custom_domain(spec.pop("name", "custom"), **spec)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"parameter 'lighting_spec': {text[:200]!r}: {exc}") from exc


def parse_schedule(text: str) -> ShiftSchedule | None:
    """'daylight:60,night_noise:30' -> ShiftSchedule; '' -> None. Raises ConfigError naming the bad part."""
    text = (text or "").strip()
    if not text:
        return None
    segs = []
    for part in text.split(","):
        name, sep, secs = part.strip().partition(":")
        try:
            if not sep:
                raise ValueError("expected domain:seconds")
            segs.append((name.strip(), float(secs)))
        except ValueError as exc:
            raise ConfigError(f"parameter 'lighting_schedule': bad segment {part!r} ({exc})") from exc
    try:
        return ShiftSchedule(tuple(segs))
    except ValueError as exc:
        raise ConfigError(f"parameter 'lighting_schedule': {exc}") from exc
