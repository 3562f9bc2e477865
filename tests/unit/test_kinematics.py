"""s1s2.kinematics (numpy only, System 1's IK and the sim's) against MuJoCo's model of the cell."""

import math

import mujoco
import numpy as np
import pytest

from conveyor_sim.cell import CellSim, SimConfig
from s1s2 import kinematics as kin
from s1s2.cell import DEFAULT_CELL

ARM = DEFAULT_CELL.arm


@pytest.fixture(scope="module")
def sim():
    s = CellSim(SimConfig(render_enabled=False, spawn_interval_s=0.0))
    yield s
    s.close()


def _random_q(rng, n):
    return rng.uniform(ARM.lower_limits(), ARM.upper_limits(), (n, 4))


def test_forward_and_batch_match_mujoco(sim):
    qs = _random_q(np.random.default_rng(0), 50)
    batch = kin.forward_batch(ARM, qs)
    for q, b in zip(qs, batch, strict=True):
        sim.data.qpos[sim._jq] = q
        mujoco.mj_kinematics(sim.model, sim.data)
        np.testing.assert_allclose(kin.forward(ARM, q), sim.data.site_xpos[sim._tip], atol=1e-6)
        np.testing.assert_allclose(b, sim.data.site_xpos[sim._tip], atol=1e-6)


def test_jacobian_matches_mujoco_and_finite_differences(sim):
    jacp = np.zeros((3, sim.model.nv))
    for q in _random_q(np.random.default_rng(1), 20):
        sim.data.qpos[sim._jq] = q
        mujoco.mj_forward(sim.model, sim.data)
        mujoco.mj_jacSite(sim.model, sim.data, jacp, None, sim._tip)
        np.testing.assert_allclose(kin.jacobian(ARM, q), jacp[:, sim._jv], atol=1e-6)
        eps = 1e-6
        fd = np.stack(
            [(kin.forward(ARM, q + eps * e) - kin.forward(ARM, q - eps * e)) / (2 * eps) for e in np.eye(4)],
            1,
        )
        np.testing.assert_allclose(kin.jacobian(ARM, q), fd, atol=1e-6)


def test_analytic_ik_round_trip_tool_down():
    rng = np.random.default_rng(2)
    n = 0
    for _ in range(400):
        p = rng.uniform([-0.9, -1.1, 0.3], [0.9, 0.3, 0.8])
        q = kin.ik_tool_down(ARM, p)
        if q is not None:
            n += 1
            np.testing.assert_allclose(kin.forward(ARM, q), p, atol=1e-9)
            assert abs(q[1] + q[2] + q[3] + math.pi / 2) < 1e-9
            assert np.all(q >= ARM.lower_limits() - 1e-6) and np.all(q <= ARM.upper_limits() + 1e-6)
    assert n > 100


def test_dls_fallback_is_continuous_and_moves_towards_unreachable_target():
    home = ARM.home()
    far = np.array([0.0, 1.5, 0.4])  # beyond reach
    assert kin.ik_tool_down(ARM, far) is None
    q, analytic = kin.solve_ik(ARM, far, home)
    assert not analytic and np.all(np.isfinite(q))
    assert np.all(q >= ARM.lower_limits()) and np.all(q <= ARM.upper_limits())
    assert np.linalg.norm(kin.forward(ARM, q) - far) < np.linalg.norm(kin.forward(ARM, home) - far)
    q2, _ = kin.solve_ik(ARM, far, home + 1e-4)  # continuity in the start joints
    assert np.max(np.abs(q2 - q)) < 1e-2
    p = np.array([0.1, -0.1, 0.45])  # reachable: DLS converges to the same tip position
    assert np.linalg.norm(kin.forward(ARM, kin.ik_dls(ARM, p, home, iters=60)) - p) < 2e-3


@pytest.mark.parametrize("bad", [[np.nan, 0.0, 0.4], [np.inf, 0.0, 0.4], [0.0, 0.0]])
def test_nonfinite_or_malformed_target_never_gives_nonfinite_joints(bad):
    home = ARM.home()
    assert kin.ik_tool_down(ARM, bad) is None
    q, analytic = kin.solve_ik(ARM, bad, home)
    assert not analytic and np.all(np.isfinite(q))
    np.testing.assert_allclose(q, np.clip(home, ARM.lower_limits(), ARM.upper_limits()))


def test_geometry_dict_detects_another_arm():
    d = kin.geometry_dict(ARM)
    assert kin.geometry_mismatch(d, ARM) == ""
    d["fore_len"] = 0.5
    assert "fore_len" in kin.geometry_mismatch(d, ARM)
    assert "base" in kin.geometry_mismatch({}, ARM)
