"""The one description of the recycling conveyor cell.

Both simulators are generated from it (MuJoCo MJCF for the embedded default, SDF for Gazebo),
and System 1's joint limits in config/fast_policy.yaml are checked against it. Units: metres,
kilograms, seconds, radians. World frame: z up, belt running along +x.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class JointSpec:
    name: str
    lower: float
    upper: float
    max_velocity: float  # rad/s
    max_acceleration: float  # rad/s^2
    home: float


@dataclass(frozen=True)
class ArmSpec:
    base: tuple[float, float, float] = (0.0, -0.55, 0.0)
    shoulder_height: float = 0.50  # pedestal: base to shoulder_lift axis
    upper_len: float = 0.50
    fore_len: float = 0.45
    tool_len: float = 0.12  # wrist axis to suction-cup tip
    joints: tuple[JointSpec, ...] = (
        JointSpec("shoulder_pan", -2.9, 2.9, 3.0, 12.0, 1.5708),
        JointSpec("shoulder_lift", -0.6, 1.9, 2.5, 10.0, 0.9),
        JointSpec("elbow", -2.6, 0.3, 3.0, 12.0, -1.6),
        JointSpec("wrist_pitch", -2.6, 2.6, 4.0, 16.0, -0.87),
    )

    @property
    def joint_names(self) -> list[str]:
        return [j.name for j in self.joints]

    def lower_limits(self) -> np.ndarray:
        return np.array([j.lower for j in self.joints])

    def upper_limits(self) -> np.ndarray:
        return np.array([j.upper for j in self.joints])

    def velocity_limits(self) -> np.ndarray:
        return np.array([j.max_velocity for j in self.joints])

    def acceleration_limits(self) -> np.ndarray:
        return np.array([j.max_acceleration for j in self.joints])

    def home(self) -> np.ndarray:
        return np.array([j.home for j in self.joints])


@dataclass(frozen=True)
class BeltSpec:
    length: float = 2.0  # along x, centred on x = 0
    width: float = 0.40
    surface_height: float = 0.30
    speed: float = 0.10  # nominal, m/s


@dataclass(frozen=True)
class BinSpec:
    bin_id: str
    center: tuple[float, float]  # x, y of the bin's centre
    size: tuple[float, float, float] = (0.22, 0.22, 0.25)  # x, y, height


@dataclass(frozen=True)
class CellDescription:
    arm: ArmSpec = field(default_factory=ArmSpec)
    belt: BeltSpec = field(default_factory=BeltSpec)
    bins: tuple[BinSpec, ...] = (
        BinSpec("plastic", (-0.50, -0.95)),
        BinSpec("metal", (-0.25, -0.95)),
        BinSpec("paper", (0.0, -1.00)),
        BinSpec("glass", (0.25, -0.95)),
        BinSpec("residual", (0.50, -0.95)),
    )

    def bin(self, bin_id: str) -> BinSpec:
        for b in self.bins:
            if b.bin_id == bin_id:
                return b
        raise KeyError(f"unknown bin {bin_id!r}; bins: {', '.join(b.bin_id for b in self.bins)}")


DEFAULT_CELL = CellDescription()
