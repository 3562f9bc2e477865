"""Analytic kinematics of the cell's 4-joint arm (pure numpy).

Convention (the MJCF and SDF generators must match it; tests check FK against MuJoCo):
- shoulder_pan  q0: rotation about world +z at the arm base; q0 = 0 points the arm along +x.
- shoulder_lift q1: elevation of the upper arm above horizontal (positive = up).
- elbow         q2: angle of the forearm relative to the upper arm (negative = bends down).
- wrist_pitch   q3: angle of the tool relative to the forearm; the tool points along the
                    direction (q1 + q2 + q3) in the arm's vertical plane, so -pi/2 = straight down.
"""

from __future__ import annotations

import math

import numpy as np

from s1s2.cell import ArmSpec


class UnreachableError(ValueError):
    """Target outside the arm's workspace."""


def forward(arm: ArmSpec, q) -> np.ndarray:
    """Suction-tip position (world frame) for joint vector q (4,)."""
    q0, q1, q2, q3 = (float(v) for v in q)
    r = (
        arm.upper_len * math.cos(q1)
        + arm.fore_len * math.cos(q1 + q2)
        + arm.tool_len * math.cos(q1 + q2 + q3)
    )
    z = (
        arm.upper_len * math.sin(q1)
        + arm.fore_len * math.sin(q1 + q2)
        + arm.tool_len * math.sin(q1 + q2 + q3)
    )
    bx, by, bz = arm.base
    return np.array([bx + r * math.cos(q0), by + r * math.sin(q0), bz + arm.shoulder_height + z])


def inverse(arm: ArmSpec, target, tool_pitch: float = -math.pi / 2, elbow_up: bool = True) -> np.ndarray:
    """Joint vector putting the suction tip at `target` with the tool at `tool_pitch` (down by default).

    Raises UnreachableError naming the target when no solution exists or limits are violated.
    """
    x, y, z = (float(v) for v in target)
    bx, by, bz = arm.base
    dx, dy = x - bx, y - by
    q0 = math.atan2(dy, dx)
    r = math.hypot(dx, dy)
    # wrist point: back off the tool along its pitch
    wr = r - arm.tool_len * math.cos(tool_pitch)
    wz = (z - bz - arm.shoulder_height) - arm.tool_len * math.sin(tool_pitch)
    l1, l2 = arm.upper_len, arm.fore_len
    d2 = wr * wr + wz * wz
    c2 = (d2 - l1 * l1 - l2 * l2) / (2 * l1 * l2)
    if c2 < -1.0 - 1e-9 or c2 > 1.0 + 1e-9:
        raise UnreachableError(f"target {tuple(round(v, 3) for v in (x, y, z))} is out of reach")
    c2 = min(1.0, max(-1.0, c2))
    q2 = -math.acos(c2) if elbow_up else math.acos(c2)
    q1 = math.atan2(wz, wr) - math.atan2(l2 * math.sin(q2), l1 + l2 * math.cos(q2))
    q3 = tool_pitch - q1 - q2
    q = np.array([q0, q1, q2, q3])
    lo, hi = arm.lower_limits(), arm.upper_limits()
    if np.any(q < lo - 1e-6) or np.any(q > hi + 1e-6):
        raise UnreachableError(
            f"target {tuple(round(v, 3) for v in (x, y, z))} needs joints {np.round(q, 3).tolist()} "
            f"outside limits"
        )
    return q
