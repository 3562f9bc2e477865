"""The overhead camera and the scene lighting of the cell (MuJoCo; no rclpy).

`OverheadCamera` owns the offscreen renderer (created lazily, in the thread that first renders:
the GL context belongs to it), develops each render under the current lighting domain
(conveyor_sim.lighting.develop: exposure, white balance, flicker, glare, noise) and reports the
pinhole model (`CameraInfo`, intrinsics from s1s2.cell.CameraSpec.intrinsics). `apply_lighting`
sets MuJoCo's scene lights for a domain.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import threading
import weakref
from dataclasses import dataclass

import mujoco
import numpy as np

from conveyor_sim.lighting import LightingDomain, develop
from s1s2.cell import CellDescription
from s1s2.topics import CAMERA_FRAME


@dataclass
class CameraInfo:
    """Pinhole model of the overhead camera. The optical frame follows ROS (x right, y down,
    z forward); `rotation` maps optical-frame vectors to world, `position` is the centre in world."""

    width: int
    height: int
    K: np.ndarray  # (3, 3)
    frame_id: str
    position: np.ndarray  # (3,)
    rotation: np.ndarray  # (3, 3) world_from_optical

    def project(self, points_world) -> np.ndarray:
        """Pixel coordinates (u, v) of world points (N, 3) -> (N, 2); u right, v down."""
        p = np.atleast_2d(np.asarray(points_world, dtype=float))
        pc = (p - self.position) @ self.rotation  # world -> optical
        uvw = pc @ self.K.T
        return uvw[:, :2] / uvw[:, 2:3]

    def pixel_to_plane(self, u: float, v: float, z: float) -> np.ndarray:
        """World point where the ray through pixel (u, v) meets the horizontal plane at height z."""
        ray_c = np.linalg.solve(self.K, np.array([u, v, 1.0]))
        ray_w = self.rotation @ ray_c
        s = (z - self.position[2]) / ray_w[2]
        return self.position + s * ray_w

    def as_dict(self) -> dict:
        return {
            "width": self.width,
            "height": self.height,
            "K": self.K.tolist(),
            "frame_id": self.frame_id,
            "position": self.position.tolist(),
            "rotation": self.rotation.tolist(),
        }


def apply_lighting(model, data, desc: CellDescription, domain: LightingDomain) -> None:
    """Set the scene lights (intensity, colour temperature, key-light direction, ambient)."""
    rgb = domain.light_rgb()
    for i, spec in enumerate(desc.lights):
        lid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_LIGHT, spec.name)
        model.light_diffuse[lid] = spec.diffuse * domain.intensity * rgb
        model.light_specular[lid] = 0.1 * domain.intensity * rgb
        model.light_ambient[lid] = (domain.ambient * rgb) if i == 0 else 0.0
        if i == 0:
            dvec = np.asarray(domain.direction, dtype=float)
            model.light_dir[lid] = dvec / np.linalg.norm(dvec)
    model.vis.headlight.ambient[:] = 0.25 * domain.ambient * rgb
    model.vis.headlight.diffuse[:] = 0.05 * domain.intensity * rgb
    mujoco.mj_kinematics(model, data)  # refresh light directions in data


class OverheadCamera:
    """Renders the cell's overhead camera at width x height. Not thread-safe on its own: `render`
    serialises itself, and takes the caller's physics lock only while it copies the scene."""

    def __init__(
        self, model, data, desc: CellDescription, width: int, height: int, fovy_deg: float, seed: int
    ):
        self.model, self.data = model, data
        self.width, self.height = width, height
        self.spec = dataclasses.replace(desc.camera, fovy_deg=fovy_deg)
        self.cam_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, desc.camera.name)
        model.cam_fovy[self.cam_id] = fovy_deg
        self._renderer = None
        self._lock = threading.Lock()
        self._atexit = None
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        self._noise_rng = np.random.default_rng([seed, 1])

    def info(self) -> CameraInfo:
        # MuJoCo camera frame: x right, y up, looking along -z. ROS optical: x right, y down, z forward.
        cam_rot = self.data.cam_xmat[self.cam_id].reshape(3, 3)
        rotation = cam_rot @ np.diag([1.0, -1.0, -1.0])
        return CameraInfo(
            self.width, self.height, self.spec.intrinsics(self.width, self.height), CAMERA_FRAME,
            self.data.cam_xpos[self.cam_id].copy(), rotation,
        )  # fmt: skip

    def render(self, domain: LightingDomain, time_s: float, lock: threading.Lock | None = None,
               on_snapshot=None) -> np.ndarray:  # fmt: skip
        """HxWx3 uint8 RGB image developed under `domain` at sim time `time_s`. `on_snapshot()`
        runs under `lock` right after the scene is copied: whatever it records (a stamp, ground
        truth) belongs to exactly the state the image shows."""
        with self._lock:
            if self._renderer is None:
                self._renderer = mujoco.Renderer(self.model, self.height, self.width)
                # Free the GL context before the interpreter tears EGL down (else noisy errors at exit).
                self._atexit = _closer(weakref.ref(self))
                atexit.register(self._atexit)
            with lock if lock is not None else contextlib.nullcontext():
                self._renderer.update_scene(self.data, camera=self.cam_id)
                if on_snapshot is not None:
                    on_snapshot()
            raw = self._renderer.render()
            return develop(raw, domain, self._noise_rng, time_s)

    def close(self) -> None:
        with self._lock:
            if self._renderer is not None:
                self._renderer.close()
                self._renderer = None
                atexit.unregister(self._atexit)


def _closer(ref):
    def close():
        cam = ref()
        if cam is not None:
            cam.close()

    return close
