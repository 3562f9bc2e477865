"""Analytic kinematics of the cell's 4-joint arm (pure numpy).

Convention (the MJCF and SDF generators must match it; tests check FK against MuJoCo):
- shoulder_pan  q0: rotation about world +z at the arm base; q0 = 0 points the arm along +x.
- shoulder_lift q1: elevation of the upper arm above horizontal (positive = up).
- elbow         q2: angle of the forearm relative to the upper arm (negative = bends down).
- wrist_pitch   q3: angle of the tool relative to the forearm; the tool points along the
                    direction (q1 + q2 + q3) in the arm's vertical plane, so -pi/2 = straight down.

System 1 calls `solve_ik` every tick: tool-down analytic IK (elbow up) when it exists within the
joint limits, else a damped-least-squares step from the current joints, so an unreachable target
gives the nearest reachable pose, continuous in the current joints: the arm moves towards it and
never jumps. `geometry_dict` is what policy.json records, so a model trained for another arm is
refused.
"""

from __future__ import annotations

import math

import numpy as np

from s1s2.cell import ArmSpec

TOOL_DOWN = -math.pi / 2


class UnreachableError(ValueError):
    """Target outside the arm's workspace."""


def geometry_dict(arm: ArmSpec) -> dict:
    """The numbers a policy trained for this arm depends on (recorded in policy.json)."""
    return {
        "base": [float(v) for v in arm.base],
        "shoulder_height": float(arm.shoulder_height),
        "upper_len": float(arm.upper_len),
        "fore_len": float(arm.fore_len),
        "tool_len": float(arm.tool_len),
        "joint_names": list(arm.joint_names),
        "lower": arm.lower_limits().tolist(),
        "upper": arm.upper_limits().tolist(),
    }


def geometry_mismatch(recorded: dict, arm: ArmSpec, tol: float = 1e-6) -> str:
    """'' when `recorded` (a geometry_dict) describes `arm`, else the first differing key."""
    want = geometry_dict(arm)
    for key, value in want.items():
        got = recorded.get(key) if isinstance(recorded, dict) else None
        if key == "joint_names":
            if got != value:
                return f"{key} {got!r} != {value!r}"
            continue
        try:
            same = np.allclose(np.asarray(got, dtype=float), np.asarray(value, dtype=float), atol=tol)
        except (TypeError, ValueError):
            same = False
        if not same:
            return f"{key} {got!r} != {value!r}"
    return ""


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


def inverse(arm: ArmSpec, target, tool_pitch: float = TOOL_DOWN, elbow_up: bool = True) -> np.ndarray:
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


def forward_batch(arm: ArmSpec, q) -> np.ndarray:
    """Tip positions of joint vectors q (N, 4) -> (N, 3)."""
    q = np.asarray(q, dtype=np.float64)
    a1, a12, a123 = q[:, 1], q[:, 1] + q[:, 2], q[:, 1] + q[:, 2] + q[:, 3]
    r = arm.upper_len * np.cos(a1) + arm.fore_len * np.cos(a12) + arm.tool_len * np.cos(a123)
    z = arm.upper_len * np.sin(a1) + arm.fore_len * np.sin(a12) + arm.tool_len * np.sin(a123)
    bx, by, bz = arm.base
    return np.stack(
        [bx + r * np.cos(q[:, 0]), by + r * np.sin(q[:, 0]), bz + arm.shoulder_height + z], axis=1
    )


def jacobian(arm: ArmSpec, q) -> np.ndarray:
    """d tip / d q (3, 4)."""
    q0, q1, q2, q3 = (float(v) for v in q)
    a1, a12, a123 = q1, q1 + q2, q1 + q2 + q3
    c1, c12, c123 = arm.upper_len * math.cos(a1), arm.fore_len * math.cos(a12), arm.tool_len * math.cos(a123)
    s1, s12, s123 = arm.upper_len * math.sin(a1), arm.fore_len * math.sin(a12), arm.tool_len * math.sin(a123)
    r = c1 + c12 + c123
    dr = (-(s1 + s12 + s123), -(s12 + s123), -s123)
    dz = (c1 + c12 + c123, c12 + c123, c123)
    cp, sp = math.cos(q0), math.sin(q0)
    return np.array(
        [
            [-r * sp, cp * dr[0], cp * dr[1], cp * dr[2]],
            [r * cp, sp * dr[0], sp * dr[1], sp * dr[2]],
            [0.0, dz[0], dz[1], dz[2]],
        ]
    )


def tip_velocity(arm: ArmSpec, q, qd) -> np.ndarray:
    return jacobian(arm, q) @ np.asarray(qd, dtype=np.float64)


def ik_tool_down(arm: ArmSpec, target) -> np.ndarray | None:
    """`inverse` with the tool down, None instead of an exception (out of reach, beyond the joint
    limits, on the pan axis, or a non-finite target)."""
    t = np.asarray(target, dtype=np.float64)
    if (
        t.shape != (3,)
        or not np.all(np.isfinite(t))
        or math.hypot(t[0] - arm.base[0], t[1] - arm.base[1]) < 1e-9
    ):
        return None
    try:
        return inverse(arm, t)
    except UnreachableError:
        return None


def ik_dls(
    arm: ArmSpec,
    target,
    q_start,
    iters: int = 12,
    damping: float = 0.05,
    pitch_weight: float = 0.3,
    max_step: float = 0.25,
) -> np.ndarray:
    """Damped least squares from `q_start` towards tip = target with the tool down (pitch weighted
    `pitch_weight` against position), joints kept within limits. Always finite and continuous in
    `q_start`; for an unreachable target, the nearest pose it reaches. A non-finite target returns
    `q_start` clipped to the limits."""
    lo, hi = arm.lower_limits(), arm.upper_limits()
    q = np.clip(np.asarray(q_start, dtype=np.float64), lo, hi)
    tgt = np.asarray(target, dtype=np.float64)
    if tgt.shape != (3,) or not np.all(np.isfinite(tgt)):
        return q
    lam2 = damping * damping
    jac = np.empty((4, 4))
    e = np.empty(4)
    for _ in range(iters):
        e[:3] = tgt - forward(arm, q)
        e[3] = pitch_weight * (TOOL_DOWN - (q[1] + q[2] + q[3]))
        jac[:3] = jacobian(arm, q)
        jac[3] = (0.0, pitch_weight, pitch_weight, pitch_weight)
        dq = jac.T @ np.linalg.solve(jac @ jac.T + lam2 * np.eye(4), e)
        n = float(np.max(np.abs(dq)))
        if n > max_step:
            dq *= max_step / n
        q = np.clip(q + dq, lo, hi)
        if n < 1e-6:
            break
    return q


def solve_ik(arm: ArmSpec, target, q_current) -> tuple[np.ndarray, bool]:
    """Joint targets for a tip target: (q, analytic). Tool-down analytic IK when it exists, else the
    damped-least-squares fallback from the current joints (never a jump)."""
    q = ik_tool_down(arm, target)
    if q is not None:
        return q, True
    return ik_dls(arm, target, q_current), False
