"""Parameters of the `conveyor_sim` node (ROS-free: ParamSpecs + conversion to SimConfig)."""

from __future__ import annotations

from conveyor_sim.cell import SimConfig
from conveyor_sim.lighting import DOMAINS, ShiftSchedule
from s1s2.params import ConfigError, ParamSpec

NODE_NAME = "conveyor_sim"

SPECS: list[ParamSpec] = [
    ParamSpec("seed", 0, "spawner / noise seed", min=0, max=2**31 - 1),
    ParamSpec(
        "controller",
        "stack",
        "who moves the arm: 'stack' applies /joint_commands, 'expert' runs the "
        "scripted expert from ground truth (incoming commands are counted, not applied)",
        choices=("stack", "expert"),
    ),  # fmt: skip
    ParamSpec("lighting", "daylight", "lighting domain (settable at runtime)", choices=tuple(DOMAINS)),
    ParamSpec(
        "lighting_schedule",
        "",
        "shift-day timeline 'domain:seconds,domain:seconds,...' (repeats); '' = fixed lighting",
    ),  # fmt: skip
    ParamSpec("camera_width", 320, "camera image width, pixels", min=16, max=1920, read_only=True),
    ParamSpec("camera_height", 240, "camera image height, pixels", min=16, max=1080, read_only=True),
    ParamSpec("camera_rate_hz", 10.0, "camera publish rate", min=0.5, max=60.0),
    ParamSpec("joint_state_rate_hz", 50.0, "arm joint state publish rate", min=1.0, max=500.0),
    ParamSpec("belt_rate_hz", 50.0, "belt state publish rate", min=1.0, max=500.0),
    ParamSpec("ground_truth_rate_hz", 10.0, "ground truth publish rate", min=0.5, max=100.0),
    ParamSpec(
        "physics_rate_hz",
        100.0,
        "rate of the physics timer (steps real time in between)",
        min=20.0,
        max=1000.0,
        read_only=True,
    ),  # fmt: skip
    ParamSpec("belt_speed", 0.10, "belt speed, m/s", min=0.0, max=1.0),
    ParamSpec(
        "spawn_interval_s",
        4.0,
        "mean seconds between items (0 = no spawning)",
        min=0.0,
        max=120.0,
        read_only=True,
    ),  # fmt: skip
    ParamSpec("diagnostics_period_s", 1.0, "diagnostics publish period", min=0.1, max=60.0),
]


def sim_config(p: dict) -> SimConfig:
    try:
        return SimConfig(
            seed=int(p["seed"]),
            lighting=p["lighting"],
            camera_width=int(p["camera_width"]),
            camera_height=int(p["camera_height"]),
            belt_speed=float(p["belt_speed"]),
            spawn_interval_s=float(p["spawn_interval_s"]),
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


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
