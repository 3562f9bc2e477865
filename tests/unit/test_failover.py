"""`s1s2 failover`'s limit check on received commands: steps are divided by the ticks they span,
so a message the receiver missed is not a velocity violation, and a real jump is."""

import numpy as np

from fast_policy.safety import JointLimits
from s1s2.cell import DEFAULT_CELL
from s1s2.failover import _limits_violations
from s1s2.topics import CONTROL_DT

LIM = JointLimits.from_arm(DEFAULT_CELL.arm)


def _ramp(n, frac=0.1):
    """Positions moving at `frac` of each joint's speed limit after an acceleration-limited start."""
    v = np.minimum(frac * LIM.max_velocity, LIM.max_acceleration * CONTROL_DT * np.arange(n)[:, None])
    return DEFAULT_CELL.arm.home() + np.cumsum(v * CONTROL_DT, axis=0)


def test_clean_ramp_has_no_violation_even_with_a_missed_message():
    q = _ramp(120)
    t = np.arange(120) * CONTROL_DT
    keep = np.ones(120, bool)
    keep[60] = False  # the receiver missed one: the step spans two ticks
    r = _limits_violations(t[keep], q[keep], LIM, CONTROL_DT)
    assert r["position"] == r["velocity"] == r["acceleration"] == 0
    assert r["acceleration_checked_steps"] < 117


def test_jump_is_a_violation():
    q = _ramp(50)
    q[30:, 0] += 0.5  # half a radian in one tick
    t = np.arange(50) * CONTROL_DT
    r = _limits_violations(t, q, LIM, CONTROL_DT)
    assert r["velocity"] >= 1 and r["acceleration"] >= 1
    q2 = _ramp(10)
    q2[5, 1] = LIM.upper[1] + 0.1
    assert _limits_violations(t[:10], q2, LIM, CONTROL_DT)["position"] == 1
