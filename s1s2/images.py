"""sensor_msgs/Image fields -> RGB numpy array, without rclpy or cv_bridge (cores stay ROS-free).

The one converter every node uses (planner, adapter manager): colour encodings are reordered,
mono8 is replicated to three channels, anything else is refused with a ValueError naming it."""

from __future__ import annotations

import numpy as np

# encoding -> (channels, order of R, G, B in the pixel)
_ENCODINGS = {
    "rgb8": (3, (0, 1, 2)),
    "bgr8": (3, (2, 1, 0)),
    "rgba8": (4, (0, 1, 2)),
    "bgra8": (4, (2, 1, 0)),
    "mono8": (1, (0, 0, 0)),
}
SUPPORTED_ENCODINGS = tuple(_ENCODINGS)


def image_to_rgb(encoding: str, height: int, width: int, step: int, data) -> np.ndarray:
    """HxWx3 uint8 RGB view/copy of raw image data; raises ValueError naming what is wrong."""
    encoding = encoding.lower() if isinstance(encoding, str) else encoding
    if encoding not in _ENCODINGS:
        raise ValueError(
            f"unsupported image encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}"
        )
    channels, order = _ENCODINGS[encoding]
    if height <= 0 or width <= 0:
        raise ValueError(f"image has no pixels: {width}x{height}")
    if step < width * channels:
        raise ValueError(f"image step {step} is smaller than width*channels = {width * channels}")
    buf = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    if buf.size < step * height:
        raise ValueError(f"image data has {buf.size} bytes, expected step*height = {step * height}")
    rows = buf[: step * height].reshape(height, step)[:, : width * channels]
    pix = rows.reshape(height, width, channels)
    if order == (0, 1, 2) and channels == 3:
        return pix
    return np.ascontiguousarray(pix[:, :, list(order)])
