"""SafetyLimiter: position/velocity/acceleration limits on every command, NaN/inf rejection, hold."""

import numpy as np
import pytest
from policy_helpers import cell_limits

from fast_policy.safety import JointLimits, SafetyLimiter, max_speed_to_stop_within

DT = 0.02
EPS = 1e-9


def _check_step(lim: JointLimits, q0, v0, q1, v1):
    assert np.all(q1 >= lim.lower - EPS) and np.all(q1 <= lim.upper + EPS), q1
    assert np.all(np.abs(v1) <= lim.max_velocity + 1e-9), v1
    assert np.all(np.abs(v1 - v0) <= lim.max_acceleration * DT + 1e-9), (v1 - v0) / DT


@pytest.mark.parametrize("seed", range(40))
def test_random_commands_respect_all_limits(seed):
    """Property: from any in-limit start at rest, random targets (wild, out of range, NaN, inf,
    jumps) never produce a command outside position/velocity/acceleration limits."""
    rng = np.random.default_rng(seed)
    lim = cell_limits()
    s = SafetyLimiter(lim, DT)
    s.reset(rng.uniform(lim.lower, lim.upper), np.zeros(4))
    target = rng.uniform(lim.lower, lim.upper)
    n_bad = 0
    for _ in range(300):
        r = rng.random()
        if r < 0.05:
            t = target.copy()
            t[rng.integers(4)] = rng.choice([np.nan, np.inf, -np.inf])
            n_bad += 1
        elif r < 0.15:
            t = rng.uniform(-20, 20, 4)  # far outside the limits
        elif r < 0.3:
            target = rng.uniform(lim.lower, lim.upper)  # jump
            t = target
        else:
            t = target + rng.normal(0, 0.05, 4)
        q0, v0 = s.q.copy(), s.v.copy()
        cmd, ok = s.step(t)
        assert ok == bool(np.all(np.isfinite(t)))
        np.testing.assert_array_equal(cmd, s.q)
        _check_step(lim, q0, v0, s.q, s.v)
    assert s.rejected == n_bad


def test_reaches_target_without_overshoot():
    lim = cell_limits()
    s = SafetyLimiter(lim, DT)
    s.reset(np.zeros(4))
    target = np.array([1.0, 0.5, -1.0, 0.8])
    prev = s.q.copy()
    for _ in range(200):
        cmd, _ = s.step(target)
        # monotone approach: never beyond the target
        assert np.all((cmd - target) * np.sign(prev - target) >= -1e-9)
        prev = cmd
    np.testing.assert_allclose(s.q, target, atol=1e-9)
    np.testing.assert_allclose(s.v, 0, atol=1e-9)


def test_out_of_range_target_is_clamped_and_brakes_before_limit():
    lim = cell_limits()
    s = SafetyLimiter(lim, DT)
    s.reset(np.zeros(4))
    for _ in range(300):
        v0 = s.v.copy()
        s.step(np.full(4, 100.0))
        _check_step(lim, None, v0, s.q, s.v)
    np.testing.assert_allclose(s.q, lim.upper, atol=1e-9)


def test_nan_and_inf_rejected_and_hold():
    lim = cell_limits()
    s = SafetyLimiter(lim, DT)
    s.reset(np.zeros(4))
    for _ in range(10):
        s.step(np.ones(4))
    v_before = s.v.copy()
    cmd, ok = s.step(np.array([np.nan, 0, 0, 0]))
    assert not ok and s.rejected == 1 and np.all(np.isfinite(cmd))
    # hold decelerates: speed shrinks by at most the acceleration limit
    assert np.all(np.abs(s.v) <= np.abs(v_before) + 1e-12)
    _, ok = s.step(np.array([0, np.inf, 0, 0]))
    assert not ok and s.rejected == 2
    _, ok = s.step(np.ones(3))  # wrong length is rejected too
    assert not ok and s.rejected == 3


def test_hold_decelerates_within_accel_limit_to_a_stop():
    lim = cell_limits()
    s = SafetyLimiter(lim, DT)
    s.reset(np.zeros(4), lim.max_velocity * np.array([1, -1, 1, -1]) * 0.9)
    speeds = []
    for _ in range(100):
        v0 = s.v.copy()
        s.hold()
        _check_step(lim, None, v0, s.q, s.v)
        speeds.append(np.abs(s.v).max())
    assert all(b <= a + 1e-12 for a, b in zip(speeds, speeds[1:], strict=False))
    assert speeds[-1] == 0.0
    q_stop = s.q.copy()
    s.hold()
    np.testing.assert_array_equal(s.q, q_stop)  # stays stopped


def test_stopping_distance_is_exact_in_discrete_time():
    a = np.array([10.0])
    for d in np.linspace(0, 0.5, 101):
        v = float(max_speed_to_stop_within(np.array([d]), a, DT)[0])
        travelled, speed = 0.0, v
        while speed > 0:
            travelled += speed * DT
            speed = max(0.0, speed - a[0] * DT)
        assert travelled <= d + 1e-12
        # and it is the largest such speed (within 1%)
        v2, travelled2 = v * 1.01 + 1e-6, 0.0
        while v2 > 0:
            travelled2 += v2 * DT
            v2 = max(0.0, v2 - a[0] * DT)
        assert travelled2 > d


def test_reset_clamps_and_rejects_nan():
    lim = cell_limits()
    s = SafetyLimiter(lim, DT)
    with pytest.raises(RuntimeError):
        s.step(np.zeros(4))
    with pytest.raises(ValueError, match="bad joint position"):
        s.reset([np.nan, 0, 0, 0])
    s.reset(lim.upper + 1.0, [100.0] * 4)
    np.testing.assert_array_equal(s.q, lim.upper)
    np.testing.assert_array_equal(s.v, lim.max_velocity)


def test_joint_limits_validation_names_field():
    with pytest.raises(ValueError, match="max_velocity"):
        JointLimits(("a",), [0.0], [1.0], [0.0], [1.0])
    with pytest.raises(ValueError, match="lower"):
        JointLimits(("a",), [1.0], [0.0], [1.0], [1.0])
    with pytest.raises(ValueError, match="expected 2 values"):
        JointLimits(("a", "b"), [0.0], [1.0], [1.0], [1.0])
