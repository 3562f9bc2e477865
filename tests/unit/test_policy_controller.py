"""Controller: the task-space per-tick logic with stand-in chunk sources (pure Python, no ONNX).

Holds, NaN handling, the IK fallback, the place latch and goal spending, the limits on every
command, chunk execution modes."""

import numpy as np
import pytest
from policy_helpers import JOINTS, cell_limits, goal

from fast_policy.controller import Controller, ControllerConfig, LoopStats, TickState
from fast_policy.spec import ACTION_DIM, OBS_DIM, OBS_SLICES
from s1s2 import kinematics as kin
from s1s2.cell import DEFAULT_CELL

ARM = DEFAULT_CELL.arm
LIM = cell_limits()
HOME = ARM.home()
K = 10
BIN_A, BIN_B = (-0.66, -0.95, 0.5), (0.33, -0.95, 0.5)


class Towards:
    """Stand-in policy: every waypoint is `frac` of the way to the target (or, without one, the place)."""

    def __init__(self, suction=-5.0, frac=1.0):
        self.suction, self.frac, self.calls, self.states = suction, frac, 0, []

    def __call__(self, st: TickState):
        assert st.obs.shape == (OBS_DIM,) and st.obs.dtype == np.float32
        self.calls += 1
        self.states.append(st)
        rel = st.obs[OBS_SLICES["target_rel"]] if st.has_target else st.obs[OBS_SLICES["place_rel"]]
        out = np.zeros((K, ACTION_DIM), np.float32)
        out[:, :3] = self.frac * rel
        out[:, 3] = self.suction
        return out


def make(policy=None, **cfg):
    return Controller(policy or Towards(), K, LIM, ARM, ControllerConfig(**cfg))


def feed(c, t, q=HOME, qd=(0, 0, 0, 0), holding=False, odo=0.0, speed=0.1):
    c.on_joint_state(JOINTS, list(q), list(qd), t)
    c.on_vacuum(holding, t)
    c.on_belt(odo, speed, t)


def pick_goal(stamp, target=(-0.6, 0.0, 0.35), place=BIN_A, label="pet_bottle", frame="world", valid=1.0):
    return goal(stamp, frame=frame, label=label, target=target, place=place, valid_for=valid, plan_id="t")


def test_no_joint_state_no_command():
    c = make()
    c.on_goal(pick_goal(0.0))
    assert c.tick(0.0) is None


@pytest.mark.parametrize("missing", ["goal", "vacuum"])
def test_missing_inputs_hold_and_keep_suction(missing):
    c = make()
    c.on_joint_state(JOINTS, list(HOME), [0] * 4, 0.0)
    if missing != "vacuum":
        c.on_vacuum(False, 0.0)
    if missing != "goal":
        c.on_goal(pick_goal(0.0))
    c.suction = True
    cmd = c.tick(0.01)
    assert cmd.mode == "hold" and cmd.suction is True
    np.testing.assert_allclose(cmd.positions, HOME)


def test_observation_is_task_space():
    pol = Towards()
    c = make(pol)
    c.on_goal(pick_goal(0.0, target=(-0.6, 0.0, 0.35)))
    feed(c, 0.0, qd=(0.1, 0.0, 0.0, 0.0), speed=0.12)
    c.tick(0.0)
    o, tip = pol.states[-1].obs, kin.forward(ARM, HOME)
    np.testing.assert_allclose(o[OBS_SLICES["tip_pos"]], tip, atol=1e-6)
    np.testing.assert_allclose(o[OBS_SLICES["tip_vel"]], kin.jacobian(ARM, HOME) @ [0.1, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(o[OBS_SLICES["target_rel"]], np.array([-0.6, 0.0, 0.35]) - tip, atol=1e-6)
    np.testing.assert_allclose(o[OBS_SLICES["place_rel"]], np.array(BIN_A) - tip, atol=1e-6)
    np.testing.assert_allclose(o[OBS_SLICES["target_vel"]], 0.0)  # world-frame goal: not moving
    assert o[OBS_SLICES["has_target"]] == 1 and o[OBS_SLICES["holding"]] == 0
    assert o[OBS_SLICES["belt_speed"]] == pytest.approx(0.12)
    np.testing.assert_allclose(o[OBS_SLICES["joint_pos"]], HOME, atol=1e-6)


def test_goal_runs_policy_within_limits_and_moves_towards_target():
    c = make(Towards(suction=5.0))
    target = np.array([-0.3, -0.1, 0.45])
    c.on_goal(pick_goal(0.0, target=tuple(target), valid=100))
    q, v, t = HOME.copy(), np.zeros(4), 0.0
    d0 = np.linalg.norm(kin.forward(ARM, q) - target)
    for _ in range(150):
        feed(c, t, q=q, qd=v)
        cmd = c.tick(t)
        assert cmd.mode == "policy" and cmd.suction
        v_new = (cmd.positions - q) / 0.02
        assert np.all(np.abs(v_new) <= LIM.max_velocity + 1e-6)
        assert np.all(np.abs(v_new - v) <= LIM.max_acceleration * 0.02 + 1e-6)
        assert np.all(cmd.positions >= LIM.lower - 1e-9) and np.all(cmd.positions <= LIM.upper + 1e-9)
        q, v, t = cmd.positions, v_new, t + 0.02
    assert np.linalg.norm(kin.forward(ARM, q) - target) < 0.05 * d0


def test_stale_goal_holds_and_decelerates_within_accel():
    c = make()
    t, q, v = 0.0, HOME.copy(), np.zeros(4)
    c.on_goal(pick_goal(t, target=(-0.3, -0.1, 0.45), valid=0.3))
    speeds, modes = [], []
    for _ in range(60):
        t += 0.02
        feed(c, t, q=q, qd=v)
        cmd = c.tick(t)
        v_new = (cmd.positions - q) / 0.02
        assert np.all(np.abs(v_new - v) <= LIM.max_acceleration * 0.02 + 1e-6)
        modes.append(cmd.mode)
        speeds.append(np.abs(v_new).max())
        q, v = cmd.positions, v_new
    first_hold = modes.index("hold")
    assert first_hold > 0 and all(m == "hold" for m in modes[first_hold:])
    assert c.hold_reason == "goal stale"
    assert speeds[first_hold - 1] > 0.1  # it was moving
    assert speeds[-1] < 1e-9  # and came to a stop


def test_arm_is_at_rest_by_the_time_the_goal_goes_stale():
    """The hold starts early enough (stopping time at the acceleration limit) that the arm is
    still when stamp + valid_for + margin is reached, not after it; it holds until a newer goal."""
    c = make()
    t, q, v = 0.0, HOME.copy(), np.zeros(4)
    valid = 0.5
    c.on_goal(pick_goal(t, target=(-0.3, -0.1, 0.45), valid=valid))
    expiry = valid + c.goals.timeout_margin_s
    moving_before, rows = 0.0, []
    while t < expiry + 0.3:
        t += 0.02
        feed(c, t, q=q, qd=v)
        cmd = c.tick(t)
        v_new = (cmd.positions - q) / 0.02
        rows.append((t, cmd.mode, np.abs(v_new).max()))
        moving_before = max(moving_before, np.abs(v_new).max() if t < expiry - 0.3 else 0.0)
        q, v = cmd.positions, v_new
    assert moving_before > 0.3  # it was moving fast
    at_expiry = [s for tt, _, s in rows if tt >= expiry - 1e-9]
    assert max(at_expiry) < 1e-9, rows  # still at and after the expiry
    modes = [m for _, m, _ in rows]
    first_hold = modes.index("hold")
    assert all(m == "hold" for m in modes[first_hold:]) and c.hold_reason == "goal stale"
    assert rows[first_hold][0] < expiry  # the hold began before the goal was stale
    c.on_goal(pick_goal(t, target=(-0.3, -0.1, 0.45), valid=valid))  # a newer goal: tracking again
    feed(c, t + 0.02, q=q, qd=v)
    assert c.tick(t + 0.02).mode == "policy"


@pytest.mark.parametrize("where", ["vacuum", "goal", "joint", "belt", "policy"])
def test_nan_anywhere_holds_never_nan_command(where):
    pol = Towards()
    if where == "policy":
        pol = lambda st: np.full((K, ACTION_DIM), np.nan, np.float32)  # noqa: E731
    c = make(pol)
    frame = "belt" if where == "belt" else "world"
    c.on_goal(pick_goal(0.0, frame=frame))
    feed(c, 0.0)
    assert c.tick(0.0).mode == ("hold" if where == "policy" else "policy")
    t = 0.02
    if where == "vacuum":
        assert not c.on_vacuum(float("nan"), t)
    elif where == "goal":
        assert not c.on_goal(pick_goal(t, target=(np.nan, 0.0, 0.3)))
    elif where == "joint":
        assert not c.on_joint_state(JOINTS, [np.nan, 0, 0, 0], [0] * 4, t)
    elif where == "belt":
        assert not c.on_belt(float("inf"), 0.1, t)
    cmds = [c.tick(t + 0.02 * i) for i in range(40)]
    assert all(np.all(np.isfinite(x.positions)) for x in cmds)
    if where in ("vacuum", "policy"):
        assert all(x.mode == "hold" for x in cmds)
        assert cmds[0].reason in ("no valid vacuum reading", "non-finite or mis-shaped policy output")
    if where in ("joint", "belt"):
        assert cmds[-1].mode == "hold"  # the last good reading goes stale
    if where == "goal":
        assert c.goals.rejected == 1  # the bad goal is refused; the previous one keeps running


def test_absurd_policy_output_holds():
    c = make(lambda st: np.full((K, ACTION_DIM), 5.0, np.float32))  # 5 m waypoints
    c.on_goal(pick_goal(0.0))
    feed(c, 0.0)
    cmd = c.tick(0.0)
    assert cmd.mode == "hold" and cmd.reason == "policy output out of range" and c.bad_outputs == 1


def test_unreachable_goal_moves_towards_it_within_limits_no_jump():
    c = make()
    far = (0.0, 1.6, 0.4)  # beyond reach
    t = 0.0
    c.on_goal(pick_goal(t, target=far, valid=100))
    q, v = HOME.copy(), np.zeros(4)
    d0 = np.linalg.norm(kin.forward(ARM, q) - far)
    for _ in range(150):
        feed(c, t, q=q, qd=v)
        cmd = c.tick(t)
        v_new = (cmd.positions - q) / 0.02
        assert np.all(np.abs(v_new) <= LIM.max_velocity + 1e-6)
        assert np.all(np.abs(v_new - v) <= LIM.max_acceleration * 0.02 + 1e-6)
        q, v, t = cmd.positions, v_new, t + 0.02
    assert c.ik_fallbacks > 0
    assert np.linalg.norm(kin.forward(ARM, q) - far) < d0 - 0.1


def test_place_latched_at_grasp_and_goal_spent():
    pol = Towards()
    c = make(pol)
    t = 0.0
    c.on_goal(pick_goal(t, place=BIN_A))  # item A -> plastic
    feed(c, t)
    c.tick(t)
    # the item attaches; System 2 already points at item B (another bin)
    t = 0.5
    c.on_goal(pick_goal(t, target=(-0.4, 0.1, 0.35), place=BIN_B, label="glass_bottle"))
    feed(c, t, holding=True)
    c.tick(t)
    st = pol.states[-1]
    assert st.holding and not st.has_target
    np.testing.assert_allclose(st.place, BIN_A)  # A's bin, latched
    np.testing.assert_allclose(st.obs[OBS_SLICES["target_rel"]], 0.0)
    # released: a goal made before the grasp is spent, the next fresher one is used
    t = 2.0
    feed(c, t, holding=False)
    c.on_goal(pick_goal(0.4, target=(-0.4, 0.1, 0.35), place=BIN_B, valid=3.0))
    c.tick(t)
    assert not pol.states[-1].has_target
    c.on_goal(pick_goal(1.9, target=(-0.4, 0.1, 0.35), place=BIN_B))
    c.tick(t + 0.02)
    assert pol.states[-1].has_target
    np.testing.assert_allclose(pol.states[-1].place, BIN_B)


def test_plans_pursued_without_a_grasp_are_counted_once_each_and_reset_by_a_grasp():
    """The stall signal: a plan counts once however many ticks pursue it; holds do not count; a
    grasp resets the streak and the day's longest streak stays."""
    c = make(Towards(frac=0.0))
    t = 0.0
    for _ in range(5):  # five plans, each pursued for 50 ticks, none grasped
        c.on_goal(pick_goal(t))
        for _tick in range(50):
            feed(c, t)
            c.tick(t)
            t += 0.02
    assert c.pursued_without_grasp == 5 and c.grasps == 0
    assert c.stall_warning(5).startswith("no grasp in the last 5 plans") and c.stall_warning(6) == ""
    assert c.stall_warning(0) == ""  # 0 = off
    c.on_goal(pick_goal(t, label=""))  # nothing to pick: not a pursued plan
    feed(c, t)
    c.tick(t)
    assert c.pursued_without_grasp == 5
    feed(c, t + 0.02, holding=True)  # the item attaches
    c.tick(t + 0.02)
    d = c.diagnostics()
    assert d["grasps"] == "1" and d["plans_pursued_since_grasp"] == "0"
    assert d["plans_pursued_since_grasp_max"] == "5" and c.stall_warning(1) == ""


@pytest.mark.parametrize("radius, offset_m, hold_at, pursued", [
    (0.1, 0.03, 0.5, True),   # the tool is over the item: the pick goes on
    (0.0, 0.03, 0.5, False),  # commitment off: the newer goal (nothing to pick) wins
    (0.1, 0.30, 0.5, False),  # the tool is far from the item: not a pick under way
    (0.1, 0.03, 1.2, False),  # the pursued goal itself is stale by then: no target
])  # fmt: skip
def test_a_pick_under_way_outlives_a_newer_hold_goal_only_near_its_item(radius, offset_m, hold_at, pursued):
    pol = Towards(frac=0.0)  # the arm stays where it is
    c = make(pol, commit_radius_m=radius)
    tip = kin.forward(ARM, HOME)
    target = (tip[0] + offset_m, tip[1], 0.35)  # belt frame, odometry 0 at t = 0
    c.on_goal(pick_goal(0.0, target=target, frame="belt", valid=1.0))
    feed(c, 0.0)
    c.tick(0.0)
    assert pol.states[-1].has_target
    c.on_goal(pick_goal(hold_at - 0.05, label="", frame="belt", valid=1.0))  # System 2: nothing to pick
    feed(c, hold_at, odo=0.01)
    c.tick(hold_at)
    st = pol.states[-1]
    assert st.has_target is pursued
    if pursued:  # the kept target still moves with the belt
        np.testing.assert_allclose(st.target, (target[0] + 0.01, target[1], 0.35), atol=1e-6)
        np.testing.assert_allclose(st.place, BIN_A)
        assert c.commits == 1
    else:
        assert c.commits == 0


def test_belt_frame_target_moves_with_odometry_and_has_velocity():
    pol = Towards()
    c = make(pol)
    c.on_goal(pick_goal(0.0, target=(-0.7, 0.0, 0.35), frame="belt"))
    feed(c, 0.0, odo=0.2, speed=0.12)
    c.tick(0.0)
    st = pol.states[-1]
    np.testing.assert_allclose(st.target, (-0.5, 0.0, 0.35), atol=1e-6)
    np.testing.assert_allclose(st.target_vel, (0.12, 0.0, 0.0))


def test_belt_speed_estimated_from_odometry_without_velocity():
    c = make()
    for i in range(50):
        c.on_belt(0.1 * 0.02 * i, None, 0.02 * i)
    assert c.belt_speed == pytest.approx(0.1, rel=0.05)


def test_malformed_joint_states_dropped():
    c = make()
    assert not c.on_joint_state(JOINTS, [0.0, np.nan, 0.0, 0.0], [0.0] * 4, 0.0)
    assert not c.on_joint_state(JOINTS[:3], [0.0] * 3, [0.0] * 3, 0.0)  # missing a joint
    assert not c.on_joint_state([], [0.0] * 3, [], 0.0)  # wrong count, no names
    assert not c.on_joint_state(JOINTS, [0.0] * 4, [np.inf, 0, 0, 0], 0.0)
    assert c.dropped_joint_states == 4 and c.joint_pos is None
    # names in another order + an extra joint: reordered to description order
    assert c.on_joint_state(["elbow", "belt", *JOINTS[:2], "wrist_pitch"], [3, 9, 1, 2, 4], [], 0.0)
    np.testing.assert_array_equal(c.joint_pos, [1, 2, 3, 4])


def test_stale_joint_state_holds():
    c = make(joint_state_timeout_s=0.1)
    c.on_goal(pick_goal(0.0, valid=10))
    feed(c, 0.0)
    assert c.tick(0.05).mode == "policy"
    c.on_vacuum(False, 0.2)
    cmd = c.tick(0.2)
    assert cmd.mode == "hold" and cmd.reason == "joint states stale"


def test_resync_after_large_tracking_error():
    c = make()
    c.on_goal(pick_goal(0.0, valid=10))
    feed(c, 0.0)
    c.tick(0.0)
    feed(c, 0.02, q=HOME + np.array([1.0, 0, 0, 0]))  # e.g. the sim was reset
    c.tick(0.02)
    assert c.resyncs == 1
    assert abs(c.limiter.q[0] - (HOME[0] + 1.0)) < 0.1


def test_aim_index_selects_the_waypoint():
    """aim_index k: the limiter is aimed at waypoint k (here each waypoint i is (i+1) cm along +x)."""

    def ramp(st):
        out = np.zeros((K, ACTION_DIM), np.float32)
        out[:, 0] = 0.01 * np.arange(1, K + 1)
        return out

    for idx, want in ((0, 0.01), (-1, 0.10), (4, 0.05)):
        c = make(ramp, aim_index=idx)
        c.on_goal(pick_goal(0.0))
        feed(c, 0.0)
        c.tick(0.0)
        np.testing.assert_allclose(c.last_aim - kin.forward(ARM, HOME), (want, 0, 0), atol=1e-6)


def test_temporal_ensemble_averages_predictions_for_the_same_tick():
    class Const:
        def __init__(self):
            self.x = 0.0

        def __call__(self, st):
            out = np.zeros((K, ACTION_DIM), np.float32)
            out[:, 0] = self.x
            return out

    pol = Const()
    c = make(pol, chunk_mode="temporal_ensemble", aim_index=5, ensemble_decay=0.0)
    c.on_goal(pick_goal(0.0, valid=10))
    feed(c, 0.0)
    c.tick(0.0)
    pol.x = 0.02  # the second chunk asks for +2 cm; equal weights with the first: +1 cm
    c.tick(0.02)
    np.testing.assert_allclose(c.last_aim - kin.forward(ARM, HOME), (0.01, 0, 0), atol=1e-6)


def test_execution_from_model_overrides_parameters():
    base = ControllerConfig(chunk_mode="temporal_ensemble", aim_index=3)
    got = base.with_execution({"chunk_mode": "aim", "aim_index": -1, "suction_index": 0})
    assert (got.chunk_mode, got.aim_index) == ("aim", -1)
    off = ControllerConfig(execution_from_model=False, aim_index=3).with_execution({"aim_index": -1})
    assert off.aim_index == 3


@pytest.mark.parametrize(
    "kw,name",
    [
        ({"rate_hz": 0}, "rate_hz"),
        ({"chunk_mode": "magic"}, "chunk_mode"),
        ({"suction_threshold": 1.5}, "suction"),
        ({"aim_index": 500}, "aim_index"),
    ],
)
def test_controller_config_validation(kw, name):
    with pytest.raises(ValueError, match=name):
        ControllerConfig(**kw)


def test_aim_index_outside_the_chunk_refused():
    with pytest.raises(ValueError, match="aim_index"):
        make(aim_index=K)


def test_cell_joint_names_must_match_the_limiter():
    from fast_policy.safety import JointLimits

    other = JointLimits(("a", "b", "c", "d"), LIM.lower, LIM.upper, LIM.max_velocity, LIM.max_acceleration)
    with pytest.raises(ValueError, match="arm joints"):
        Controller(Towards(), K, other, ARM)


def test_loop_stats_counts_late_and_slow_ticks():
    s = LoopStats(50.0)
    t = 0.0
    for _ in range(10):
        s.record(t, 0.001)
        t += 0.02
    s.record(t + 0.02, 0.001)  # started a whole period late
    s.record(t + 0.04, 0.05)  # took longer than a period
    assert s.missed == 2 and s.ticks == 12
    assert 40 < s.rate_hz() < 60
    assert s.percentile_ms(50) == pytest.approx(1.0)


def test_diagnostics_say_when_the_policy_resumed():
    c = make()
    for i in range(5):  # no goal: hold
        feed(c, i * 0.02)
        c.tick(i * 0.02)
    assert c.diagnostics()["mode"] == "hold" and float(c.diagnostics()["mode_since_s"]) == 0.0
    c.on_goal(pick_goal(0.1))
    for i in range(5, 10):
        feed(c, i * 0.02)
        c.tick(i * 0.02)
    d = c.diagnostics()
    assert d["mode"] == "policy" and abs(float(d["mode_since_s"]) - 0.1) < 1e-9


def _carry(c, seconds, q=None, t0=0.0, goal_valid=100.0):
    """Hold an item from t0 for `seconds`, the arm tracking every command exactly; returns the
    commands and the tip positions."""
    c.on_goal(pick_goal(t0, place=BIN_A, valid=goal_valid))
    q, v, t = (HOME.copy() if q is None else q), np.zeros(4), t0
    cmds, tips = [], []
    holding = True
    for _ in range(int(round(seconds / 0.02))):
        feed(c, t, q=q, qd=v, holding=holding)
        cmd = c.tick(t)
        v_new = (cmd.positions - q) / 0.02
        assert np.all(np.abs(v_new) <= LIM.max_velocity + 1e-6)
        assert np.all(np.abs(v_new - v) <= LIM.max_acceleration * 0.02 + 1e-6)
        cmds.append(cmd)
        tips.append(kin.forward(ARM, cmd.positions))
        holding = holding and cmd.suction  # the cup lets go when suction goes off
        q, v, t = cmd.positions, v_new, t + 0.02
    return cmds, np.asarray(tips)


def test_an_item_held_past_the_carry_timeout_is_placed_by_a_scripted_move():
    """A policy that holds the arm still and never lets go (the stall seen on a shift day: the
    cup held an item for three minutes) is taken over after carry_timeout_s: the tool goes to the
    place latched at the grasp, within the limits, and lets go there."""
    stuck = Towards(suction=5.0, frac=0.0)
    c = make(stuck, carry_timeout_s=2.0, place_radius_m=0.04)
    cmds, tips = _carry(c, 8.0)
    modes = [m.mode for m in cmds]
    first = modes.index("place")
    assert all(m == "policy" for m in modes[:first]) and 2.0 <= first * 0.02 <= 2.1
    released = next(i for i, m in enumerate(cmds) if not m.suction)
    assert released > first and np.linalg.norm(tips[released] - np.asarray(BIN_A)) <= 0.04
    assert c.stall_warning(20) == ""  # let go: the WARN ends with the place
    assert all(m.suction for m in cmds[:released])  # nothing let go on the way
    d = c.diagnostics()
    assert d["carry_timeouts"] == "1" and float(d["carry_max_s"]) >= 2.0
    # off: the same policy keeps the item on the cup, the arm where it was
    c_off = make(Towards(suction=5.0, frac=0.0), carry_timeout_s=0.0)
    cmds_off, tips_off = _carry(c_off, 8.0)
    assert all(m.mode == "policy" and m.suction for m in cmds_off)
    assert np.linalg.norm(tips_off[-1] - tips_off[0]) < 1e-6 and c_off.diagnostics()["carry_timeouts"] == "0"


def test_the_diagnostics_warn_while_a_scripted_place_is_under_way():
    c = make(Towards(suction=5.0, frac=0.0), carry_timeout_s=1.0)
    cmds, _ = _carry(c, 1.2)  # past the timeout, still on the way to the bin
    assert cmds[-1].mode == "place" and cmds[-1].suction
    assert c.stall_warning(20).startswith("an item stayed on the cup past carry_timeout_s")


def test_a_carry_past_the_timeout_still_holds_on_a_stale_goal():
    """The scripted place is a System 1 move like any other: without a fresh goal it holds."""
    c = make(Towards(suction=5.0, frac=0.0), carry_timeout_s=1.0)
    cmds, _ = _carry(c, 3.0, goal_valid=0.5)
    assert all(m.mode == "hold" for m in cmds[40:]) and c.hold_reason == "goal stale"
    assert all(m.suction for m in cmds) and c.diagnostics()["carry_timeouts"] == "0"
