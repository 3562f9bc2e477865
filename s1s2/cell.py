"""The one description of the recycling cell, read from `config/cell.yaml` (numpy + PyYAML only).

Neither node owns it: the simulator generates MuJoCo and SDF from it, the planner takes the camera,
belt, bins and classes -> bins from it, System 1 takes the arm's joint limits from it, and the
scripted expert and the oracle take their geometry from it. A real cell with other bins or another
camera pose is another YAML file, not a code change (every node has a `cell` parameter).

    from s1s2.cell import DEFAULT_CELL, load_cell
    cell = load_cell("config/cell.yaml")
    cell.bin("metal").center; cell.class_to_bin["aluminium_can"]; cell.camera.intrinsics()

Units: metres, kilograms, seconds, radians. World frame: z up, belt running along +x.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path

import numpy as np

from s1s2 import resolve_path
from s1s2.files import load_mapping

DEFAULT_CELL_PATH = "config/cell.yaml"
SHAPES = ("box", "cylinder", "sphere", "ellipsoid")
TEXTURES = ("flat", "stripes", "noise", "checker")


class CellError(ValueError):
    """A cell description that cannot be used; the message names the file and the field."""


def _finite(where: str, values, n: int | None = None) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in (values if isinstance(values, (list, tuple)) else [values]))
    except (TypeError, ValueError):
        raise CellError(f"{where}: expected numbers, got {values!r}") from None
    if n is not None and len(out) != n:
        raise CellError(f"{where}: expected {n} numbers, got {values!r}")
    if not all(math.isfinite(v) for v in out):
        raise CellError(f"{where}: values must be finite, got {values!r}")
    return out


def _positive(where: str, value) -> float:
    (v,) = _finite(where, value, 1)
    if v <= 0:
        raise CellError(f"{where}: must be > 0, got {value!r}")
    return v


@dataclass(frozen=True)
class JointSpec:
    name: str
    lower: float
    upper: float
    max_velocity: float  # rad/s
    max_acceleration: float  # rad/s^2
    home: float

    def __post_init__(self):
        w = f"joint {self.name!r}"
        _finite(w, [self.lower, self.upper, self.home])
        if not self.lower < self.upper:
            raise CellError(f"{w}: lower {self.lower} must be below upper {self.upper}")
        if not self.lower <= self.home <= self.upper:
            raise CellError(f"{w}: home {self.home} outside [{self.lower}, {self.upper}]")
        _positive(f"{w}: max_velocity", self.max_velocity)
        _positive(f"{w}: max_acceleration", self.max_acceleration)


@dataclass(frozen=True)
class ArmSpec:
    """4-joint arm: pan about z at `base`, then lift, elbow and wrist pitch in the arm's vertical
    plane (conventions in s1s2.kinematics)."""

    base: tuple[float, float, float] = (0.0, -0.55, 0.0)
    shoulder_height: float = 0.50  # pedestal: base to shoulder_lift axis
    upper_len: float = 0.50
    fore_len: float = 0.45
    tool_len: float = 0.12  # wrist axis to suction-cup tip
    joints: tuple[JointSpec, ...] = ()

    def __post_init__(self):
        _finite("arm.base", self.base, 3)
        for name in ("shoulder_height", "upper_len", "fore_len", "tool_len"):
            _positive(f"arm.{name}", getattr(self, name))
        if len(self.joints) != 4:
            raise CellError(f"arm.joints: the arm has 4 joints, got {len(self.joints)}")

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

    def __post_init__(self):
        for name in ("length", "width", "surface_height"):
            _positive(f"belt.{name}", getattr(self, name))
        _finite("belt.speed", self.speed, 1)


@dataclass(frozen=True)
class BinSpec:
    bin_id: str
    center: tuple[float, float]  # x, y of the bin's centre
    size: tuple[float, float, float] = (0.30, 0.30, 0.25)  # x, y, height

    def __post_init__(self):
        _finite(f"bin {self.bin_id!r}: center", self.center, 2)
        for i, v in enumerate(_finite(f"bin {self.bin_id!r}: size", self.size, 3)):
            _positive(f"bin {self.bin_id!r}: size[{i}]", v)


@dataclass(frozen=True)
class ItemClassSpec:
    """One item class. `half_size` follows MuJoCo's convention per shape:
    box/ellipsoid (hx, hy, hz); cylinder (radius, half_length, 0); sphere (radius, 0, 0).
    `lying` cylinders have their axis horizontal (bottles on a belt lie down)."""

    name: str
    bin_id: str
    shape: str
    half_size: tuple[float, float, float]
    mass: float  # kg
    colours: tuple[tuple[float, float, float, float], ...]  # base RGBA palette; jittered per item
    texture: str  # "flat" | "stripes" | "noise" | "checker"
    lying: bool = False
    size_jitter: float = 0.10  # +- fraction, per item
    colour_jitter: float = 0.06  # +- per channel, per item

    def __post_init__(self):
        w = f"item class {self.name!r}"
        if self.shape not in SHAPES:
            raise CellError(f"{w}: shape {self.shape!r}; valid: {', '.join(SHAPES)}")
        if self.texture not in TEXTURES:
            raise CellError(f"{w}: texture {self.texture!r}; valid: {', '.join(TEXTURES)}")
        _finite(f"{w}: half_size", self.half_size, 3)
        _positive(f"{w}: mass", self.mass)
        if not self.colours:
            raise CellError(f"{w}: needs at least one colour")
        for c in self.colours:
            if not all(0.0 <= v <= 1.0 for v in _finite(f"{w}: colour", c, 4)):
                raise CellError(f"{w}: colour {list(c)} must be RGBA in [0, 1]")

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


@dataclass(frozen=True)
class CameraSpec:
    """Overhead RGB camera looking straight down: image right = world +x, image up = world +y.

    Its optical frame (ROS convention: x right, y down, z forward) is the world frame turned 180
    degrees about x: quaternion (x, y, z, w) = (1, 0, 0, 0)."""

    name: str = "overhead"
    position: tuple[float, float, float] = (0.0, -0.45, 1.80)
    fovy_deg: float = 60.0  # vertical field of view
    width: int = 320
    height: int = 240
    rate_hz: float = 10.0

    OPTICAL_ORIENTATION_XYZW = (1.0, 0.0, 0.0, 0.0)

    def __post_init__(self):
        _finite("camera.position", self.position, 3)
        (fovy,) = _finite("camera.fovy_deg", self.fovy_deg, 1)
        if not 1.0 < fovy < 179.0:
            raise CellError(f"camera.fovy_deg: {fovy} outside (1, 179)")
        for name in ("width", "height"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 2:
                raise CellError(f"camera.{name}: expected an integer >= 2, got {v!r}")
        _positive("camera.rate_hz", self.rate_hz)

    def intrinsics(self, width: int | None = None, height: int | None = None) -> np.ndarray:
        """3x3 pinhole K for an image of width x height pixels (default: the camera's own size).

        The focal length follows from the vertical field of view; the principal point is the
        image centre in pixel-centre coordinates ((w - 1) / 2, (h - 1) / 2), the CameraInfo/OpenCV
        convention in which the top-left pixel's centre is (0, 0). A MuJoCo render test checks it.
        """
        w = self.width if width is None else int(width)
        h = self.height if height is None else int(height)
        f = (h / 2.0) / math.tan(math.radians(self.fovy_deg) / 2.0)
        return np.array([[f, 0.0, (w - 1) / 2.0], [0.0, f, (h - 1) / 2.0], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class LightSpec:
    name: str
    position: tuple[float, float, float]
    direction: tuple[float, float, float]
    diffuse: float  # nominal intensity, scaled by the lighting domain

    def __post_init__(self):
        _finite(f"light {self.name!r}: position", self.position, 3)
        d = _finite(f"light {self.name!r}: direction", self.direction, 3)
        if math.hypot(*d) < 1e-9:
            raise CellError(f"light {self.name!r}: direction must not be zero")
        _positive(f"light {self.name!r}: diffuse", self.diffuse)


@dataclass(frozen=True)
class CellDescription:
    arm: ArmSpec
    belt: BeltSpec
    items: tuple[ItemClassSpec, ...]
    camera: CameraSpec
    lights: tuple[LightSpec, ...]
    bins: tuple[BinSpec, ...]
    place_height: float = 0.50  # suction-tip height over a bin when releasing
    source: str = field(default="", compare=False)  # the file it was read from

    def __post_init__(self):
        ids = [b.bin_id for b in self.bins]
        names = [c.name for c in self.items]
        for what, values in (
            ("bin ids", ids),
            ("item class names", names),
            ("joint names", self.arm.joint_names),
        ):
            if not values or len(set(values)) != len(values):
                raise CellError(f"{what} must be unique and non-empty, got {values}")
        for c in self.items:
            if c.bin_id not in ids:
                raise CellError(f"item class {c.name!r}: unknown bin {c.bin_id!r}; bins: {', '.join(ids)}")
        _positive("place_height", self.place_height)
        if not self.lights:
            raise CellError("lights: at least one light is needed")

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

    @property
    def class_to_bin(self) -> dict[str, str]:
        return {c.name: c.bin_id for c in self.items}

    def place_point(self, bin_id: str) -> np.ndarray:
        """Where the suction tip releases an item into `bin_id` (world, above the bin's centre)."""
        b = self.bin(bin_id)
        return np.array([b.center[0], b.center[1], self.place_height])


def _build(cls, data, where: str, **nested):
    """cls(**data) with unknown/missing keys reported by name; `nested` converts sub-entries."""
    if not isinstance(data, dict):
        raise CellError(f"{where}: expected a mapping, got {type(data).__name__}")
    known = {f.name for f in fields(cls) if f.name != "source"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise CellError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    kwargs = {}
    for key, value in data.items():
        if key in nested:
            value = nested[key](value)
        elif isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a missing required key
        raise CellError(f"{where}: {exc}") from None


def _items(where: str, cls, entries) -> tuple:
    if not isinstance(entries, list):
        raise CellError(f"{where}: expected a list, got {type(entries).__name__}")
    return tuple(_build(cls, e, f"{where}[{i}]") for i, e in enumerate(entries))


def cell_from_dict(data, source: str = "") -> CellDescription:
    """Build and validate a CellDescription from parsed YAML; CellError names the bad field."""
    where = source or "(dict)"
    try:
        if not isinstance(data, dict):
            raise CellError(f"expected a mapping at the top level, got {type(data).__name__}")
        sections = ("arm", "belt", "bins", "items", "camera", "lights")
        unknown = sorted(set(data) - set(sections) - {"place_height"})
        missing = [k for k in sections if k not in data]
        if unknown or missing:
            raise CellError(f"unknown key(s) {unknown}, missing section(s) {missing}")
        return CellDescription(
            arm=_build(ArmSpec, data["arm"], "arm", joints=lambda v: _items("arm.joints", JointSpec, v)),
            belt=_build(BeltSpec, data["belt"], "belt"),
            items=_items("items", ItemClassSpec, data["items"]),
            camera=_build(CameraSpec, data["camera"], "camera"),
            lights=_items("lights", LightSpec, data["lights"]),
            bins=_items("bins", BinSpec, data["bins"]),
            place_height=data.get("place_height", 0.50),
            source=source,
        )
    except CellError as exc:
        raise CellError(f"cell description {where}: {exc}") from None


def load_cell(path: str | Path = DEFAULT_CELL_PATH) -> CellDescription:
    """Read a cell YAML (relative paths from the repo root); CellError names the file and problem."""
    p = resolve_path(path)
    data = load_mapping(p, "cell description", CellError, f"looked for {str(path)!r}")
    return cell_from_dict(data, str(p))


@cache
def default_cell() -> CellDescription:
    return load_cell(DEFAULT_CELL_PATH)


DEFAULT_CELL = default_cell()
