"""Cheap lighting features of an RGB image (numpy + OpenCV, no rclpy).

Most statistics are computed on a downscaled copy (area interpolation, `downscale_width` columns)
so a 640x480 frame costs well under a millisecond or two. The noise estimate is the exception: area
downscaling averages sensor noise away, so it is measured on a full-resolution centre crop instead.

Feature names are fixed (`FEATURE_NAMES`) and saved with every classifier, so a classifier trained
on one feature set refuses to run on another. Meaning of each feature (luma = Rec. 601 Y' of the
gamma-encoded image, scaled to 0..1):

  mean_luma           mean luma
  luma_p5/p50/p95     5th / 50th / 95th luma percentile
  contrast            RMS contrast: standard deviation of luma
  dark_fraction       fraction of pixels with luma <= 0.05 (crushed blacks)
  saturated_fraction  fraction of pixels with any channel >= 250/255 (clipped highlights)
  glare_fraction      fraction of near-white pixels: luma >= 230/255 and chroma <= 30/255
  gw_r_over_b         grey-world R/B ratio (mean R / mean B): > 1 warm light, < 1 cold light
  gw_g_ratio          grey-world G / mean(R, G, B): > 1 greenish (fluorescent) cast
  chroma              mean per-pixel chroma (max channel - min channel)
  noise_sigma         sensor-noise std estimate (0..1 units): MAD of the Laplacian of a centre crop
  flicker             temporal flicker: std / mean of the mean luma over the last `flicker_window`
                      frames (0 until two frames were seen; stateful, see `FeatureExtractor`)
  lr_luma_ratio       mean luma of the left half / right half (direction of illumination)
  tb_luma_ratio       mean luma of the top half / bottom half
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

import cv2
import numpy as np

FEATURE_NAMES: tuple[str, ...] = (
    "mean_luma",
    "luma_p5",
    "luma_p50",
    "luma_p95",
    "contrast",
    "dark_fraction",
    "saturated_fraction",
    "glare_fraction",
    "gw_r_over_b",
    "gw_g_ratio",
    "chroma",
    "noise_sigma",
    "flicker",
    "lr_luma_ratio",
    "tb_luma_ratio",
)

_EPS = 1e-3  # keeps ratios finite on black images
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
# Laplacian-like kernel whose response to unit white noise has std 6 (sum of squares = 36).
_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)


@dataclass(frozen=True)
class FeatureParams:
    """How features are computed; saved with the classifier so training and runtime agree."""

    downscale_width: int = 96
    noise_crop: int = 128
    flicker_window: int = 6

    def __post_init__(self):
        if not 8 <= self.downscale_width <= 4096:
            raise ValueError(f"downscale_width must be in [8, 4096], got {self.downscale_width!r}")
        if not 8 <= self.noise_crop <= 4096:
            raise ValueError(f"noise_crop must be in [8, 4096], got {self.noise_crop!r}")
        if not 2 <= self.flicker_window <= 1000:
            raise ValueError(f"flicker_window must be in [2, 1000], got {self.flicker_window!r}")


def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Validate an HxWx3 RGB image (uint8, or float in 0..1) and return it as contiguous uint8."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be HxWx3 RGB, got shape {image.shape}")
    if image.shape[0] < 8 or image.shape[1] < 8:
        raise ValueError(f"image too small for lighting features: {image.shape[1]}x{image.shape[0]}")
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    if np.issubdtype(image.dtype, np.floating):
        bad = int(np.count_nonzero(~np.isfinite(image)))
        if bad:
            raise ValueError(f"image has {bad} non-finite values (NaN/inf)")
        return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    raise ValueError(f"image dtype must be uint8 or float, got {image.dtype}")


def _noise_sigma(luma_full: np.ndarray, crop: int) -> float:
    h, w = luma_full.shape
    ch, cw = min(crop, h), min(crop, w)
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    patch = luma_full[y0 : y0 + ch, x0 : x0 + cw].astype(np.float32) * (1.0 / 255.0)
    resp = cv2.filter2D(patch, cv2.CV_32F, _NOISE_KERNEL, borderType=cv2.BORDER_REFLECT)[1:-1, 1:-1]
    # Median absolute deviation is robust to the edges of items and bins, which a plain std is not.
    mad = float(np.median(np.abs(resp - np.median(resp))))
    return 1.4826 * mad / 6.0


def frame_features(image: np.ndarray, params: FeatureParams | None = None) -> dict[str, float]:
    """Every feature except `flicker` (which needs a sequence) plus `_frame_mean_luma`."""
    params = params or FeatureParams()
    img = as_rgb_uint8(image)
    h, w = img.shape[:2]
    luma_full = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)  # Rec. 601 weights, uint8
    if w > params.downscale_width:
        sw = params.downscale_width
        sh = max(4, round(h * sw / w))
        small_u8 = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA)
    else:
        small_u8 = img
    small = small_u8.astype(np.float32) * (1.0 / 255.0)
    luma = small @ _LUMA
    p5, p50, p95 = np.percentile(luma, [5, 50, 95])
    chroma = small.max(axis=2) - small.min(axis=2)
    mean_rgb = small.reshape(-1, 3).mean(axis=0)
    # Clipping and glare are judged at half resolution: a small specular highlight vanishes when
    # averaged down to the feature resolution.
    half = cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_NEAREST)
    r, g, b = cv2.split(half)
    half_max = cv2.max(cv2.max(r, g), b)
    half_chroma = cv2.subtract(half_max, cv2.min(cv2.min(r, g), b))
    half_luma = cv2.resize(luma_full, (w // 2, h // 2), interpolation=cv2.INTER_NEAREST)
    hh, hw = luma.shape[0] // 2, luma.shape[1] // 2
    mean_luma = float(luma.mean())
    return {
        "mean_luma": mean_luma,
        "luma_p5": float(p5),
        "luma_p50": float(p50),
        "luma_p95": float(p95),
        "contrast": float(luma.std()),
        "dark_fraction": float(np.mean(luma <= 0.05)),
        "saturated_fraction": float(np.mean(half_max >= 250)),
        "glare_fraction": float(np.mean((half_luma >= 230) & (half_chroma <= 30))),
        "gw_r_over_b": float((mean_rgb[0] + _EPS) / (mean_rgb[2] + _EPS)),
        "gw_g_ratio": float((mean_rgb[1] + _EPS) / (mean_rgb.mean() + _EPS)),
        "chroma": float(chroma.mean()),
        "noise_sigma": _noise_sigma(luma_full, params.noise_crop),
        "lr_luma_ratio": float((luma[:, :hw].mean() + _EPS) / (luma[:, hw:].mean() + _EPS)),
        "tb_luma_ratio": float((luma[:hh].mean() + _EPS) / (luma[hh:].mean() + _EPS)),
        "_frame_mean_luma": mean_luma,
    }


class FeatureExtractor:
    """Stateful extractor: per-frame features plus flicker over the last few frames.

    Feed frames in time order at the rate the classifier runs; `reset()` when the stream restarts.
    """

    def __init__(self, params: FeatureParams | None = None):
        self.params = params or FeatureParams()
        self._lumas: collections.deque[float] = collections.deque(maxlen=self.params.flicker_window)

    def reset(self) -> None:
        self._lumas.clear()

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Feature vector (float64, order `FEATURE_NAMES`) of `image`; raises ValueError on bad input."""
        feats = frame_features(image, self.params)
        self._lumas.append(feats.pop("_frame_mean_luma"))
        if len(self._lumas) >= 2:
            arr = np.asarray(self._lumas)
            feats["flicker"] = float(arr.std() / (arr.mean() + _EPS))
        else:
            feats["flicker"] = 0.0
        return np.array([feats[n] for n in FEATURE_NAMES], dtype=np.float64)


def features_dict(vector: np.ndarray) -> dict[str, float]:
    return {n: float(v) for n, v in zip(FEATURE_NAMES, vector, strict=True)}
