"""Controller: the per-tick logic with a stand-in policy (pure Python, no ONNX)."""

import numpy as np
import pytest
from policy_helpers import JOINTS, cell_limits, goal, tiny_meta

from fast_policy.controller import Controller, ControllerConfig, LoopStats
from fast_policy.spec import OBS_DIM

HOME = np.array([1.5708, 0.9, -1.6, -0.87])


class TowardsPolicy:
    """Stand-in policy: every chunk step asks for +delta (normalised units) on every joint."""

    def __init__(self, k=10, out=1.0, suction=5.0):
        self.k, self.out, self.suction, self.calls, self.last_obs = k, out, suction, 0, None

    def __call__(self, obs):
        assert obs.shape == (OBS_DIM,) and obs.dtype == np.float32
        self.calls += 1
        self.last_obs = obs.copy()
        a = np.full((self.k, 5), self.out, np.float32)
        a[:, 4] = self.suction
        return a


def make(policy=None, **cfg):
    return Controller(policy or TowardsPolicy(), tiny_meta(), cell_limits(), ControllerConfig(**cfg))


def feed(c, t, pos=HOME, vel=(0, 0, 0, 0)):
    return c.on_joint_state(JOINTS, list(pos), list(vel), t)


def test_no_joint_state_publishes_nothing():
    c = make()
    c.on_goal(goal(0.0))
    assert c.tick(0.0) is None


def test_no_goal_holds_and_keeps_suction():
    c = make()
    feed(c, 0.0)
    c.suction = True  # an item is held
    cmd = c.tick(0.01)
    assert cmd.mode == "hold" and cmd.reason == "no goal" and cmd.suction is True
    np.testing.assert_allclose(cmd.positions, HOME)
    assert c.holds == 1


def test_goal_runs_policy_within_limits_and_sets_suction():
    pol = TowardsPolicy()
    c = make(pol)
    lim = cell_limits()
    t = 100.0
    c.on_goal(goal(t, valid_for=5.0))
    prev_q, prev_v = HOME, np.zeros(4)  # starts at rest at HOME
    for _ in range(50):
        t += 0.02
        feed(c, t, pos=c.limiter.q if c.limiter.q is not None else HOME)
        cmd = c.tick(t)
        assert cmd.mode == "policy" and cmd.suction is True
        assert np.all(cmd.positions >= lim.lower) and np.all(cmd.positions <= lim.upper)
        v = (cmd.positions - prev_q) / 0.02
        assert np.all(np.abs(v) <= lim.max_velocity + 1e-9)
        assert np.all(np.abs(v - prev_v) <= lim.max_acceleration * 0.02 + 1e-9)
        prev_q, prev_v = cmd.positions, v
    assert pol.calls == 50 and c.policy_ticks == 50
    assert np.all(prev_q > HOME)  # moved in the commanded direction


def test_observation_layout_and_normalisation():
    pol = TowardsPolicy()
    c = make(pol)
    c.on_belt(2.0)
    c.on_goal(goal(0.0, frame="belt", target=(0.1, -0.2, 0.3)))
    feed(c, 0.0, vel=(0.1, 0.2, 0.3, 0.4))
    c.tick(0.01)
    o = pol.last_obs  # tiny_meta: mean 0, std 1 -> raw values (clipped at 10)
    np.testing.assert_allclose(o[:4], HOME, atol=1e-6)
    np.testing.assert_allclose(o[4:8], [0.1, 0.2, 0.3, 0.4], atol=1e-6)
    assert o[8] == 0.0
    np.testing.assert_allclose(o[9:12], [2.1, -0.2, 0.3], atol=1e-6)  # belt -> world
    np.testing.assert_allclose(o[12:15], [-0.5, -0.95, 0.5], atol=1e-6)
    assert o[15] == 1.0
    np.testing.assert_allclose(o[16:], 0.1, atol=1e-6)


def test_stale_goal_holds_and_decelerates_within_accel():
    c = make()
    lim = cell_limits()
    t = 0.0
    c.on_goal(goal(t, valid_for=0.3))
    speeds, modes = [], []
    for _ in range(60):
        t += 0.02
        feed(c, t, pos=c.limiter.q if c.limiter.q is not None else HOME)
        v0 = c.limiter.v.copy() if c.limiter.v is not None else np.zeros(4)
        cmd = c.tick(t)
        modes.append(cmd.mode)
        assert np.all(np.abs(c.limiter.v - v0) <= lim.max_acceleration * 0.02 + 1e-9)
        speeds.append(np.abs(c.limiter.v).max())
    first_hold = modes.index("hold")
    assert first_hold > 0 and all(m == "hold" for m in modes[first_hold:])
    assert c.hold_reason == "goal stale"
    assert speeds[first_hold - 1] > 0.1  # it was moving
    assert speeds[-1] == 0.0  # and came to a stop


def test_nan_policy_output_rejected_hold_counted():
    c = make(TowardsPolicy(out=np.nan))
    c.on_goal(goal(0.0))
    feed(c, 0.0)
    cmd = c.tick(0.01)
    assert cmd.mode == "hold" and cmd.reason == "non-finite policy output"
    assert c.limiter.rejected == 1
    assert np.all(np.isfinite(cmd.positions))


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
    c.on_goal(goal(0.0, valid_for=10))
    feed(c, 0.0)
    assert c.tick(0.05).mode == "policy"
    cmd = c.tick(0.2)
    assert cmd.mode == "hold" and cmd.reason == "joint states stale"


def test_chunk_mode_infers_once_per_chunk():
    pol = TowardsPolicy()
    c = make(pol, chunk_mode="chunk")
    c.on_goal(goal(0.0, valid_for=10))
    for i in range(25):
        feed(c, i * 0.02, pos=c.limiter.q if c.limiter.q is not None else HOME)
        assert c.tick(i * 0.02).mode == "policy"
    assert pol.calls == 3  # ticks 1, 11, 21


def test_temporal_ensemble_weights_average_overlapping_chunks():
    class Const:
        def __init__(self):
            self.val = 0.0

        def __call__(self, obs):
            return np.full((10, 5), self.val, np.float32)

    pol = Const()
    c = make(pol, ensemble_decay=0.0)  # equal weights
    c.on_goal(goal(0.0, valid_for=10))
    feed(c, 0.0)
    c.tick(0.0)
    pol.val = 1.0  # second chunk asks for +0.1 rad (std 0.1); average with the first = +0.05
    target, _ = c._next_target(c.goals.current(0.0, None))
    np.testing.assert_allclose(target, HOME + 0.05, atol=1e-6)


def test_resync_after_large_tracking_error():
    c = make()
    c.on_goal(goal(0.0, valid_for=10))
    feed(c, 0.0)
    c.tick(0.0)
    feed(c, 0.02, pos=HOME + np.array([1.0, 0, 0, 0]))  # e.g. the sim was reset
    c.tick(0.02)
    assert c.resyncs == 1
    assert abs(c.limiter.q[0] - (HOME[0] + 1.0)) < 0.1


@pytest.mark.parametrize(
    "kw,name",
    [
        ({"rate_hz": 0}, "rate_hz"),
        ({"chunk_mode": "magic"}, "chunk_mode"),
        ({"suction_threshold": 1.5}, "suction"),
    ],
)
def test_controller_config_validation(kw, name):
    with pytest.raises(ValueError, match=name):
        ControllerConfig(**kw)


def test_model_joint_names_must_match():
    meta = tiny_meta()
    meta.joint_names = ["a", "b", "c", "d"]
    with pytest.raises(ValueError, match="joint names"):
        Controller(TowardsPolicy(), meta, cell_limits())


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


def test_absolute_action_mode_ignores_current_position():
    meta = tiny_meta()
    meta.action_relative = False
    meta.action_mean[:] = np.array(HOME) + 0.05  # the model "asks" for HOME + 0.05 on every joint
    c = Controller(TowardsPolicy(out=0.0), meta, cell_limits(), ControllerConfig(ensemble_decay=0.0))
    c.on_goal(goal(0.0, valid_for=10))
    c.on_joint_state(JOINTS, list(HOME + 0.3), [0.0] * 4, 0.0)
    target, _ = c._next_target(c.goals.current(0.0, None))
    np.testing.assert_allclose(target, HOME + 0.05, atol=1e-6)
