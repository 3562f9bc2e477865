"""Input crop for the VLM (numpy only; no torch, no ROS).

The sim VLM sees a 128 px square. Squashing the whole 320x240 camera frame into it leaves the belt,
a band a quarter of the frame high, about 32 rows, and a can about 4 x 5 pixels. A model trained
with `input_crop` in its card sees only the box that holds every pick target (the belt and the
items standing on it, with a margin), so the belt fills the square. The box is a fixed fraction
of the frame (no tracking, nothing learned): the planner crops before colour constancy and the
image processor, and the training frames were cropped the same way. Answers stay in pixels of the
full frame, so nothing after the model changes. A card without `input_crop` (any user's hub
model, or the sim VLM trained without it) gets the whole frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CARD_KEY = "input_crop"


@dataclass(frozen=True)
class InputCrop:
    """Box (left, top, right, bottom) as fractions of the frame's width and height."""

    box: tuple[float, float, float, float]

    def __post_init__(self):
        b = tuple(self.box)
        ok = len(b) == 4 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in b
        )
        if not ok or not (0.0 <= b[0] < b[2] <= 1.0 and 0.0 <= b[1] < b[3] <= 1.0):
            raise ValueError(
                f"{CARD_KEY}.box = {list(b)!r}; expected [left, top, right, bottom] in [0, 1], left < right, top < bottom"
            )
        object.__setattr__(self, "box", tuple(float(v) for v in b))

    @classmethod
    def from_card(cls, card: dict) -> InputCrop | None:
        """The card's crop, None when it has none. ValueError names a malformed entry."""
        spec = card.get(CARD_KEY)
        if spec is None:
            return None
        if not isinstance(spec, dict) or "box" not in spec:
            raise ValueError(
                f"{CARD_KEY} = {spec!r}; expected {{'box': [left, top, right, bottom]}} (fractions)"
            )
        return cls(tuple(spec["box"]))

    @classmethod
    def around(cls, uv: np.ndarray, width: int, height: int, margin_px: float) -> InputCrop:
        """The box around pixels `uv` (N, 2) of a width x height frame, `margin_px` wider each side,
        clipped to the frame, on whole pixels."""
        uv = np.asarray(uv, np.float64)
        lo = np.floor(uv.min(0) - margin_px)
        hi = np.ceil(uv.max(0) + margin_px)
        u0, v0 = max(0.0, lo[0]), max(0.0, lo[1])
        u1, v1 = min(float(width), hi[0]), min(float(height), hi[1])
        return cls((u0 / width, v0 / height, u1 / width, v1 / height))

    def to_card(self) -> dict:
        return {"box": [round(v, 6) for v in self.box]}

    def pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(u0, v0, u1, v1) whole pixels of a width x height frame."""
        b = self.box
        return (
            int(round(b[0] * width)),
            int(round(b[1] * height)),
            int(round(b[2] * width)),
            int(round(b[3] * height)),
        )

    def apply(self, images: np.ndarray) -> np.ndarray:
        """The box of frames (H, W, C) or (N, H, W, C), as a view."""
        x = np.asarray(images)
        if x.ndim not in (3, 4):
            raise ValueError(f"images are {x.shape}; expected (H, W, C) or (N, H, W, C)")
        h, w = x.shape[-3], x.shape[-2]
        u0, v0, u1, v1 = self.pixels(w, h)
        return x[..., v0:v1, u0:u1, :]

    def to_unit(self, uv: np.ndarray, width: int, height: int) -> np.ndarray:
        """Full-frame pixels (..., 2) -> [0, 1) coordinates inside the box (outside: < 0 or >= 1)."""
        u0, v0, u1, v1 = self.pixels(width, height)
        uv = np.asarray(uv, np.float64)
        return np.stack([(uv[..., 0] - u0) / (u1 - u0), (uv[..., 1] - v0) / (v1 - v0)], -1)
