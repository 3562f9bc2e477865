"""Pixel -> belt-plane geometry and belt odometry at image time. Pure numpy, no ROS.

Frames (metres, right-handed):
  world           z up, belt running along +x (s1s2.cell).
  camera_optical  ROS optical convention: +z forward along the optical axis, +x right in the
                  image, +y down in the image. Its pose in world is the cell description's
                  camera (s1s2.cell.CameraSpec: position, looking straight down).
  belt            moves with the belt: world = belt + (belt odometry) along +x. A point on the
                  belt keeps its belt coordinates while the belt runs.

A pixel (u, v) (u = column, v = row, origin at the top-left pixel's centre, as in CameraInfo K)
becomes the ray  d_cam = K^-1 [u, v, 1],  d_world = R d_cam  from the camera centre; it hits the
plane z = pick_plane_z at  p = c + t d_world,  t = (z - c_z) / d_z (t > 0). The belt-frame point
is p - (odometry at the image stamp) * x.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

from s1s2.cell import DEFAULT_CELL, CameraSpec


def quat_to_matrix(q_xyzw) -> np.ndarray:
    x, y, z, w = (float(c) for c in q_xyzw)
    n = math.sqrt(x * x + y * y + z * z + w * w)
    if not math.isfinite(n) or n < 1e-9:
        raise ValueError(f"quaternion {tuple(q_xyzw)!r} is not a rotation")
    x, y, z, w = x / n, y / n, z / n, w / n
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


@dataclass
class CameraModel:
    """Pinhole camera: intrinsics from CameraInfo.k (row-major 3x3) and the optical frame's pose in world."""

    k: np.ndarray  # 3x3
    width: int
    height: int
    position: np.ndarray  # camera centre in world, (3,)
    orientation: np.ndarray  # quaternion x, y, z, w of camera_optical in world

    def __post_init__(self):
        self.k = np.asarray(self.k, dtype=float).reshape(3, 3)
        self.position = np.asarray(self.position, dtype=float).reshape(3)
        self.orientation = np.asarray(self.orientation, dtype=float).reshape(4)
        if not (np.all(np.isfinite(self.k)) and self.k[0, 0] > 0 and self.k[1, 1] > 0):
            raise ValueError(f"camera K {self.k.ravel().tolist()} has no positive finite focal lengths")
        if not np.all(np.isfinite(self.position)):
            raise ValueError(f"camera position {self.position.tolist()} is not finite")
        if int(self.width) <= 0 or int(self.height) <= 0:
            raise ValueError(f"camera size {self.width}x{self.height} is empty")
        self.rotation = quat_to_matrix(self.orientation)
        self.k_inv = np.linalg.inv(self.k)

    @classmethod
    def from_camera_info(cls, k, width, height, camera: CameraSpec = DEFAULT_CELL.camera):
        """Intrinsics from a CameraInfo, pose from the cell description's camera."""
        return cls(
            np.asarray(k, dtype=float),
            int(width),
            int(height),
            np.asarray(camera.position, dtype=float),
            np.asarray(camera.OPTICAL_ORIENTATION_XYZW, dtype=float),
        )

    @classmethod
    def from_cell(
        cls, camera: CameraSpec = DEFAULT_CELL.camera, width: int | None = None, height: int | None = None
    ):
        """The cell's camera with its own intrinsics, at width x height (default: its own size)."""
        w, h = width or camera.width, height or camera.height
        return cls.from_camera_info(camera.intrinsics(w, h), w, h, camera)

    def pixel_to_plane(self, u: float, v: float, plane_z: float) -> np.ndarray | None:
        """World point where pixel (u, v)'s ray meets z = plane_z, or None if it never does."""
        d = self.rotation @ (self.k_inv @ np.array([u, v, 1.0]))
        if abs(d[2]) < 1e-9:
            return None
        t = (plane_z - self.position[2]) / d[2]
        if not math.isfinite(t) or t <= 0:
            return None
        return self.position + t * d

    def world_to_pixel(self, p_world) -> tuple[float, float] | None:
        """Inverse of pixel_to_plane (for tests and the expert labeller): None behind the camera."""
        p_cam = self.rotation.T @ (np.asarray(p_world, dtype=float) - self.position)
        if p_cam[2] <= 1e-9:
            return None
        uvw = self.k @ p_cam
        return float(uvw[0] / uvw[2]), float(uvw[1] / uvw[2])


def world_to_belt(p_world, odometry: float) -> np.ndarray:
    p = np.asarray(p_world, dtype=float).copy()
    p[0] -= odometry
    return p


class OdometryHistory:
    """Short history of belt odometry (stamp, position) to read the belt position at an image's stamp.

    Linear interpolation between samples; past the newest sample, extrapolation with the last
    velocity for at most `max_extrapolation_s`; before the oldest kept sample: unknown (None).
    A stamp going backwards by more than `reset_jump_s` (sim reset, bag loop) clears the history.
    """

    def __init__(self, max_age_s: float = 5.0, max_extrapolation_s: float = 0.5, reset_jump_s: float = 1.0):
        self.max_age_s = max_age_s
        self.max_extrapolation_s = max_extrapolation_s
        self.reset_jump_s = reset_jump_s
        self._t: list[float] = []
        self._x: list[float] = []
        self._v: list[float | None] = []

    def __len__(self) -> int:
        return len(self._t)

    def add(self, stamp: float, position: float, velocity: float | None = None) -> bool:
        """Add a sample; returns False (and keeps nothing) for a non-finite one."""
        if not (math.isfinite(stamp) and math.isfinite(position)):
            return False
        if velocity is not None and not math.isfinite(velocity):
            velocity = None
        if self._t and stamp < self._t[-1] - self.reset_jump_s:
            self._t.clear(), self._x.clear(), self._v.clear()
        if self._t and stamp <= self._t[-1]:
            if stamp == self._t[-1]:
                self._x[-1], self._v[-1] = position, velocity
            return True  # small reorderings: keep the history monotonic
        self._t.append(stamp)
        self._x.append(position)
        self._v.append(velocity)
        while self._t and self._t[0] < stamp - self.max_age_s:
            self._t.pop(0), self._x.pop(0), self._v.pop(0)
        return True

    def at(self, stamp: float) -> float | None:
        if not self._t or not math.isfinite(stamp):
            return None
        if stamp > self._t[-1]:
            dt = stamp - self._t[-1]
            if dt > self.max_extrapolation_s:
                return None
            v = self._v[-1]
            if v is None:
                v = (self._x[-1] - self._x[-2]) / (self._t[-1] - self._t[-2]) if len(self._t) > 1 else 0.0
            return self._x[-1] + v * dt
        if stamp < self._t[0]:
            return None
        i = bisect.bisect_left(self._t, stamp)
        if self._t[i] == stamp:
            return self._x[i]
        t0, t1, x0, x1 = self._t[i - 1], self._t[i], self._x[i - 1], self._x[i]
        return x0 + (x1 - x0) * (stamp - t0) / (t1 - t0)
