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
    size: tuple[float, float, float] = (0.30, 0.30, 0.25)  # x, y, height


@dataclass(frozen=True)
class ItemClassSpec:
    """One MRF item class. `half_size` follows MuJoCo's convention per shape:
    box/ellipsoid (hx, hy, hz); cylinder (radius, half_length, 0); sphere (radius, 0, 0).
    `lying` cylinders have their axis horizontal (bottles on a belt lie down)."""

    name: str
    bin_id: str
    shape: str  # "box" | "cylinder" | "sphere" | "ellipsoid"
    half_size: tuple[float, float, float]
    mass: float  # kg
    colours: tuple[tuple[float, float, float, float], ...]  # base RGBA palette; jittered per item
    texture: str  # texture style used for the class material: "flat" | "stripes" | "noise" | "checker"
    lying: bool = False
    size_jitter: float = 0.10  # +- fraction, per item
    colour_jitter: float = 0.06  # +- per channel, per item

    def half_height(self, scale: float = 1.0) -> float:
        """Height of the top surface above the centre when resting on the belt."""
        if self.shape == "cylinder":
            return scale * (self.half_size[0] if self.lying else self.half_size[1])
        if self.shape == "sphere":
            return scale * self.half_size[0]
        return scale * self.half_size[2]

    def bbox(self, scale: float = 1.0) -> tuple[float, float, float]:
        """Full bounding-box size (x, y, z) in the item's resting frame."""
        h = self.half_size
        if self.shape == "cylinder":
            r, hl = h[0], h[1]
            b = (2 * hl, 2 * r, 2 * r) if self.lying else (2 * r, 2 * r, 2 * hl)
        elif self.shape == "sphere":
            b = (2 * h[0],) * 3
        else:
            b = (2 * h[0], 2 * h[1], 2 * h[2])
        return tuple(scale * v for v in b)


ITEM_CLASSES: tuple[ItemClassSpec, ...] = (
    ItemClassSpec(
        "pet_bottle",
        "plastic",
        "cylinder",
        (0.033, 0.105, 0.0),
        0.03,
        ((0.55, 0.80, 0.95, 1.0), (0.35, 0.65, 0.90, 1.0), (0.75, 0.90, 0.95, 1.0)),
        "stripes",
        lying=True,
    ),
    ItemClassSpec(
        "hdpe_jug",
        "plastic",
        "box",
        (0.06, 0.045, 0.08),
        0.06,
        ((0.95, 0.95, 0.92, 1.0), (0.95, 0.85, 0.30, 1.0), (0.90, 0.50, 0.60, 1.0)),
        "flat",
    ),
    ItemClassSpec(
        "aluminium_can",
        "metal",
        "cylinder",
        (0.033, 0.061, 0.0),
        0.015,
        ((0.78, 0.78, 0.82, 1.0), (0.85, 0.10, 0.12, 1.0), (0.15, 0.25, 0.75, 1.0)),
        "stripes",
    ),
    ItemClassSpec(
        "cardboard",
        "paper",
        "box",
        (0.10, 0.075, 0.025),
        0.08,
        ((0.62, 0.45, 0.26, 1.0), (0.70, 0.52, 0.32, 1.0)),
        "noise",
    ),
    ItemClassSpec(
        "paper",
        "paper",
        "box",
        (0.105, 0.074, 0.006),
        0.01,
        ((0.96, 0.96, 0.96, 1.0), (0.92, 0.92, 0.85, 1.0), (0.85, 0.90, 0.96, 1.0)),
        "checker",
    ),
    ItemClassSpec(
        "glass_bottle",
        "glass",
        "cylinder",
        (0.036, 0.11, 0.0),
        0.30,
        ((0.10, 0.45, 0.15, 1.0), (0.40, 0.22, 0.08, 1.0), (0.60, 0.75, 0.65, 1.0)),
        "flat",
        lying=True,
    ),
    ItemClassSpec(
        "residual",
        "residual",
        "ellipsoid",
        (0.055, 0.045, 0.035),
        0.05,
        ((0.25, 0.25, 0.25, 1.0), (0.35, 0.30, 0.25, 1.0), (0.20, 0.22, 0.30, 1.0)),
        "noise",
    ),
)


@dataclass(frozen=True)
class CameraSpec:
    """Overhead RGB camera looking straight down (image right = world +x, image up = world +y)."""

    name: str = "overhead"
    position: tuple[float, float, float] = (0.0, -0.45, 1.80)
    fovy_deg: float = 60.0  # vertical field of view
    width: int = 320
    height: int = 240
    rate_hz: float = 10.0


@dataclass(frozen=True)
class LightSpec:
    name: str
    position: tuple[float, float, float]
    direction: tuple[float, float, float]
    diffuse: float  # nominal intensity, scaled by the lighting domain


@dataclass(frozen=True)
class CellDescription:
    arm: ArmSpec = field(default_factory=ArmSpec)
    belt: BeltSpec = field(default_factory=BeltSpec)
    items: tuple[ItemClassSpec, ...] = ITEM_CLASSES
    camera: CameraSpec = field(default_factory=CameraSpec)
    lights: tuple[LightSpec, ...] = (
        LightSpec("key", (0.6, -0.2, 2.5), (-0.2, 0.0, -1.0), 0.8),
        LightSpec("fill", (-1.0, -1.0, 2.2), (0.3, 0.3, -1.0), 0.3),
    )
    bins: tuple[BinSpec, ...] = (
        BinSpec("plastic", (-0.66, -0.95)),
        BinSpec("metal", (-0.33, -0.95)),
        BinSpec("paper", (0.0, -0.95)),
        BinSpec("glass", (0.33, -0.95)),
        BinSpec("residual", (0.66, -0.95)),
    )

    def bin(self, bin_id: str) -> BinSpec:
        for b in self.bins:
            if b.bin_id == bin_id:
                return b
        raise KeyError(f"unknown bin {bin_id!r}; bins: {', '.join(b.bin_id for b in self.bins)}")

    def item_class(self, name: str) -> ItemClassSpec:
        for c in self.items:
            if c.name == name:
                return c
        raise KeyError(f"unknown item class {name!r}; classes: {', '.join(c.name for c in self.items)}")

    @property
    def class_names(self) -> list[str]:
        return [c.name for c in self.items]

    @property
    def bin_ids(self) -> list[str]:
        return [b.bin_id for b in self.bins]


DEFAULT_CELL = CellDescription()
