"""The oracle (ground truth -> goal, one module for recording, datasets, evaluation and training)
and the scripted expert's public hooks used to label states reached by other controllers."""

import numpy as np
import pytest

from conveyor_sim.cell import CellSim, SimConfig
from conveyor_sim.oracle import Oracle
from s1s2.latent import goal_latent
from s1s2.topics import CONTROL_DT, LATENT_DIM


@pytest.fixture
def sim():
    s = CellSim(SimConfig(seed=0, render_enabled=False, spawn_interval_s=0.0))
    yield s
    s.close()


def test_no_items_no_target(sim):
    g = Oracle(sim.desc).goal_for(sim)
    assert not g.has_target and g.pick_world is None and g.place_world is None
    assert g.latent.shape == (LATENT_DIM,)
    np.testing.assert_array_equal(g.latent, goal_latent(None, None, sim.desc))  # the hold latent


def test_most_downstream_reachable_item_is_kept_until_it_leaves_the_belt(sim):
    up = sim.spawn_item("paper", x=-0.1, y=0.0)
    down = sim.spawn_item("aluminium_can", x=0.15, y=0.05)
    oracle = Oracle(sim.desc)
    g = oracle.goal_for(sim)
    assert g.item_id == down and g.label == "aluminium_can" and g.bin_id == "metal" and g.changed
    np.testing.assert_allclose(g.place_world, sim.desc.place_point("metal"))
    np.testing.assert_allclose(g.velocity[0], sim.belt_speed, atol=1e-6)
    assert np.argmax(g.latent[:8]) == sim.desc.class_names.index("aluminium_can")
    again = oracle.goal_for(sim)
    assert again.item_id == down and not again.changed
    # not allowed to switch (the arm is busy) and the target is gone: no target, no new choice
    truth = [it for it in sim.ground_truth() if it.item_id != down]
    assert not oracle.update(truth, None, switch_allowed=False).has_target
    assert oracle.update(truth, None, switch_allowed=True).item_id == up


def test_held_item_stays_the_target_without_a_pick_point(sim):
    iid = sim.spawn_item("cardboard", x=0.0, y=0.0)
    truth = sim.ground_truth()
    truth[0].grasped, truth[0].on_belt = True, False
    g = Oracle(sim.desc).update(truth, iid, switch_allowed=False)
    assert g.item_id == iid and g.held and g.pick_world is None and g.place_world is not None


def test_oracle_latent_is_the_trained_planners_layout(sim):
    """The oracle publishes what a perfectly trained planner would: decode_latent gives back the
    class, its bin and the pick point; a hold is the hold dimension; all of unit norm."""
    from s1s2.latent import HOLD_DIM, decode_latent

    sim.spawn_item("cardboard", x=-0.2, y=0.05)
    g = Oracle(sim.desc).update(sim.ground_truth(), None)
    assert g.label == "cardboard"
    d = decode_latent(g.latent, sim.desc)
    assert d["label"] == "cardboard" and d["bin"] == g.bin_id
    np.testing.assert_allclose(d["xy"], g.pick_world[:2], atol=1e-5)
    hold = goal_latent(None, None, sim.desc)
    assert np.argmax(hold) == HOLD_DIM and decode_latent(hold, sim.desc)["label"] == ""
    for z in (g.latent, hold):
        assert np.linalg.norm(z) == pytest.approx(1.0, abs=1e-6)


def test_expert_chunk_is_executable_through_tool_down_ik(sim):
    """The expert's chunk (System 1's action space): tip waypoints along its joint path, relative
    to the measured tip; the controller's tool-down IK of each waypoint gives back those joints."""
    from types import SimpleNamespace

    from conveyor_sim.expert import SUCTION_LOGIT, ScriptedExpert
    from s1s2 import kinematics

    arm = sim.desc.arm
    exp = ScriptedExpert(arm, CONTROL_DT)
    q = kinematics.inverse(arm, (0.0, -0.30, 0.60))  # a tool-down pose (READY)
    tip = kinematics.forward(arm, q)
    st = SimpleNamespace(q=q, tip=tip, target=np.array([0.1, -0.1, 0.33]), has_target=True,
                         target_vel=np.zeros(3), place=None, has_place=False, suction=False, holding=False)  # fmt: skip
    chunk = exp.chunk(st, 10)
    assert chunk.shape == (10, 4) and exp.last_decision.phase == "approach"
    np.testing.assert_allclose(chunk[:, 3], -SUCTION_LOGIT)  # approaching: suction off
    path = exp.joint_path(q, exp.last_decision.goal, 10)
    np.testing.assert_allclose(kinematics.forward_batch(arm, path) - tip, chunk[:, :3], atol=1e-9)
    assert np.all(np.abs(np.diff(np.vstack([q, path]), axis=0)) <= exp.vlim * CONTROL_DT + 1e-9)
    for wp, qk in zip(chunk[:, :3], path, strict=True):
        np.testing.assert_allclose(kinematics.ik_tool_down(arm, tip + wp), qk, atol=1e-6)


def test_oracle_planner_has_a_planners_timing_noise_and_frame(sim):
    from conveyor_sim.oracle import OraclePlanner

    sim.spawn_item("glass_bottle", x=0.1, y=0.02)
    sim.step(0.1)
    truth = sim.ground_truth()
    planner = OraclePlanner(sim.desc, pick_noise_m=0.015, latency_min_s=0.3, latency_max_s=0.5, seed=1)
    plans = [planner.plan(10.0, truth, belt_position=2.5) for _ in range(400)]
    assert all(0.3 <= p.publish_at - 10.0 <= 0.5 for p in plans)
    assert {p.label for p in plans} == {"glass_bottle"} and {p.bin_id for p in plans} == {"glass"}
    world = np.array([p.target_belt for p in plans]) + [2.5, 0.0, 0.0]  # belt frame -> world
    err = world - truth[0].pick_point
    assert np.std(err[:, 0]) == pytest.approx(0.015, rel=0.15) and np.std(err[:, 1]) == pytest.approx(
        0.015, rel=0.15
    )
    assert np.all(err[:, 2] == 0)
    # it keeps naming the same item while that is on the belt, even when another becomes "better"
    sim.spawn_item("cardboard", x=0.3, y=0.0)
    sim.step(0.05)
    assert planner.plan(10.5, sim.ground_truth(), 2.5).label == "glass_bottle"
    # an item held on the suction cup is never a target (a VLM would pick the next one)
    truth[0].grasped, truth[0].on_belt = True, False
    assert planner.plan(11.0, truth, 2.5).label == ""
    with pytest.raises(ValueError, match="latency"):
        OraclePlanner(sim.desc, latency_min_s=0.5, latency_max_s=0.3)


def test_a_confusing_oracle_planner_names_another_item_for_one_plan_and_keeps_its_own(sim):
    """p_other: the System 2 that confuses items, for System 1's robustness evaluation."""
    from conveyor_sim.oracle import OraclePlanner

    sim.spawn_item("glass_bottle", x=0.1, y=0.02)
    sim.spawn_item("cardboard", x=-0.2, y=0.0)
    sim.step(0.05)
    truth = sim.ground_truth()
    steady = OraclePlanner(sim.desc, pick_noise_m=0.0, seed=3)
    assert {steady.plan(10.0, truth, 0.0).label for _ in range(50)} == {"glass_bottle"}
    confused = OraclePlanner(sim.desc, pick_noise_m=0.0, seed=3, p_other=0.3)
    labels = [confused.plan(10.0, truth, 0.0).label for _ in range(400)]
    assert labels.count("cardboard") / len(labels) == pytest.approx(0.3, abs=0.07)
    assert confused.target_id == truth[0].item_id  # its own target is kept between plans
    always = OraclePlanner(sim.desc, pick_noise_m=0.0, seed=3, p_other=1.0)
    assert always.plan(10.0, truth, 0.0).label == "cardboard"
    assert always.plan(10.0, truth[:1], 0.0).label == "glass_bottle"  # no other item: its own
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="p_other"):
            OraclePlanner(sim.desc, p_other=bad)
