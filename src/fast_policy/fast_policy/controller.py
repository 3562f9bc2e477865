"""The per-tick logic of System 1 in task space (numpy only; the node only converts messages).

Each tick (50 Hz):
  measured joints -> tip position/velocity (forward kinematics, Jacobian)
  goal (GoalTracker: freshness, belt frame -> world now) + vacuum sensor -> pick target, place
  -> observation (spec.build_observation) -> chunk source (the ONNX policy; or the scripted
     expert when recording demonstrations: the SAME execution path) -> K tip waypoints + suction
  -> aim point: waypoint `aim_index` (or a temporal ensemble of the stored chunks' predictions
     for the same future tick) -> tool-down IK (damped-least-squares fallback) -> SafetyLimiter
  -> Command.

Goal handling that a 1 Hz System 2 needs:
- While the vacuum sensor reports an item on the cup, the pick target is hidden from the policy
  (System 2 may already name the next item) and the place is the one latched at grasp time: the
  place of the goal being pursued on the tick before the item attached.
- After a grasp, goals stamped before it are spent: their target was (almost surely) the item now
  on the cup, so the policy sees no target until a goal made from a newer image arrives.
- A pick under way is not dropped for a newer "nothing to pick" goal while the tool is within
  `commit_radius_m` of the pursued target: as the arm descends it hides the item from System 2's
  camera, whose plans then say "none" or fall below its confidence gate. The pursued goal's own
  stamp and validity still end the pick (no goal is used past its valid_for).

Hold (decelerate to a stop within the limits, suction command KEPT so a held item is not dropped):
no goal, stale goal, belt-frame goal without (fresh) belt odometry, stale joint states, no/NaN
vacuum reading, NaN/inf anywhere in the observation, non-finite or absurd policy output. No joint
state yet -> no command at all (we do not know where the arm is).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from fast_policy.goal_tracker import GoalData, GoalTracker
from fast_policy.safety import JointLimits, SafetyLimiter
from fast_policy.spec import ACTION_DIM, N_JOINTS, SPEC_VERSION, build_observation, check_version
from s1s2 import kinematics as kin
from s1s2.cell import ArmSpec
from s1s2.params import check_fields, param
from s1s2.topics import BELT_FRAME, CONTROL_RATE_HZ

CHUNK_MODES = ("aim", "temporal_ensemble")
EXECUTION_FIELDS = ("chunk_mode", "aim_index", "suction_index")  # policy.json `execution` keys


LIFT_TOL_M = 0.03  # the scripted place lifts to the place height first when more than this below it


@dataclass
class ControllerConfig:
    """Settings of the per-tick logic; the fast_policy node exposes each one as a parameter."""

    rate_hz: float = param(CONTROL_RATE_HZ, "control loop rate", min=1.0, max=1000.0, read_only=True)
    execution_from_model: bool = param(
        True, "take chunk_mode, aim_index and suction_index from policy.json (the execution the model "
        "was trained and evaluated with) instead of the parameters below",
    )  # fmt: skip
    chunk_mode: str = param(
        "aim", "'aim': a fresh chunk every tick, the limiter aimed at waypoint aim_index; "
        "'temporal_ensemble': ACT's weighted average of the stored chunks' waypoints for the aim tick",
        choices=CHUNK_MODES,
    )  # fmt: skip
    aim_index: int = param(
        -1, "chunk waypoint the limiter aims at (python index: -1 = the last)", min=-200, max=199
    )
    suction_index: int = param(
        0, "chunk step whose suction logit is executed (python index)", min=-200, max=199
    )
    ensemble_decay: float = param(
        0.01, "temporal_ensemble weight decay m: weight exp(-m * i), i = 0 for the oldest chunk", min=0.0, max=10.0
    )  # fmt: skip
    suction_threshold: float = param(0.5, "suction on above this probability", min=0.01, max=0.99)
    max_offset_m: float = param(
        2.0, "a waypoint farther than this from the tip is a bad policy output: hold", min=0.01, max=10.0
    )  # fmt: skip
    resync_threshold_rad: float = param(
        0.5, "restart the limiter from the measured state if command and measurement differ by more",
        min=0.01, max=10.0,
    )  # fmt: skip
    joint_state_timeout_s: float = param(
        0.5, "hold when joint states are older than this", min=0.01, max=10.0
    )
    vacuum_timeout_s: float = param(
        0.5, "hold when the vacuum reading is older than this", min=0.01, max=10.0
    )
    belt_timeout_s: float = param(
        0.5, "hold a belt-frame goal when belt odometry is older than this", min=0.01, max=10.0
    )  # fmt: skip
    latch_place_on_grasp: bool = param(
        True, "while an item is held, keep the place of the goal pursued when it was grasped "
        "(System 2 may already name the next item)",
    )  # fmt: skip
    spend_goals_on_grasp: bool = param(
        True, "after a grasp, ignore the target of goals stamped before it (they named the held item)"
    )  # fmt: skip
    commit_radius_m: float = param(
        0.1, "a pick under way is not dropped for a newer goal that says 'nothing to pick' while the "
        "tool is within this horizontal distance (m) of the pursued target: the arm hides the item "
        "from System 2's camera as it descends. The pursued goal's own validity still ends it; 0 = off",
        min=0.0, max=1.0,
    )  # fmt: skip
    carry_timeout_s: float = param(
        6.0, "an item held this long is placed by a scripted move: the tool rises to the height of the "
        "place latched at the grasp, goes there and lets go within place_radius_m of it (a policy that "
        "never lets go stalls the cell; docs/policy.md). The longest carries measured: 2.3-2.8 s; 0 = off",
        min=0.0, max=600.0,
    )  # fmt: skip
    place_radius_m: float = param(
        0.04, "the scripted place lets go within this distance (m) of the place", min=0.005, max=0.5
    )

    def __post_init__(self):
        check_fields(self)

    def with_execution(self, execution: dict) -> ControllerConfig:
        """A copy with policy.json's `execution` applied (when execution_from_model)."""
        if not self.execution_from_model:
            return self
        vals = {k: getattr(self, k) for k in self.__dataclass_fields__}
        vals.update({k: v for k, v in execution.items() if k in EXECUTION_FIELDS})
        return type(self)(**vals)

    @staticmethod
    def resolve_index(index: int, k: int, name: str) -> int:
        i = index + k if index < 0 else index
        if not 0 <= i < k:
            raise ValueError(f"parameter '{name}' = {index} is outside a chunk of {k} steps")
        return i


@dataclass
class TickState:
    """Everything a chunk source may use at one tick (the policy sees `obs`; the expert the rest)."""

    now: float
    q: np.ndarray
    qd: np.ndarray
    tip: np.ndarray
    tip_vel: np.ndarray
    target: np.ndarray  # world now (zeros when has_target is False)
    target_vel: np.ndarray
    has_target: bool
    place: np.ndarray  # world (zeros when has_place is False)
    has_place: bool
    suction: bool  # last suction command
    holding: bool  # vacuum sensor
    belt_speed: float
    obs: np.ndarray = field(default=None)  # (obs_dim,) float32 of the controller's spec version


@dataclass
class Command:
    positions: np.ndarray  # (N_JOINTS,) joint-position command, description order
    suction: bool
    mode: str  # "policy" | "hold" | "place" (the scripted place after carry_timeout_s)
    reason: str = ""


ChunkSource = Callable[[TickState], np.ndarray]  # -> (K, ACTION_DIM) raw: tip offsets (m) + logits


class Controller:
    def __init__(
        self,
        policy: ChunkSource | None,
        chunk_size: int,
        limits: JointLimits,
        arm: ArmSpec,
        config: ControllerConfig | None = None,
        goals: GoalTracker | None = None,
        obs_version: int = SPEC_VERSION,
    ):
        self.cfg = config or ControllerConfig()
        self.policy = policy
        # the policy's spec version (policy.json): 3 puts the goal latent in the observation
        self.obs_version = check_version(obs_version)
        self.k = int(chunk_size)
        self.aim = self.cfg.resolve_index(self.cfg.aim_index, self.k, "aim_index")
        self.suction_i = self.cfg.resolve_index(self.cfg.suction_index, self.k, "suction_index")
        if list(arm.joint_names) != list(limits.names) or not (
            np.allclose(arm.lower_limits(), limits.lower) and np.allclose(arm.upper_limits(), limits.upper)
        ):
            raise ValueError(
                f"arm joints {arm.joint_names} {arm.lower_limits().tolist()}/{arm.upper_limits().tolist()} "
                f"differ from the limiter's {list(limits.names)} {limits.lower.tolist()}/{limits.upper.tolist()}"
            )
        self.arm = arm
        self.limits = limits
        self.goals = goals or GoalTracker()
        self.limiter = SafetyLimiter(limits, 1.0 / self.cfg.rate_hz)
        self._weights = np.exp(-self.cfg.ensemble_decay * np.arange(self.k))
        self._chunks: deque[tuple[int, np.ndarray, np.ndarray]] = deque(maxlen=self.k)
        self._tick = 0
        self.joint_pos: np.ndarray | None = None
        self.joint_vel: np.ndarray | None = None
        self._joint_time: float | None = None
        self.belt_odometry: float | None = None
        self.belt_speed: float | None = None
        self._belt_time: float | None = None
        self.holding: bool | None = None
        self._vacuum_time: float | None = None
        self.suction = False  # last suction command
        self._was_holding = False
        self._pursued_place: np.ndarray | None = None  # place of the goal pursued last tick
        self._pursued_goal: GoalData | None = None  # the goal whose target was pursued last tick
        self.commits = 0  # ticks that kept a pick under way against a newer "nothing to pick" goal
        self.latched_place: np.ndarray | None = None
        self.grasp_time: float | None = None
        # carries: the longest time an item stayed on the cup, and the carries the scripted
        # place finished (carry_timeout_s)
        self.max_carry_s = 0.0
        self.carry_timeouts = 0
        self._placing = False
        # progress: plans whose target System 1 pursued since its last grasp (a stalled arm
        # pursues plan after plan and grasps nothing), and the longest such streak
        self.grasps = 0
        self.pursued_without_grasp = 0
        self.max_pursued_without_grasp = 0
        self._counted_stamp: float | None = None
        self.last_state: TickState | None = None
        self.last_aim: np.ndarray | None = None
        # diagnostics
        self.holds = 0
        self.policy_ticks = 0
        self.ik_fallbacks = 0
        self.bad_outputs = 0
        self.resyncs = 0
        self.dropped_joint_states = 0
        self.rejected_vacuum = 0
        self.rejected_belt = 0
        self.hold_reason = ""
        self._expiring_stamp: float | None = None  # a goal held out because it is about to expire
        self._mode: str | None = None
        self.mode_since = math.nan

    # ---- inputs -------------------------------------------------------------------------
    def on_joint_state(self, names, position, velocity, now_s: float) -> bool:
        """Take a joint state (any order, extra joints ignored); False (counted) when malformed."""
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

    def on_belt(self, odometry: float, velocity: float | None, now_s: float) -> bool:
        """Belt odometry (m) and speed (m/s; None: estimated from successive odometry readings)."""
        try:
            odo = float(odometry)
            vel = None if velocity is None else float(velocity)
        except (TypeError, ValueError):
            self.rejected_belt += 1
            return False
        if not math.isfinite(odo) or (vel is not None and not math.isfinite(vel)):
            self.rejected_belt += 1
            return False
        if vel is None:
            if self.belt_odometry is not None and self._belt_time is not None and now_s > self._belt_time:
                est = (odo - self.belt_odometry) / (now_s - self._belt_time)
                vel = est if self.belt_speed is None else 0.8 * self.belt_speed + 0.2 * est
            else:
                vel = self.belt_speed if self.belt_speed is not None else 0.0
        self.belt_odometry, self.belt_speed, self._belt_time = odo, vel, now_s
        return True

    def on_vacuum(self, holding, now_s: float) -> bool:
        """The cup's vacuum switch: True while an item is attached. NaN/garbage -> invalid (hold)."""
        try:
            v = float(holding)
        except (TypeError, ValueError):
            v = math.nan
        if not math.isfinite(v):
            self.rejected_vacuum += 1
            self.holding, self._vacuum_time = None, now_s
            return False
        self.holding, self._vacuum_time = v > 0.5, now_s
        return True

    def on_goal(self, goal: GoalData) -> bool:
        return self.goals.update(goal)

    def restart_from(self, position, velocity=None) -> None:
        """Forget the chunks in flight and start the limiter from this joint state (e.g. when
        another controller drove the arm until now)."""
        self.limiter.reset(position, velocity)
        self._chunks.clear()

    # ---- the tick -----------------------------------------------------------------------
    def prepare(self, now_s: float) -> TickState | Command | None:
        """Checks and features. Returns the TickState, a hold Command, or None (no joints yet)."""
        if self.joint_pos is None:
            return None
        lim = self.limiter
        if not lim.initialised or np.max(np.abs(self.joint_pos - lim.q)) > self.cfg.resync_threshold_rad:
            if lim.initialised:
                self.resyncs += 1
            lim.reset(self.joint_pos, self.joint_vel)
            self._chunks.clear()
        self._tick += 1
        cfg = self.cfg
        if now_s - self._joint_time > cfg.joint_state_timeout_s:
            return self._hold("joint states stale")
        if self.holding is None:
            return self._hold(
                "no valid vacuum reading" if self._vacuum_time is not None else "no vacuum reading"
            )
        if now_s - self._vacuum_time > cfg.vacuum_timeout_s:
            return self._hold("vacuum reading stale")
        goal = self.goals.current(now_s, self.belt_odometry)
        if goal is not None:
            # Stop BY the goal's expiry, not after it: once the time left is what a hold needs to
            # bring the arm to rest, hold, and keep holding until a newer goal arrives.
            g = self.goals.goal
            if (
                self._expiring_stamp == g.stamp_s
                or self.goals.remaining(now_s) <= self.limiter.stopping_time()
            ):
                self._expiring_stamp = g.stamp_s
                return self._hold("goal stale")
        if goal is None:
            if self.goals.goal is None:
                return self._hold("no goal")
            if self.goals.goal.frame_id == BELT_FRAME and self.belt_odometry is None:
                return self._hold("no belt odometry for a belt-frame goal")
            return self._hold("goal stale")
        belt_frame = self.goals.goal.frame_id == BELT_FRAME
        if belt_frame and (self._belt_time is None or now_s - self._belt_time > cfg.belt_timeout_s):
            return self._hold("belt odometry stale")
        q, qd = self.joint_pos, self.joint_vel
        tip = kin.forward(self.arm, q)
        tip_vel = kin.jacobian(self.arm, q) @ qd
        holding = bool(self.holding)
        used = self.goals.goal  # the goal whose target / place this tick uses
        if goal.has_goal <= 0.5 and not holding and cfg.commit_radius_m > 0:
            kept = self.goals.observe(self._pursued_goal, now_s, self.belt_odometry)
            if (
                kept is not None
                and float(np.hypot(*(tip[:2] - kept.target_world[:2]))) <= cfg.commit_radius_m
            ):
                goal, used = kept, self._pursued_goal
                belt_frame = used.frame_id == BELT_FRAME
                self.commits += 1
        # grasp bookkeeping: latch the place of the goal pursued before the item attached
        if holding and not self._was_holding:
            self.grasp_time = now_s
            self.grasps += 1
            self.pursued_without_grasp = 0
            self.latched_place = None if self._pursued_place is None else self._pursued_place.copy()
            self._pursued_goal = None  # its item is on the cup now
        if not holding:
            self.latched_place = None
            self._placing = False
        elif self.grasp_time is not None:
            self.max_carry_s = max(self.max_carry_s, now_s - self.grasp_time)
        self._was_holding = holding
        goal_place = np.asarray(goal.place_world, np.float64)
        has_goal = goal.has_goal > 0.5
        if holding and cfg.latch_place_on_grasp:
            if self.latched_place is None and has_goal:
                self.latched_place = goal_place.copy()  # grasped before any goal was pursued
            place, has_place = self.latched_place, self.latched_place is not None
        else:
            place, has_place = goal_place, has_goal
        spent = cfg.spend_goals_on_grasp and self.grasp_time is not None and used.stamp_s <= self.grasp_time
        has_target = has_goal and not holding and not spent
        if has_target:
            self._pursued_place = goal_place.copy()
            self._pursued_goal = used
            if used.stamp_s != self._counted_stamp:  # a plan counts once, however many ticks
                self._counted_stamp = used.stamp_s
                self.pursued_without_grasp += 1
                self.max_pursued_without_grasp = max(
                    self.max_pursued_without_grasp, self.pursued_without_grasp
                )
        elif not holding:
            self._pursued_place = None
            self._pursued_goal = None
        target = np.asarray(goal.target_world, np.float64) if has_target else np.zeros(3)
        belt_v = float(self.belt_speed) if self.belt_speed is not None else 0.0
        target_vel = np.array([belt_v, 0.0, 0.0]) if (has_target and belt_frame) else np.zeros(3)
        place = place if has_place else np.zeros(3)
        obs = build_observation(
            tip, tip_vel, target, target_vel, place, float(has_target), float(has_place),
            float(self.suction), float(holding), q, qd, belt_v,
            goal.latent if self.obs_version == 3 else None,
        )  # fmt: skip
        if not np.all(np.isfinite(obs)):
            return self._hold("non-finite observation")
        st = TickState(
            now_s, q, qd, tip, tip_vel, target, target_vel, has_target, place, has_place,
            self.suction, holding, belt_v, obs,
        )  # fmt: skip
        self.last_state = st
        return st

    def execute(self, st: TickState, chunk, aim_noise: np.ndarray | None = None) -> Command:
        """Chunk (K, ACTION_DIM) raw -> aim -> IK -> limiter -> Command. `aim_noise` (3,) is added
        to the aim point (DART noise while recording demonstrations; never at run time)."""
        if self._carry_overdue(st):
            return self._scripted_place(st)
        out = np.asarray(chunk, dtype=np.float64)
        if out.shape != (self.k, ACTION_DIM) or not np.all(np.isfinite(out)):
            self.bad_outputs += 1
            return self._hold("non-finite or mis-shaped policy output")
        offsets = out[:, :3]
        if np.max(np.abs(offsets)) > self.cfg.max_offset_m:
            self.bad_outputs += 1
            return self._hold("policy output out of range")
        p = 1.0 / (1.0 + np.exp(-np.clip(out[:, 3], -30.0, 30.0)))
        t = self._tick
        if self.cfg.chunk_mode == "temporal_ensemble":
            self._chunks.append((t, st.tip + offsets, p))
            aim_tick, suc_tick = t + self.aim, t + self.suction_i
            ws, aims, sucs = [], [], []
            for i, (t0, wp, pp) in enumerate(self._chunks):
                j = aim_tick - t0
                if 0 <= j < self.k:
                    ws.append(self._weights[i])
                    aims.append(wp[j])
                    js = suc_tick - t0
                    sucs.append(pp[min(max(js, 0), self.k - 1)])
            w = np.asarray(ws) / np.sum(ws)
            aim = w @ np.asarray(aims)
            suction_p = float(w @ np.asarray(sucs))
        else:
            aim = st.tip + offsets[self.aim]
            suction_p = float(p[self.suction_i])
        if aim_noise is not None:
            aim = aim + aim_noise
        self.last_aim = aim
        q_target, analytic = kin.solve_ik(self.arm, aim, self.limiter.q)
        if not analytic:
            self.ik_fallbacks += 1
        cmd, ok = self.limiter.step(q_target)
        if not ok:
            self.bad_outputs += 1
            return self._hold("non-finite joint target")
        self.suction = suction_p > self.cfg.suction_threshold
        self.policy_ticks += 1
        self.hold_reason = ""
        return Command(cmd, self.suction, "policy")

    def _carry_overdue(self, st: TickState) -> bool:
        return (
            self.cfg.carry_timeout_s > 0
            and st.holding
            and st.has_place
            and self.grasp_time is not None
            and st.now - self.grasp_time > self.cfg.carry_timeout_s
        )

    def _scripted_place(self, st: TickState) -> Command:
        """Take the held item to the latched place (IK, through the limiter) and let go within
        place_radius_m of it: a carry the policy did not finish in carry_timeout_s."""
        if not self._placing:
            self._placing = True
            self.carry_timeouts += 1
        self._chunks.clear()  # the policy's chunks in flight are not this move's
        # up to the place's height first, then across: a straight line from low down could drag
        # the item through a bin wall
        aim = st.place if st.tip[2] >= st.place[2] - LIFT_TOL_M else np.array([*st.tip[:2], st.place[2]])
        q_target, analytic = kin.solve_ik(self.arm, aim, self.limiter.q)
        if not analytic:
            self.ik_fallbacks += 1
        cmd, ok = self.limiter.step(q_target)
        if not ok:
            self.bad_outputs += 1
            return self._hold("non-finite joint target")
        self.suction = float(np.linalg.norm(st.tip - st.place)) > self.cfg.place_radius_m
        self.hold_reason = ""
        return Command(cmd, self.suction, "place")

    def tick(self, now_s: float, source: ChunkSource | None = None, aim_noise=None) -> Command | None:
        cmd = self._tick_once(now_s, source, aim_noise)
        mode = None if cmd is None else cmd.mode
        if mode != self._mode:  # when the current streak of policy (or hold) ticks began
            self._mode, self.mode_since = mode, now_s
        return cmd

    def _tick_once(self, now_s: float, source, aim_noise) -> Command | None:
        st = self.prepare(now_s)
        if not isinstance(st, TickState):
            return st
        src = source or self.policy
        if src is None:
            raise RuntimeError("controller: no chunk source (policy) configured")
        try:
            chunk = src(st)
        except (ValueError, FloatingPointError) as exc:  # a broken output, not a programming error
            self.bad_outputs += 1
            return self._hold(f"policy failed: {exc}")
        return self.execute(st, chunk, aim_noise)

    def _hold(self, reason: str) -> Command:
        self.holds += 1
        self.hold_reason = reason
        self._chunks.clear()
        return Command(self.limiter.hold(), self.suction, "hold", reason)

    def stall_warning(self, warn_plans: int) -> str:
        """The diagnostics' WARN message once `warn_plans` (> 0) plans were pursued since the last
        grasp; "" otherwise."""
        if self._placing:
            return "an item stayed on the cup past carry_timeout_s: placing it by a scripted move"
        if 0 < warn_plans <= self.pursued_without_grasp:
            return f"no grasp in the last {self.pursued_without_grasp} plans pursued: not picking what System 2 names"
        return ""

    def diagnostics(self) -> dict[str, str]:
        return {
            "holds": str(self.holds),
            "hold_reason": self.hold_reason,
            "mode": self._mode or "none",
            "mode_since_s": f"{self.mode_since:.3f}",  # clock of tick(now): when this mode began
            "policy_ticks": str(self.policy_ticks),
            "ik_fallbacks": str(self.ik_fallbacks),
            "bad_outputs": str(self.bad_outputs),
            "rejected_vacuum": str(self.rejected_vacuum),
            "rejected_belt": str(self.rejected_belt),
            "resyncs": str(self.resyncs),
            "commits": str(self.commits),
            "grasps": str(self.grasps),
            "plans_pursued_since_grasp": str(self.pursued_without_grasp),
            "plans_pursued_since_grasp_max": str(self.max_pursued_without_grasp),
            "holding": str(self.holding),
            "carry_max_s": f"{self.max_carry_s:.2f}",
            "carry_timeouts": str(self.carry_timeouts),
            "latched_place": ""
            if self.latched_place is None
            else str(np.round(self.latched_place, 3).tolist()),
        }


class OnnxPolicySource:
    """Chunk source from a PolicySession (or any callable obs (obs_dim,) -> (K, ACTION_DIM))."""

    def __init__(self, session: Callable[[np.ndarray], np.ndarray]):
        self.session = session

    def __call__(self, st: TickState) -> np.ndarray:
        return self.session(st.obs)


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
