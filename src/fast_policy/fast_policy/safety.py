"""Joint limits applied to every command System 1 sends (pure numpy).

`SafetyLimiter` is a small trajectory generator: it keeps the last commanded position and velocity
and moves towards each requested target only as fast as the joint position, velocity and
acceleration limits allow. Priorities when they conflict: position limits > acceleration > target.

Braking uses the exact discrete stopping distance at the tick rate (accelerating at most
`max_acceleration` per tick), so a joint never needs more than its acceleration limit to stop
before a position limit, and never overshoots a target it is decelerating towards.

Non-finite targets (NaN/inf from the policy) are rejected and counted; the limiter then holds
(decelerates to a stop), so a bad output never reaches the motors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class JointLimits:
    names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    max_velocity: np.ndarray
    max_acceleration: np.ndarray

    def __post_init__(self):
        n = len(self.names)
        for field in ("lower", "upper", "max_velocity", "max_acceleration"):
            arr = np.asarray(getattr(self, field), dtype=np.float64)
            if arr.shape != (n,):
                raise ValueError(
                    f"joint limits '{field}': expected {n} values (one per joint), got {arr.tolist()}"
                )
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"joint limits '{field}': values must be finite, got {arr.tolist()}")
            object.__setattr__(self, field, arr)
        if np.any(self.lower >= self.upper):
            raise ValueError(
                f"joint limits: lower {self.lower.tolist()} must be below upper {self.upper.tolist()}"
            )
        for field in ("max_velocity", "max_acceleration"):
            if np.any(getattr(self, field) <= 0):
                raise ValueError(f"joint limits '{field}': must be > 0, got {getattr(self, field).tolist()}")

    @classmethod
    def from_arm(cls, arm) -> JointLimits:
        """From a `s1s2.cell.ArmSpec` (used by tests and the offline evaluation)."""
        return cls(
            tuple(arm.joint_names),
            arm.lower_limits(),
            arm.upper_limits(),
            arm.velocity_limits(),
            arm.acceleration_limits(),
        )


def max_speed_to_stop_within(distance: np.ndarray, accel: np.ndarray, dt: float) -> np.ndarray:
    """Largest speed from which braking at `accel` per tick stops within `distance` (discrete time).

    Braking from v gives speeds v, v - a*dt, ... > 0 and covers D(v) = dt * sum of them. D is
    piecewise linear; invert it on the piece n*a*dt <= v < (n+1)*a*dt.
    """
    d = np.maximum(np.asarray(distance, dtype=np.float64), 0.0)
    step = accel * dt * dt  # distance unit: a*dt^2
    n = np.floor((np.sqrt(1.0 + 8.0 * d / step) - 1.0) / 2.0)
    v = (d / dt + accel * dt * n * (n + 1.0) / 2.0) / (n + 1.0)
    return np.maximum(v * (1.0 - 1e-9), 0.0)  # tiny margin against rounding


class SafetyLimiter:
    """Position/velocity/acceleration limiting of joint-position commands at a fixed tick `dt`."""

    def __init__(self, limits: JointLimits, dt: float):
        if not (dt > 0 and np.isfinite(dt)):
            raise ValueError(f"safety limiter: tick period must be > 0, got {dt!r}")
        self.limits = limits
        self.dt = float(dt)
        self.q: np.ndarray | None = None  # last commanded position
        self.v: np.ndarray | None = None  # last commanded velocity
        self.rejected = 0  # non-finite targets
        self.clamped = 0  # commands changed by a limit (position, velocity or acceleration)

    @property
    def initialised(self) -> bool:
        return self.q is not None

    def reset(self, position, velocity=None) -> None:
        """Start from a measured joint state (velocity clamped to the limits; NaN -> 0)."""
        lim = self.limits
        q = np.asarray(position, dtype=np.float64)
        if q.shape != lim.lower.shape or not np.all(np.isfinite(q)):
            raise ValueError(f"safety limiter: bad joint position {q.tolist()}")
        v = np.zeros_like(q) if velocity is None else np.nan_to_num(np.asarray(velocity, dtype=np.float64))
        self.q = np.clip(q, lim.lower, lim.upper)
        self.v = np.clip(v, -lim.max_velocity, lim.max_velocity)

    def step(self, target) -> tuple[np.ndarray, bool]:
        """Next command towards `target`. Returns (command, accepted); a non-finite target is rejected
        (counted) and the limiter holds instead."""
        if self.q is None:
            raise RuntimeError("safety limiter: no joint state yet (call reset first)")
        target = np.asarray(target, dtype=np.float64)
        if target.shape != self.q.shape or not np.all(np.isfinite(target)):
            self.rejected += 1
            return self.hold(), False
        lim = self.limits
        q_des = np.clip(target, lim.lower, lim.upper)
        delta = q_des - self.q
        # desired speed: as fast as allowed, but slow enough to stop exactly on the target
        speed = np.minimum(
            lim.max_velocity, max_speed_to_stop_within(np.abs(delta), lim.max_acceleration, self.dt)
        )
        v_des = np.sign(delta) * speed
        cmd = self._integrate(v_des)
        if not np.allclose(cmd, target, atol=1e-9):
            self.clamped += 1
        return cmd, True

    def stopping_time(self) -> float:
        """Seconds a hold takes from the last command to standstill (whole ticks, at the
        acceleration limit); 0 before the first command."""
        if self.v is None:
            return 0.0
        ticks = np.ceil(np.abs(self.v) / (self.limits.max_acceleration * self.dt) - 1e-9)
        return float(ticks.max(initial=0.0)) * self.dt

    def hold(self) -> np.ndarray:
        """Safe hold: decelerate at most at the acceleration limit to a stop, then stay there."""
        if self.q is None:
            raise RuntimeError("safety limiter: no joint state yet (call reset first)")
        return self._integrate(np.zeros_like(self.q))

    def _integrate(self, v_des: np.ndarray) -> np.ndarray:
        lim, dt, q, v = self.limits, self.dt, self.q, self.v
        dv = lim.max_acceleration * dt
        v_new = np.clip(v_des, v - dv, v + dv)
        # be able to stop before each position limit (wins over the acceleration limit only if the
        # state we started from already violated it, e.g. right after a reset)
        v_new = np.minimum(v_new, max_speed_to_stop_within(lim.upper - q, lim.max_acceleration, dt))
        v_new = np.maximum(v_new, -max_speed_to_stop_within(q - lim.lower, lim.max_acceleration, dt))
        v_new = np.clip(v_new, -lim.max_velocity, lim.max_velocity)
        q_new = np.clip(q + v_new * dt, lim.lower, lim.upper)  # hard net
        self.v = (q_new - q) / dt
        self.q = q_new
        return q_new.copy()
