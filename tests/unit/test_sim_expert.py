"""Scripted expert and scoring on scripted scenarios."""

import numpy as np

from conveyor_sim.cell import CellSim, SimConfig
from conveyor_sim.expert import ExpertDriver, ExpertObservation, ScriptedExpert
from conveyor_sim.scoring import CORRECT, DROPPED, MISSED, WRONG_BIN


def _carry_to(sim, item_id, bin_id):
    """Scripted scenario: the expert core carries `item_id` to `bin_id` (right or wrong)."""
    ex = ScriptedExpert(sim.desc.arm)
    n0 = len(sim.events)
    for _ in range(600):
        gt = {g.item_id: g for g in sim.ground_truth()}
        it = gt.get(item_id)
        holding = sim.holding() is not None
        obs = ExpertObservation(
            q=sim.joint_positions(),
            target=None if it is None or it.grasped else it.pick_point,
            target_velocity=np.zeros(3) if it is None else it.velocity,
            place=sim.desc.place_point(bin_id),
            suction=sim.suction,
            holding=holding,
        )
        act = ex.act(obs)
        sim.command_joints(act.q)
        sim.set_suction(act.suction)
        sim.step(0.02)
        if len(sim.events) > n0:
            break
    sim.step(1.0)
    return sim.pop_events()


def test_scoring_correct_sort_wrong_bin_and_miss():
    sim = CellSim(SimConfig(seed=0, render_enabled=False, spawn_interval_s=0.0))
    can = sim.spawn_item("aluminium_can", x=-0.2, y=0.0)
    ev = _carry_to(sim, can, "metal")
    assert [(e.item_id, e.outcome, e.bin_id, e.correct) for e in ev] == [(can, CORRECT, "metal", True)]

    jug = sim.spawn_item("hdpe_jug", x=-0.2, y=0.05)
    ev = _carry_to(sim, jug, "glass")
    assert [(e.item_id, e.outcome, e.bin_id, e.correct) for e in ev] == [(jug, WRONG_BIN, "glass", False)]

    # nobody picks: the item rides off the end of the belt
    paper = sim.spawn_item("paper", x=0.8, y=0.0)
    sim.step(4.0)
    ev = sim.pop_events()
    assert [(e.item_id, e.outcome, e.bin_id) for e in ev] == [(paper, MISSED, "")]
    s = sim.score.totals()
    assert (s.correct, s.wrong_bin, s.missed) == (1, 1, 1)
    sim.close()


def test_drop_on_floor_is_scored_dropped():
    sim = CellSim(SimConfig(seed=0, render_enabled=False, spawn_interval_s=0.0))
    iid = sim.spawn_item("cardboard", x=0.0, y=0.0)
    # teleport it beside the belt, above the floor, away from the bins
    slot = next(it.slot for it in sim.items.items if it.item_id == iid)
    sim.data.qpos[slot.qpos : slot.qpos + 3] = (0.0, 0.6, 0.5)
    sim.step(2.0)
    ev = sim.pop_events()
    assert [(e.item_id, e.outcome) for e in ev] == [(iid, DROPPED)]
    sim.close()


def test_expert_sorts_at_least_95_percent_at_nominal_speed():
    sim = CellSim(SimConfig(seed=7, render_enabled=False))
    assert sim.belt_speed == sim.desc.belt.speed
    drv = ExpertDriver(sim)
    for _ in range(int(60.0 / 0.02)):
        drv.tick()
        sim.step(0.02)
    tot = sim.score.totals()
    assert tot.total >= 10, sim.score.table()
    assert tot.correct / tot.total >= 0.95, sim.score.table()
    sim.close()


def test_a_scored_item_is_frozen_without_contacts_and_the_physics_never_resets():
    """Scored items stay visible until they despawn, frozen where they were scored and without
    contacts: a scored item wedged in a bin once diverged (velocity x10 per step) until MuJoCo's
    auto-reset wiped the whole cell. Two items scored into the same spot stay put, and the cell
    counts MuJoCo's auto-resets (their own warning counters are wiped by each reset)."""
    sim = CellSim(SimConfig(seed=0, render_enabled=False, spawn_interval_s=0.0))
    can = sim.spawn_item("aluminium_can", x=-0.2, y=0.0)
    assert [e.outcome for e in _carry_to(sim, can, "metal")] == [CORRECT]
    it = next(i for i in sim.items.items if i.item_id == can)
    pos = sim.items.position(it).copy()
    assert it.state == "scored" and sim.model.geom_contype[it.slot.geom] == 0
    assert sim.model.geom_conaffinity[it.slot.geom] == 0
    # another item scored on top of it, interpenetrating: no contact forces, no motion
    jar = sim.spawn_item("glass_bottle", x=-0.2, y=0.05)
    other = next(i for i in sim.items.items if i.item_id == jar)
    sim.data.qpos[other.slot.qpos : other.slot.qpos + 3] = pos
    sim.items.mark_scored(other, sim.time)
    sim.step(0.3)  # (scored 1.0 s ago; it despawns at 1.5 s)
    np.testing.assert_allclose(sim.items.position(it), pos, atol=1e-9)
    assert sim.physics_resets == 0
    t = sim.data.time
    sim.data.qvel[:] = 1e12  # a diverged state: MuJoCo resets it, the cell counts it
    sim.step(0.02)
    assert sim.physics_resets == 1 and sim.data.time < t
    sim.close()


def test_an_item_is_scored_under_the_light_it_passed_the_arm_in():
    """A missed item leaves play about 10 s after it passes the arm; on a shift day the light may
    have changed by then. It counts for the light it was presented in, not the one it fell off in."""
    sim = CellSim(SimConfig(seed=0, render_enabled=False, spawn_interval_s=0.0))
    passed = sim.spawn_item("paper", x=-0.3, y=0.0)
    sim.step(4.0)  # 0.4 m at 0.1 m/s: past the arm's base (x = 0), still on the belt
    assert not sim.pop_events()
    sim.set_lighting("night_noise")
    late = sim.spawn_item("cardboard", x=0.8, y=0.1)  # put down past the arm: never presented
    sim.step(12.0)
    ev = {e.item_id: (e.outcome, e.lighting_domain) for e in sim.pop_events()}
    assert ev == {passed: (MISSED, "daylight"), late: (MISSED, "night_noise")}
    assert sim.score.domains["daylight"].missed == 1 and sim.score.domains["night_noise"].missed == 1
    sim.close()
