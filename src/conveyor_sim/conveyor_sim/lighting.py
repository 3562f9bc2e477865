"""Lighting domains of the cell: scene lights (intensity, colour temperature, direction, ambient)
plus the camera's response (exposure, white balance, sensor noise, flicker, glare).

A domain changes both what MuJoCo renders and how the simulated camera develops the image, so
the colour statistics of a frame really shift between domains (a colour-based recogniser trained
under `daylight` sees orange cans under `warm_tungsten` and grey noise under `night_noise`).
Pure numpy; no rclpy, no MuJoCo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


class UnknownDomainError(ValueError):
    """A lighting domain name that is not in DOMAINS; the message lists the valid ones."""

    def __init__(self, name: object):
        self.name = name
        self.valid_domains = list(DOMAINS)
        super().__init__(f"unknown lighting domain {name!r}; valid domains: {', '.join(DOMAINS)}")


@dataclass(frozen=True)
class LightingDomain:
    name: str
    intensity: float  # scale of the scene lights' diffuse term
    colour_temp_k: float  # correlated colour temperature of the scene lights
    direction: tuple[float, float, float]  # key light direction (world, pointing where light goes)
    ambient: float  # ambient light level, 0..1
    exposure: float  # camera gain applied to the rendered image
    white_balance: tuple[float, float, float]  # camera per-channel gain (1, 1, 1) = balanced for 5600 K
    noise_std: float  # std of additive Gaussian sensor noise, in 8-bit grey levels
    flicker_amp: float = 0.0  # relative intensity modulation between frames (fluorescent tubes)
    flicker_hz: float = 0.0
    glare: float = 0.0  # strength of a low-sun veiling glare from the image's left edge
    description: str = ""

    def light_rgb(self) -> np.ndarray:
        return colour_temperature_rgb(self.colour_temp_k)


def colour_temperature_rgb(kelvin: float) -> np.ndarray:
    """RGB (max channel 1) of a black body at `kelvin`, Tanner Helland's fit, normalised so that
    5600 K (the camera's white point) maps to (1, 1, 1)."""

    def raw(k: float) -> np.ndarray:
        t = k / 100.0
        r = 255.0 if t <= 66 else 329.698727446 * (t - 60) ** -0.1332047592
        g = (
            99.4708025861 * math.log(t) - 161.1195681661
            if t <= 66
            else 288.1221695283 * (t - 60) ** -0.0755148492
        )
        if t >= 66:
            b = 255.0
        elif t <= 19:
            b = 0.0
        else:
            b = 138.5177312231 * math.log(t - 10) - 305.0447927307
        return np.clip(np.array([r, g, b]), 0.0, 255.0) / 255.0

    rgb = raw(kelvin) / raw(5600.0)
    return rgb / rgb.max()


DOMAINS: dict[str, LightingDomain] = {
    d.name: d
    for d in (
        LightingDomain(
            "daylight",
            1.0,
            5600,
            (-0.2, 0.1, -1.0),
            0.35,
            1.0,
            (1.0, 1.0, 1.0),
            1.5,
            description="bright, neutral, light from above",
        ),
        LightingDomain(
            "overcast_dim",
            0.45,
            7000,
            (0.0, 0.0, -1.0),
            0.25,
            1.1,
            (0.97, 1.0, 1.06),
            4.0,
            description="dim, bluish, flat light",
        ),
        LightingDomain(
            "warm_tungsten",
            0.8,
            2800,
            (0.3, -0.3, -1.0),
            0.25,
            1.0,
            (1.12, 1.0, 0.80),
            2.5,
            description="orange tungsten lamps, camera still balanced for daylight",
        ),
        LightingDomain(
            "cold_fluorescent_flicker",
            0.85,
            4200,
            (0.0, 0.2, -1.0),
            0.3,
            1.0,
            (0.92, 1.08, 1.0),
            3.0,
            flicker_amp=0.25,
            flicker_hz=7.3,
            description="greenish tubes whose 100 Hz flicker aliases against the frame rate",
        ),
        LightingDomain(
            "low_sun_glare",
            1.3,
            3600,
            (1.0, 0.2, -0.35),
            0.3,
            1.15,
            (1.05, 1.0, 0.9),
            2.0,
            glare=0.55,
            description="low, warm side light with veiling glare",
        ),
        LightingDomain(
            "night_noise",
            0.22,
            3200,
            (0.1, -0.1, -1.0),
            0.10,
            2.6,
            (1.0, 0.95, 1.05),
            14.0,
            description="very dim, high camera gain, strong sensor noise",
        ),
    )
}


# Ranges a custom lighting spec must respect: physically sensible, and wide enough to describe
# lighting far from every named domain (the adapter manager's "unknown" test uses such specs).
SPEC_RANGES: dict[str, tuple[float, float]] = {
    "intensity": (0.01, 5.0),
    "colour_temp_k": (1000.0, 15000.0),
    "ambient": (0.0, 1.0),
    "exposure": (0.05, 10.0),
    "noise_std": (0.0, 64.0),
    "flicker_amp": (0.0, 0.9),
    "flicker_hz": (0.0, 100.0),
    "glare": (0.0, 1.0),
}
WHITE_BALANCE_RANGE = (0.2, 5.0)
CUSTOM = "custom"


def custom_domain(name: str = CUSTOM, **spec) -> LightingDomain:
    """A lighting domain from a spec (fields of LightingDomain; missing ones from daylight).
    Raises ValueError naming the field and the bad value."""
    base = DOMAINS["daylight"]
    known = set(SPEC_RANGES) | {"white_balance", "direction", "description"}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ValueError(
            f"lighting spec: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    if not isinstance(name, str) or not name.strip() or name in DOMAINS:
        raise ValueError(f"lighting spec: name {name!r} must be non-empty and not a named domain")
    values = {k: spec.get(k, getattr(base, k)) for k in SPEC_RANGES}
    for k, (lo, hi) in SPEC_RANGES.items():
        v = values[k]
        if (
            isinstance(v, bool)
            or not isinstance(v, (int, float))
            or not math.isfinite(v)
            or not lo <= v <= hi
        ):
            raise ValueError(f"lighting spec: {k} = {v!r} outside [{lo}, {hi}]")
        values[k] = float(v)
    wb = tuple(float(x) for x in spec.get("white_balance", base.white_balance))
    if len(wb) != 3 or not all(
        math.isfinite(x) and WHITE_BALANCE_RANGE[0] <= x <= WHITE_BALANCE_RANGE[1] for x in wb
    ):
        raise ValueError(
            f"lighting spec: white_balance = {list(wb)!r}, expected 3 gains in {list(WHITE_BALANCE_RANGE)}"
        )
    d = tuple(float(x) for x in spec.get("direction", base.direction))
    if len(d) != 3 or not all(math.isfinite(x) for x in d) or math.hypot(*d) < 1e-6 or d[2] >= 0:
        raise ValueError(f"lighting spec: direction = {list(d)!r}, expected 3 numbers pointing down (z < 0)")
    return LightingDomain(
        name, values["intensity"], values["colour_temp_k"], d, values["ambient"], values["exposure"], wb,
        values["noise_std"], values["flicker_amp"], values["flicker_hz"], values["glare"],
        str(spec.get("description", "custom lighting spec")),
    )  # fmt: skip


def get_domain(name: str) -> LightingDomain:
    """The domain called `name`; raises UnknownDomainError listing the valid names."""
    try:
        return DOMAINS[name]
    except (KeyError, TypeError):
        raise UnknownDomainError(name) from None


def develop(image: np.ndarray, domain: LightingDomain, rng: np.random.Generator, t: float) -> np.ndarray:
    """Apply the camera side of `domain` (exposure, white balance, flicker, glare, noise) to an
    HxWx3 uint8 RGB render taken at sim time `t`. Returns a new uint8 image."""
    img = image.astype(np.float32)
    gain = domain.exposure * np.asarray(domain.white_balance, dtype=np.float32)
    if domain.flicker_amp > 0.0:
        gain = gain * (1.0 + domain.flicker_amp * math.sin(2.0 * math.pi * domain.flicker_hz * t))
    img *= gain[None, None, :]
    if domain.glare > 0.0:
        h, w = img.shape[:2]
        ramp = np.exp(-np.linspace(0.0, 4.0, w, dtype=np.float32))  # strongest at the left edge
        veil = 255.0 * domain.glare * ramp[None, :, None] * np.array([1.0, 0.9, 0.7], np.float32)
        img = img + veil * (1.0 - img / 255.0).clip(0.0, 1.0)
    if domain.noise_std > 0.0:
        img += rng.normal(0.0, domain.noise_std, size=img.shape).astype(np.float32)
    return np.clip(img + 0.5, 0.0, 255.0).astype(np.uint8)


@dataclass(frozen=True)
class ShiftSchedule:
    """A "shift day": lighting domains one after another, `(domain, duration_s)` each; the last one
    holds after the schedule ends."""

    segments: tuple[tuple[str, float], ...]

    def __post_init__(self):
        if not self.segments:
            raise ValueError("shift schedule needs at least one (domain, duration_s) segment")
        for name, dur in self.segments:
            get_domain(name)
            if not (isinstance(dur, (int, float)) and math.isfinite(dur) and dur > 0):
                raise ValueError(f"shift segment {name!r}: duration must be > 0 s, got {dur!r}")

    @classmethod
    def shift_day(cls, total_s: float, domains: list[str] | None = None) -> ShiftSchedule:
        """Equal slices of `total_s` through `domains` (default: every domain, in DOMAINS order)."""
        names = list(domains) if domains else list(DOMAINS)
        return cls(tuple((n, total_s / len(names)) for n in names))

    @property
    def duration(self) -> float:
        return float(sum(d for _, d in self.segments))

    def domain_at(self, t: float) -> str:
        acc = 0.0
        for name, dur in self.segments:
            acc += dur
            if t < acc:
                return name
        return self.segments[-1][0]
