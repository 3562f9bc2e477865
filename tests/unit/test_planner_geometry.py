"""Pixel -> belt-plane projection and belt odometry at image time."""

import math

import numpy as np
import pytest

from s1s2.cell import DEFAULT_CELL, CameraSpec
from vlm_planner.geometry import CameraModel, OdometryHistory, quat_to_matrix, world_to_belt

DOWN = CameraSpec.OPTICAL_ORIENTATION_XYZW

# 320x240, f = 200 px, principal point at the centre; camera 1.5 m above a plane at z = 0.3.
K = [200.0, 0.0, 160.0, 0.0, 200.0, 120.0, 0.0, 0.0, 1.0]


def down_camera(position=(0.0, 0.0, 1.8)):
    return CameraModel(K, 320, 240, position, DOWN)


def test_principal_point_hits_the_plane_below_the_camera():
    cam = down_camera((0.1, -0.4, 1.8))
    p = cam.pixel_to_plane(160.0, 120.0, 0.3)
    np.testing.assert_allclose(p, [0.1, -0.4, 0.3], atol=1e-12)


def test_known_geometry_image_right_is_world_x_image_down_is_world_minus_y():
    cam = down_camera()
    # 100 px right of centre at depth 1.5 m with f = 200 px -> 0.75 m along +x.
    np.testing.assert_allclose(cam.pixel_to_plane(260.0, 120.0, 0.3), [0.75, 0.0, 0.3], atol=1e-12)
    # 40 px down -> 0.3 m towards world -y.
    np.testing.assert_allclose(cam.pixel_to_plane(160.0, 160.0, 0.3), [0.0, -0.3, 0.3], atol=1e-12)


def test_round_trip_with_a_tilted_camera():
    # 20 degrees of pitch about world x on top of the downward view.
    a = math.radians(20.0)
    tilt = (math.sin(a / 2), 0.0, 0.0, math.cos(a / 2))
    r = quat_to_matrix(tilt) @ quat_to_matrix(DOWN)
    w = 0.5 * (1 + np.trace(r)) ** 0.5
    q = ((r[2, 1] - r[1, 2]) / (4 * w), (r[0, 2] - r[2, 0]) / (4 * w), (r[1, 0] - r[0, 1]) / (4 * w), w)
    cam = CameraModel(K, 320, 240, (0.2, -0.6, 1.7), q)
    for point in ([0.0, 0.0, 0.3], [0.4, -0.1, 0.3], [-0.5, 0.15, 0.3]):
        uv = cam.world_to_pixel(point)
        assert uv is not None
        np.testing.assert_allclose(cam.pixel_to_plane(*uv, 0.3), point, atol=1e-9)


def test_ray_away_from_the_plane_is_none():
    cam = down_camera()
    assert cam.pixel_to_plane(160.0, 120.0, 2.5) is None  # plane above the camera


def test_bad_intrinsics_and_quaternion_are_rejected():
    with pytest.raises(ValueError, match="focal"):
        CameraModel.from_camera_info([0.0] * 9, 320, 240)
    with pytest.raises(ValueError, match="quaternion"):
        CameraModel(K, 320, 240, (0, 0, 1), (0, 0, 0, 0))


def test_belt_frame_subtracts_odometry_along_x():
    np.testing.assert_allclose(world_to_belt([0.5, -0.1, 0.3], 1.25), [-0.75, -0.1, 0.3])


def test_cell_camera_matches_the_simulated_camera():
    """The planner's camera (pose and intrinsics from the cell description) equals the MuJoCo
    cell's overhead camera, and deprojects pixels exactly as the simulator's camera model does."""
    pytest.importorskip("mujoco")
    from conveyor_sim.cell import CellSim, SimConfig

    sim = CellSim(SimConfig(seed=0, render_enabled=False))
    try:
        info = sim.camera_info()
    finally:
        close = getattr(sim, "close", None)
        if callable(close):
            close()
    np.testing.assert_allclose(info.position, DEFAULT_CELL.camera.position, atol=1e-6)
    np.testing.assert_allclose(info.rotation, quat_to_matrix(DOWN), atol=1e-6)
    cam = CameraModel.from_cell(width=info.width, height=info.height)
    np.testing.assert_allclose(cam.k, info.K)
    for uv in ((10.0, 20.0), (160.0, 120.0), (300.0, 200.0)):
        np.testing.assert_allclose(cam.pixel_to_plane(*uv, 0.3), info.pixel_to_plane(*uv, 0.3), atol=1e-9)


def test_odometry_interpolates_and_extrapolates_within_limits():
    h = OdometryHistory(max_age_s=5.0, max_extrapolation_s=0.5)
    assert h.at(1.0) is None
    for t in np.arange(0.0, 2.01, 0.1):
        h.add(float(t), 0.1 * float(t))  # 0.1 m/s, no velocity field
    assert h.at(1.05) == pytest.approx(0.105)
    assert h.at(1.0) == pytest.approx(0.1)
    assert h.at(2.3) == pytest.approx(0.23)  # extrapolated from the last two samples
    assert h.at(2.6) is None  # too far past the last sample
    assert h.at(-0.5) is None  # before the history
    assert h.at(math.nan) is None


def test_odometry_uses_velocity_rejects_nan_and_resets_on_time_jump():
    h = OdometryHistory()
    assert h.add(10.0, 1.0, 0.2)
    assert not h.add(10.1, math.nan)
    assert h.at(10.25) == pytest.approx(1.05)
    h.add(2.0, 0.0, 0.1)  # sim reset: time went back by 8 s
    assert len(h) == 1 and h.at(2.0) == 0.0
