"""conveyor_sim rendering: image format, lighting domains shift colour statistics, camera model."""

import numpy as np
import pytest

from conveyor_sim.cell import CellSim, SimConfig
from conveyor_sim.lighting import DOMAINS


@pytest.fixture(scope="module")
def sim():
    s = CellSim(SimConfig(seed=0, spawn_interval_s=0.0, camera_width=160, camera_height=120))
    yield s
    s.close()


def test_render_is_rgb8_of_configured_size(sim):
    img = sim.render()
    assert img.shape == (120, 160, 3) and img.dtype == np.uint8


def test_lighting_domains_shift_colour_statistics(sim):
    stats = {}
    for name in DOMAINS:
        sim.set_lighting(name)
        img = sim.render().astype(float)
        mean = img.reshape(-1, 3).mean(0)
        stats[name] = (mean.mean(), mean[0] / max(mean[2], 1e-6), img.std())
    sim.set_lighting("daylight")
    day = stats["daylight"]
    assert stats["overcast_dim"][0] < 0.8 * day[0]  # darker
    assert stats["warm_tungsten"][1] > 1.25 * day[1]  # redder
    assert stats["night_noise"][0] < day[0]
    # no two domains look the same
    vals = np.array([v[:2] for v in stats.values()])
    d = np.abs(vals[:, None, :] - vals[None, :, :]).sum(-1) + np.eye(len(vals)) * 1e9
    assert d.min() > 1e-2, stats


def test_camera_info_projects_items_onto_their_pixels(sim):
    sim.reset(0)
    sim.set_lighting("daylight")
    iid = sim.spawn_item("aluminium_can", x=0.3, y=0.05, colour=(0.9, 0.05, 0.05, 1.0))
    assert iid is not None
    sim.step(0.02)
    info = sim.camera_info()
    gt = {g.item_id: g for g in sim.ground_truth()}[iid]
    ((u, v),) = info.project(gt.pick_point)
    img = sim.render()
    r, g, b = img[int(round(v)), int(round(u))].astype(int)
    assert r > g + 40 and r > b + 40, (u, v, (r, g, b))  # the red can is where the model says
    # and back: the pixel maps to the can's top on the plane at its height
    np.testing.assert_allclose(info.pixel_to_plane(u, v, gt.pick_point[2]), gt.pick_point, atol=1e-6)
    # image right = +x, image down = -y
    ((u2, v2),) = info.project(gt.pick_point + np.array([0.1, 0.1, 0.0]))
    assert u2 > u and v2 < v
    sim.reset(0)


def test_intrinsics_principal_point_matches_where_mujoco_renders_a_point():
    """CameraSpec.intrinsics (the one K every node uses) puts a rendered point where MuJoCo draws it:
    principal point ((w - 1) / 2, (h - 1) / 2) in pixel-centre coordinates. The w / 2 convention
    is half a pixel off (about 3.6 mm on the belt at this camera height)."""
    import mujoco

    from s1s2.cell import DEFAULT_CELL

    cam = DEFAULT_CELL.camera
    w, h, z = 320, 240, 0.3
    points = [(0.2113, -0.3723), (-0.3, -0.6)]
    dots = "".join(f'<geom type="sphere" size="0.004" pos="{x} {y} {z}" rgba="1 1 1 1"/>' for x, y in points)
    xml = (
        '<mujoco><visual><headlight ambient="1 1 1" diffuse="0 0 0" specular="0 0 0"/></visual><worldbody>'
        f'<geom type="plane" size="5 5 0.1" rgba="0 0 0 1"/>{dots}'
        f'<camera name="c" pos="{" ".join(map(str, cam.position))}" fovy="{cam.fovy_deg}"/></worldbody></mujoco>'
    )
    model = mujoco.MjModel.from_xml_string(xml)
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    renderer = mujoco.Renderer(model, h, w)
    try:
        renderer.update_scene(data, camera="c")
        img = renderer.render().astype(float).sum(2)
    finally:
        renderer.close()
    k = cam.intrinsics(w, h)
    uu, vv = np.meshgrid(np.arange(w), np.arange(h))
    for x, y in points:
        # optical frame: x right = world +x, y down = world -y, depth = camera height - z
        depth = cam.position[2] - z
        u = k[0, 0] * (x - cam.position[0]) / depth + k[0, 2]
        v = k[1, 1] * -(y - cam.position[1]) / depth + k[1, 2]
        win = img * ((abs(uu - u) < 6) & (abs(vv - v) < 6))
        cu, cv = (win * uu).sum() / win.sum(), (win * vv).sum() / win.sum()
        assert abs(cu - u) < 0.25 and abs(cv - v) < 0.25, (cu, cv, u, v)
        assert abs(cu - (u + 0.5)) > abs(cu - u)  # the w/2 convention is worse
