"""Input colour constancy for the VLM (numpy only; no torch, no ROS).

Before the image processor, each frame's three channels are scaled so that their medians match the
reference RGB the model was trained under (its model card's `input_normalisation`). In the
conveyor cell the belt fills most of the frame, so the per-channel median is the belt's colour and
the gains undo a global colour cast and exposure change (tungsten tint, dim overcast light, a
fluorescent tube's flicker) the way a camera's auto white balance would, using a surface that is
always in view. What a gain cannot undo (sensor noise, a glare gradient, the colour of the light on
the items themselves) is left to the lighting domain's LoRA adapter.

Daylight frames get gains close to 1 (the reference is daylight's median), so a model trained on
raw daylight frames sees almost the same images. A model whose card has no `input_normalisation`
(any user's hub model) gets its frames unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CARD_KEY = "input_normalisation"
METHOD = "channel_median"
# A frame whose channel median is near black (lens cap, dead camera) must not be stretched into
# pure noise: gains are clipped to this range.
GAIN_RANGE = (0.2, 8.0)


@dataclass(frozen=True)
class InputNorm:
    """Per-channel median gains towards `reference_rgb` (8-bit levels, the model's training light)."""

    reference_rgb: tuple[float, float, float]
    method: str = METHOD

    def __post_init__(self):
        if self.method != METHOD:
            raise ValueError(f"{CARD_KEY}.method = {self.method!r}; supported: {METHOD!r}")
        ref = tuple(self.reference_rgb)
        if len(ref) != 3 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 1.0 <= v <= 255.0
            for v in ref
        ):
            raise ValueError(f"{CARD_KEY}.reference_rgb = {list(ref)!r}; expected 3 levels in [1, 255]")
        object.__setattr__(self, "reference_rgb", tuple(float(v) for v in ref))

    @classmethod
    def from_card(cls, card: dict) -> InputNorm | None:
        """The card's normalisation, None when it has none. ValueError names a malformed entry."""
        spec = card.get(CARD_KEY)
        if spec is None:
            return None
        if not isinstance(spec, dict) or "reference_rgb" not in spec:
            raise ValueError(
                f"{CARD_KEY} = {spec!r}; expected {{'method': {METHOD!r}, 'reference_rgb': [r, g, b]}}"
            )
        return cls(tuple(spec["reference_rgb"]), spec.get("method", METHOD))

    def to_card(self) -> dict:
        return {"method": self.method, "reference_rgb": [round(v, 2) for v in self.reference_rgb]}

    def gains(self, images: np.ndarray) -> np.ndarray:
        """(..., 3) gains of uint8 frames (H, W, 3) or (N, H, W, 3)."""
        x = np.asarray(images)
        flat = x.reshape(*x.shape[:-3], -1, 3)
        med = np.median(flat, axis=-2).astype(np.float32)
        g = np.asarray(self.reference_rgb, np.float32) / np.maximum(med, 1.0)
        return np.clip(g, *GAIN_RANGE)

    def apply(self, images: np.ndarray) -> np.ndarray:
        """Normalised uint8 copy of uint8 frames (H, W, 3) or (N, H, W, 3)."""
        x = np.asarray(images)
        if x.dtype != np.uint8 or x.ndim not in (3, 4) or x.shape[-1] != 3:
            raise ValueError(f"images are {x.dtype} {x.shape}; expected uint8 (H, W, 3) or (N, H, W, 3)")
        g = self.gains(x)[..., None, None, :]
        return np.clip(np.rint(x.astype(np.float32) * g), 0, 255).astype(np.uint8)


def for_adapter(card_norm: InputNorm | None, input_normalisation: bool | None) -> InputNorm | None:
    """The normalisation plans get while an adapter is active: the card's, unless the adapter was
    trained on raw frames (its manifest's `input_normalisation` False; None: no adapter or no
    manifest yet). The planner and the training-side evaluation both decide through this."""
    return None if input_normalisation is False else card_norm


def reference_of(pixels: np.ndarray) -> tuple[float, float, float]:
    """The reference RGB of a training set: the median over frames of each frame's channel medians."""
    x = np.asarray(pixels)
    med = np.median(x.reshape(len(x), -1, 3), axis=1)
    return tuple(float(v) for v in np.median(med, axis=0))
