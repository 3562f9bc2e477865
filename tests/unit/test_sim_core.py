"""conveyor_sim core: determinism, spawner, commands, lighting, camera model, FK vs MuJoCo."""

import math

import mujoco
import numpy as np
import pytest

from conveyor_sim.cell import CellSim, SimConfig
from conveyor_sim.lighting import DOMAINS, UnknownDomainError, get_domain
from s1s2 import kinematics
from s1s2.cell import DEFAULT_CELL


def _run(seed, seconds=12.0):
    sim = CellSim(SimConfig(seed=seed, render_enabled=False, spawn_interval_s=2.0))
    for _ in range(int(seconds / 0.02)):
        sim.step(0.02)
    gt = [(g.item_id, g.class_label, tuple(np.round(g.position, 9))) for g in sim.ground_truth()]
    sim.close()
    return gt


def test_same_seed_same_ground_truth_and_different_seed_differs():
    a, b, c = _run(3), _run(3), _run(4)
    assert len(a) >= 4
    assert a == b
    assert a != c


def test_spawner_rate_matches_config():
    sim = CellSim(SimConfig(seed=1, render_enabled=False, spawn_interval_s=3.0, spawn_jitter=0.2))
    seconds = 30.0
    for _ in range(int(seconds / 0.02)):
        sim.step(0.02)
    gaps = np.diff(sim.spawn_times)
    assert len(gaps) >= 8
    assert np.all((gaps >= 3.0 * 0.8 - 0.011) & (gaps <= 3.0 * 1.2 + 0.011)), gaps
    assert np.mean(gaps) == pytest.approx(3.0, rel=0.1)
    assert sim.spawn_skipped == 0
    gt = sim.ground_truth()
    xs = sorted(g.position[0] for g in gt)
    assert all(b - a > 0.1 for a, b in zip(xs, xs[1:], strict=False))  # items spaced along the belt
    assert all(g.on_belt for g in gt)
    # items move at belt speed
    before = {g.item_id: g.position[0] for g in gt}
    sim.step(1.0)
    for g in sim.ground_truth():
        if g.item_id in before:
            assert g.position[0] - before[g.item_id] == pytest.approx(sim.belt_speed * 1.0, abs=0.01)
    assert sim.belt_position() == pytest.approx(sim.belt_speed * (seconds + 1.0), abs=1e-6)
    sim.close()


def test_spawner_disabled_and_classes_restricted():
    sim = CellSim(SimConfig(seed=0, render_enabled=False, spawn_interval_s=1.0, item_classes=("paper",)))
    sim.step(5.0)
    labels = {g.class_label for g in sim.ground_truth()}
    assert labels == {"paper"}
    sim.close()
    sim = CellSim(SimConfig(seed=0, render_enabled=False, spawn_interval_s=0.0))
    sim.step(5.0)
    assert sim.ground_truth() == []
    sim.close()


def test_fk_of_mjcf_matches_kinematics_forward():
    sim = CellSim(SimConfig(render_enabled=False, spawn_interval_s=0.0))
    rng = np.random.default_rng(0)
    arm = DEFAULT_CELL.arm
    for _ in range(20):
        q = rng.uniform(arm.lower_limits(), arm.upper_limits())
        sim.data.qpos[sim._jq] = q
        mujoco.mj_kinematics(sim.model, sim.data)
        np.testing.assert_allclose(sim.tip_position(), kinematics.forward(arm, q), atol=1e-6)
    sim.close()


def test_arm_tracks_commands_within_limits():
    sim = CellSim(SimConfig(render_enabled=False, spawn_interval_s=0.0))
    arm = DEFAULT_CELL.arm
    target = kinematics.inverse(arm, (0.3, 0.0, 0.45))
    for _ in range(100):
        assert sim.command_joints(target) == "ok"
        sim.step(0.02)
    np.testing.assert_allclose(sim.joint_positions(), target, atol=0.02)
    np.testing.assert_allclose(sim.tip_position(), (0.3, 0.0, 0.45), atol=0.02)
    sim.close()


def test_bad_joint_commands_rejected_or_clamped_and_counted():
    sim = CellSim(SimConfig(render_enabled=False, spawn_interval_s=0.0))
    home = sim.joint_targets()
    assert sim.command_joints([math.nan, 0, 0, 0]) == "rejected_nonfinite"
    assert sim.command_joints([math.inf, 0, 0, 0]) == "rejected_nonfinite"
    assert sim.command_joints([0.0, 0.0, 0.0]) == "rejected_length"
    assert sim.command_joints("abc") == "rejected_length"
    np.testing.assert_array_equal(sim.joint_targets(), home)  # nothing bad applied
    assert sim.command_joints([10.0, 0.0, 0.0, 0.0]) == "clamped"
    assert sim.joint_targets()[0] == DEFAULT_CELL.arm.joints[0].upper
    sim.step(0.1)
    assert np.all(np.isfinite(sim.joint_positions()))
    assert sim.command_stats == {"accepted": 0, "clamped": 1, "rejected_nonfinite": 2, "rejected_length": 2}
    sim.close()


def test_unknown_lighting_domain_refused_with_valid_list():
    with pytest.raises(UnknownDomainError) as exc:
        get_domain("disco")
    assert isinstance(exc.value, ValueError)
    for name in DOMAINS:
        assert name in str(exc.value)
    sim = CellSim(SimConfig(render_enabled=False, spawn_interval_s=0.0))
    with pytest.raises(UnknownDomainError):
        sim.set_lighting("disco")
    assert sim.lighting == "daylight"
    with pytest.raises(ValueError, match="disco"):
        SimConfig(lighting="disco")
    sim.close()


def test_at_least_five_domains_with_required_names():
    for name in (
        "daylight",
        "overcast_dim",
        "warm_tungsten",
        "cold_fluorescent_flicker",
        "low_sun_glare",
        "night_noise",
    ):
        assert name in DOMAINS
