"""The per-tick logic of System 1 (pure Python + numpy; the node only converts messages).

Each tick: observation (joint pos/vel, suction, goal target in the world now, goal place, has_goal,
latent) -> normalise with the stats shipped in policy.json -> ONNX -> action chunk (K joint-position
targets + suction) -> temporal ensembling (ACT) or plain chunk execution -> SafetyLimiter -> command.

Hold (no goal, stale goal, stale joint states, non-finite policy output): the limiter decelerates
the arm to a stop within its acceleration limits and the suction command is KEPT as it was, so an
item already held is not dropped onto the belt or the floor (it is released later by a fresh plan).
No joint state yet -> no command at all (we do not know where the arm is).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fast_policy.goal_tracker import GoalData, GoalTracker
from fast_policy.runtime import PolicyMeta
from fast_policy.safety import JointLimits, SafetyLimiter
from fast_policy.spec import N_JOINTS, build_observation
from s1s2.params import check_fields, param
from s1s2.topics import BELT_FRAME, CONTROL_RATE_HZ

CHUNK_MODES = ("temporal_ensemble", "chunk")


@dataclass
class ControllerConfig:
    """Settings of the per-tick logic; the fast_policy node exposes each one as a parameter."""

    rate_hz: float = param(CONTROL_RATE_HZ, "control loop rate", min=1.0, max=1000.0, read_only=True)
    chunk_mode: str = param(
        "temporal_ensemble", "how action chunks are executed (ACT temporal ensembling, or each chunk fully)",
        choices=CHUNK_MODES,
    )  # fmt: skip
    ensemble_decay: float = param(
        0.01, "temporal ensembling weight decay m (ACT): weight exp(-m * i), i = 0 for the oldest", min=0.0, max=10.0
    )  # fmt: skip
    suction_threshold: float = param(0.5, "suction on above this probability", min=0.01, max=0.99)
    obs_clip: float = param(
        10.0, "clip normalised observations to +-this (features constant in training blow up)", min=1.0, max=1000.0
    )  # fmt: skip
    resync_threshold_rad: float = param(
        0.5, "restart the limiter from the measured state if command and measurement differ by more",
        min=0.01, max=10.0,
    )  # fmt: skip
    joint_state_timeout_s: float = param(
        0.5, "hold when joint states are older than this", min=0.01, max=10.0
    )  # fmt: skip

    def __post_init__(self):
        check_fields(self)


@dataclass
class Command:
    positions: np.ndarray  # (N_JOINTS,) joint-position command, description order
    suction: bool
    mode: str  # "policy" | "hold"
    reason: str = ""  # why we hold


class Controller:
    def __init__(
        self,
        policy: Callable[[np.ndarray], np.ndarray],
        meta: PolicyMeta,
        limits: JointLimits,
        config: ControllerConfig | None = None,
        goals: GoalTracker | None = None,
    ):
        self.cfg = config or ControllerConfig()
        if list(meta.joint_names) != list(limits.names):
            raise ValueError(
                f"model joint names {meta.joint_names} differ from configured joint names {list(limits.names)}"
            )
        self.policy = policy
        self.meta = meta
        self.limits = limits
        self.goals = goals or GoalTracker()
        self.limiter = SafetyLimiter(limits, 1.0 / self.cfg.rate_hz)
        self.k = meta.chunk_size
        self._obs_mean = meta.obs_mean.astype(np.float32)
        self._obs_inv_std = (1.0 / meta.obs_std).astype(np.float32)
        # ensembling: chunks of absolute targets, newest last, each with the tick it was made at
        self._chunks: deque[tuple[int, np.ndarray, np.ndarray]] = deque(maxlen=self.k)
        self._weights = np.exp(-self.cfg.ensemble_decay * np.arange(self.k))
        self._tick = 0
        self.joint_pos: np.ndarray | None = None
        self.joint_vel: np.ndarray | None = None
        self._joint_time: float | None = None
        self.belt_odometry: float | None = None
        self.suction = False  # last suction command
        # counters for diagnostics
        self.holds = 0
        self.policy_ticks = 0
        self.dropped_joint_states = 0
        self.resyncs = 0
        self.hold_reason = ""

    def restart_from(self, position, velocity=None) -> None:
        """Forget the chunks in flight and start the limiter from this joint state (e.g. when
        another controller drove the arm until now)."""
        self.limiter.reset(position, velocity)
        self._chunks.clear()

    # ---- inputs -------------------------------------------------------------------------
    def on_joint_state(self, names, position, velocity, now_s: float) -> bool:
        """Take a joint state (any joint order, extra joints ignored). Returns False (and counts it)
        when it is malformed: missing joints, wrong length, NaN/inf."""
        names, position, velocity = list(names), list(position), list(velocity)
        try:
            if names:
                idx = [names.index(n) for n in self.limits.names]
            elif len(position) == N_JOINTS:
                idx = list(range(N_JOINTS))
            else:
                raise ValueError
            pos = np.array([position[i] for i in idx], dtype=np.float64)
            vel = np.array([velocity[i] for i in idx], dtype=np.float64) if velocity else np.zeros(N_JOINTS)
        except (ValueError, IndexError, TypeError):
            self.dropped_joint_states += 1
            return False
        if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(vel))):
            self.dropped_joint_states += 1
            return False
        self.joint_pos, self.joint_vel, self._joint_time = pos, vel, now_s
        return True

    def on_belt(self, odometry: float) -> bool:
        if not math.isfinite(odometry):
            return False
        self.belt_odometry = float(odometry)
        return True

    def on_goal(self, goal: GoalData) -> bool:
        return self.goals.update(goal)

    # ---- the tick -----------------------------------------------------------------------
    def tick(self, now_s: float) -> Command | None:
        if self.joint_pos is None:
            return None  # never seen the arm: publish nothing
        lim = self.limiter
        if not lim.initialised or np.max(np.abs(self.joint_pos - lim.q)) > self.cfg.resync_threshold_rad:
            if lim.initialised:
                self.resyncs += 1
            lim.reset(self.joint_pos, self.joint_vel)
            self._chunks.clear()
        self._tick += 1
        if now_s - self._joint_time > self.cfg.joint_state_timeout_s:
            return self._hold("joint states stale")
        goal = self.goals.current(now_s, self.belt_odometry)
        if goal is None:
            if self.goals.goal is None:
                return self._hold("no goal")
            if self.goals.goal.frame_id == BELT_FRAME and self.belt_odometry is None:
                return self._hold("no belt odometry for a belt-frame goal")
            return self._hold("goal stale")
        target = self._next_target(goal)
        if target is None:
            lim.rejected += 1
            return self._hold("non-finite policy output")
        q_target, suction_p = target
        cmd, _ = lim.step(q_target)
        self.suction = bool(suction_p > self.cfg.suction_threshold)
        self.policy_ticks += 1
        self.hold_reason = ""
        return Command(cmd, self.suction, "policy")

    def observation(self, goal) -> np.ndarray:
        return build_observation(
            self.joint_pos,
            self.joint_vel,
            1.0 if self.suction else 0.0,
            goal.target_world,
            goal.place_world,
            goal.has_goal,
            goal.latent,
        )

    def _infer(self, goal) -> tuple[np.ndarray, np.ndarray] | None:
        obs = (self.observation(goal) - self._obs_mean) * self._obs_inv_std
        np.clip(obs, -self.cfg.obs_clip, self.cfg.obs_clip, out=obs)
        out = np.asarray(self.policy(obs), dtype=np.float64)
        if out.shape != (self.k, N_JOINTS + 1) or not np.all(np.isfinite(out)):
            return None
        q = out[:, :N_JOINTS] * self.meta.action_std + self.meta.action_mean
        if self.meta.action_relative:
            q = q + self.joint_pos
        p = 1.0 / (1.0 + np.exp(-np.clip(out[:, N_JOINTS], -30, 30)))
        return q, p

    def _next_target(self, goal) -> tuple[np.ndarray, float] | None:
        t = self._tick
        if self.cfg.chunk_mode == "chunk":
            if not self._chunks or t - self._chunks[-1][0] >= self.k:
                chunk = self._infer(goal)
                if chunk is None:
                    return None
                self._chunks.append((t, *chunk))
            t0, q, p = self._chunks[-1]
            return q[t - t0], float(p[t - t0])
        chunk = self._infer(goal)
        if chunk is None:
            return None
        self._chunks.append((t, *chunk))
        # every stored chunk that covers tick t, oldest first (deque maxlen K keeps only those)
        qs = np.stack([q[t - t0] for t0, q, _ in self._chunks])
        ps = np.array([p[t - t0] for t0, _, p in self._chunks])
        w = self._weights[: len(qs)]
        w = w / w.sum()
        return w @ qs, float(w @ ps)

    def _hold(self, reason: str) -> Command:
        self.holds += 1
        self.hold_reason = reason
        self._chunks.clear()
        return Command(self.limiter.hold(), self.suction, "hold", reason)


class LoopStats:
    """Tick timing for diagnostics: loop rate, tick compute time p50/p99, missed deadlines."""

    def __init__(self, rate_hz: float, window: int = 500):
        self.period = 1.0 / rate_hz
        self.durations: deque[float] = deque(maxlen=window)
        self.starts: deque[float] = deque(maxlen=window)
        self.missed = 0
        self.ticks = 0

    def record(self, start_s: float, duration_s: float) -> None:
        """A tick counts as missed if its compute took longer than a period or it started more than
        half a period late relative to the previous tick."""
        late = bool(self.starts) and start_s - self.starts[-1] > 1.5 * self.period
        if late or duration_s > self.period:
            self.missed += 1
        self.starts.append(start_s)
        self.durations.append(duration_s)
        self.ticks += 1

    def rate_hz(self) -> float:
        if len(self.starts) < 2 or self.starts[-1] <= self.starts[0]:
            return 0.0
        return (len(self.starts) - 1) / (self.starts[-1] - self.starts[0])

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.durations, q) * 1e3) if self.durations else 0.0
