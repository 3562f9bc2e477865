"""Closed-loop rollouts used for data and evaluation: the scripted expert driving through the
controller and limiter sorts like the reference expert, DAgger labelling and DART noise, and the
oracle System 2's planner-like timing (1 Hz images, 0.3-0.5 s latency, belt frame)."""

import numpy as np
import pytest

pytest.importorskip("mujoco")

from fast_policy import spec  # noqa: E402
from s1s2.cell import DEFAULT_CELL  # noqa: E402
from s1s2_training.policy.rollout import (  # noqa: E402
    DartConfig,
    EpisodeSpec,
    GoalTiming,
    OracleGoals,
    make_sim,
    run_episode,
    run_reference_expert,
)

ARM = DEFAULT_CELL.arm


@pytest.fixture(scope="module")
def sim():
    s = make_sim()
    yield s
    s.close()


def test_expert_through_controller_sorts_like_reference(sim):
    ep = EpisodeSpec(7, 0.12, 30.0, GoalTiming.per_tick())
    ref = run_reference_expert(sim, ep)
    res = run_episode(sim, ep, 10)
    assert ref["correct"] >= 5
    assert res.score["correct"] >= ref["correct"] - 1 and res.score["wrong_bin"] == 0


def test_labelled_rollout_records_expert_chunks_with_dart(sim):
    ep = EpisodeSpec(8, 0.1, 6.0, GoalTiming.per_tick())
    res = run_episode(sim, ep, 10, label=True, dart=DartConfig())
    rows = res.rows
    n = len(rows["obs"])
    assert n == res.ticks == 300
    assert rows["obs"].shape == (n, spec.OBS_DIM) and rows["act"].shape == (n, 10, spec.ACTION_DIM)
    assert np.all(np.isfinite(rows["obs"])) and np.all(np.isfinite(rows["act"]))
    # suction labels are logits of either sign; offsets are metres, bounded by the workspace
    assert set(np.unique(np.sign(rows["act"][..., 3]))) <= {-1.0, 1.0}
    assert np.abs(rows["act"][..., :3]).max() < 2.0


def test_planner_goals_timing_frame_and_spacing(sim):
    sim.reset(3)
    sim.set_belt_speed(0.1)
    o = OracleGoals(GoalTiming.planner(0.0), sim.desc, 3)
    got = []
    for _ in range(400):
        for g in o.poll(sim):
            got.append((sim.time, g))
        sim.step(0.02)
    assert len(got) >= 6
    for t_recv, g in got:
        assert g.frame_id == "belt" and 0.3 - 1e-6 <= t_recv - g.stamp_s <= 0.5 + 0.02
    stamps = [g.stamp_s for _, g in got]
    assert np.allclose(np.diff(stamps), 1.0, atol=0.021)


def test_goal_timing_rejects_bad_values():
    with pytest.raises(ValueError, match="timing 'x'"):
        GoalTiming(timing="x")
    with pytest.raises(ValueError, match="latency_s"):
        GoalTiming(latency_s=(0.5, 0.3))
    with pytest.raises(ValueError, match="p_other"):
        GoalTiming.planner(p_other=1.2)


def test_spec_constants_match_cell():
    assert len(ARM.joints) == spec.N_JOINTS
    assert sum(sl.stop - sl.start for sl in spec.OBS_SLICES.values()) == spec.OBS_DIM


def test_raw_tick_log_converts_to_training_arrays(tmp_path):
    """A joint-space log (what `s1s2 sim policy-dataset` / `sim export` write, or a user's own
    recording) becomes spec-v2 training arrays; labels are FK of the commanded joints."""
    from conveyor_sim.datasets import make_policy_dataset
    from s1s2 import kinematics as kin
    from s1s2_training.policy import data as pdata

    res = make_policy_dataset(1, 5, tmp_path / "raw.npz", episode_s=4.0, progress=False)
    with np.load(res["path"]) as z:
        raw = {k: z[k] for k in z.files}
    arr = pdata.from_raw(raw, 10)
    n = len(raw["joint_pos"])
    assert arr["obs"].shape == (n, spec.OBS_DIM) and arr["act"].shape == (n, 10, 4)
    i = n // 2
    tip = kin.forward(ARM, raw["joint_pos"][i])
    np.testing.assert_allclose(arr["obs"][i, spec.OBS_SLICES["tip_pos"]], tip, atol=1e-5)
    np.testing.assert_allclose(
        arr["act"][i, 3, :3], kin.forward(ARM, raw["action_joint_pos"][i, 3]) - tip, atol=1e-5
    )
    assert set(np.unique(arr["act"][..., 3])) <= {-6.0, 6.0}
    pdata.load(pdata.save(tmp_path / "train.npz", arr))  # passes the loader's checks
    bad = dict(raw, joint_vel=raw["joint_vel"].copy())
    bad["joint_vel"][7, 2] = np.inf
    with pytest.raises(ValueError, match="joint_vel contains NaN/inf.*row 7"):
        pdata.from_raw(bad)
    with pytest.raises(ValueError, match="missing array.*holding"):
        pdata.from_raw({k: v for k, v in raw.items() if k != "holding"})
    assert pdata.main(["--from-raw", str(tmp_path / "nope.npz"), "--out", str(tmp_path / "o.npz")]) == 2
