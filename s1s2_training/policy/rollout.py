"""Closed-loop episodes in the MuJoCo cell through System 1's runtime execution path (no torch).

One function, `run_episode`, serves data collection and evaluation:
- the arm is always driven by `fast_policy.controller.Controller` (aim point -> IK -> SafetyLimiter),
  fed like the node feeds it: joint states, belt odometry + speed, the vacuum sensor, and goals
  from the oracle System 2 (`conveyor_sim.oracle.OraclePlanner`, the same one the ORACLE planner
  node runs) with per-tick or 1 Hz planner timing (`GoalTiming`);
- the chunk comes from the policy (ONNX) or from the scripted expert (`conveyor_sim.expert`), or
  from the policy in DAgger blocks; the expert labels every visited state with its own chunk;
- DART: while the expert drives, piecewise-constant Gaussian noise on the aim point (labels clean).
`run_reference_expert` runs today's joint-space expert (ExpertDriver, no limiter) for reference.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from conveyor_sim.cell import CellSim, SimConfig
from conveyor_sim.expert import ExpertDriver, ScriptedExpert
from conveyor_sim.oracle import OraclePlanner
from fast_policy.controller import Command, Controller, ControllerConfig, TickState
from fast_policy.goal_tracker import GoalData, GoalTracker
from fast_policy.safety import JointLimits
from fast_policy.spec import SPEC_VERSION, obs_dim
from s1s2.topics import BELT_FRAME, CONTROL_DT

OUTCOMES = ("correct", "wrong_bin", "missed", "dropped")
TIMINGS = ("tick", "planner")


@dataclass
class GoalTiming:
    """How the oracle System 2 delivers goals in an episode.
    "tick": a goal every control tick, stamped now, exact (System 1 in isolation);
    "planner": like a real System 2: one image every 1/rate_hz s (random phase), the goal stamped
    with the image time and delivered `latency_s` (uniform in a range) later, Gaussian pick-point
    noise, belt frame, valid for `valid_for_s`; with `p_other` > 0 a plan names another item on the
    belt with that chance (a System 2 that confuses items; `OraclePlanner`)."""

    timing: str = "tick"
    rate_hz: float = 1.0
    latency_s: tuple[float, float] = (0.3, 0.5)
    noise_xy_m: float = 0.0  # std per horizontal axis of the pick point
    noise_z_m: float = 0.0
    valid_for_s: float = 3.0
    p_other: float = 0.0  # chance a plan names another item on the belt than the oracle's

    def __post_init__(self):
        if self.timing not in TIMINGS:
            raise ValueError(f"GoalTiming.timing {self.timing!r} unknown; valid: {', '.join(TIMINGS)}")
        if not self.rate_hz > 0:
            raise ValueError(f"GoalTiming.rate_hz must be > 0, got {self.rate_hz!r}")
        lo, hi = self.latency_s
        if not 0 <= lo <= hi:
            raise ValueError(
                f"GoalTiming.latency_s must be (lo, hi) with 0 <= lo <= hi, got {self.latency_s!r}"
            )
        if not (self.noise_xy_m >= 0 and self.noise_z_m >= 0 and self.valid_for_s > 0):
            raise ValueError(f"GoalTiming: noise must be >= 0 and valid_for_s > 0, got {self}")
        if not 0.0 <= self.p_other <= 1.0:
            raise ValueError(f"GoalTiming.p_other must be in [0, 1], got {self.p_other!r}")

    @classmethod
    def per_tick(cls) -> GoalTiming:
        return cls(timing="tick", latency_s=(0.0, 0.0), valid_for_s=1.0)

    @classmethod
    def planner(cls, noise_m: float = 0.015, p_other: float = 0.0) -> GoalTiming:
        return cls(timing="planner", noise_xy_m=noise_m, noise_z_m=noise_m, p_other=p_other)


class OracleGoals:
    """GoalData from the cell's ground truth through `OraclePlanner` with a `GoalTiming`."""

    def __init__(self, timing: GoalTiming, desc, seed: int):
        self.cfg = timing
        lo, hi = timing.latency_s if timing.timing == "planner" else (0.0, 0.0)
        p_other = timing.p_other if timing.timing == "planner" else 0.0
        self.planner = OraclePlanner(desc, timing.noise_xy_m, lo, hi, [seed, 7], timing.noise_z_m, p_other)
        rng = np.random.default_rng([seed, 8])
        self._next_image = float(rng.uniform(0.0, 1.0 / timing.rate_hz))
        self._pending: list[tuple[float, GoalData]] = []
        self._n = 0

    def _goal(self, sim) -> tuple[float, GoalData]:
        plan = self.planner.plan(sim.time, sim.ground_truth(), sim.belt_position())
        self._n += 1
        goal = GoalData(
            stamp_s=plan.stamp, frame_id=BELT_FRAME, target_label=plan.label,
            target_xyz=tuple(float(v) for v in plan.target_belt), place_xyz=tuple(float(v) for v in plan.place_world),
            latent=plan.latent.tolist(), valid_for_s=self.cfg.valid_for_s, plan_id=f"oracle-{self._n}",
            bin_id=plan.bin_id, confidence=1.0,
        )  # fmt: skip
        return plan.publish_at, goal

    def poll(self, sim) -> list[GoalData]:
        """Goals delivered at the sim's current time (call once per control tick, before the
        controller ticks)."""
        now = sim.time
        if self.cfg.timing == "tick":
            return [self._goal(sim)[1]]
        if now >= self._next_image - 1e-9:
            self._pending.append(self._goal(sim))
            self._next_image += 1.0 / self.cfg.rate_hz
        out = [g for t, g in self._pending if t <= now + 1e-9]
        self._pending = [(t, g) for t, g in self._pending if t > now + 1e-9]
        return out


PHASES = ("idle", "approach", "descend", "lift", "transport", "release")


@dataclass
class DartConfig:
    """Noise on the executed aim point while the expert drives (the label stays clean)."""

    sigma_m: float = 0.02  # std per axis of the aim offset
    hold_ticks: tuple[int, int] = (5, 25)  # the offset is redrawn after a uniform number of ticks
    p_active: float = 0.7  # chance that a drawn segment is noisy at all (else 0)

    def __post_init__(self):
        if not self.sigma_m >= 0:
            raise ValueError(f"DartConfig.sigma_m must be >= 0, got {self.sigma_m!r}")
        if not 1 <= self.hold_ticks[0] <= self.hold_ticks[1]:
            raise ValueError(f"DartConfig.hold_ticks must be 1 <= lo <= hi, got {self.hold_ticks!r}")
        if not 0 <= self.p_active <= 1:
            raise ValueError(f"DartConfig.p_active must be in [0, 1], got {self.p_active!r}")


class _Dart:
    def __init__(self, cfg: DartConfig, rng: np.random.Generator):
        self.cfg, self.rng, self.left, self.value = cfg, rng, 0, np.zeros(3)

    def sample(self) -> np.ndarray:
        if self.left <= 0:
            lo, hi = self.cfg.hold_ticks
            self.left = int(self.rng.integers(lo, hi + 1))
            on = self.rng.random() < self.cfg.p_active
            self.value = self.rng.normal(0.0, self.cfg.sigma_m, 3) if on else np.zeros(3)
        self.left -= 1
        return self.value


@dataclass
class EpisodeSpec:
    seed: int
    belt_speed: float
    episode_s: float = 30.0
    goals: GoalTiming = field(default_factory=GoalTiming.per_tick)


@dataclass
class ExpertParams:
    """The scripted expert's knobs when it drives through the controller (conveyor_sim.expert)."""

    speed_fraction: float = 0.9
    lead_s: float = 0.10
    descend_xy_tol: float = 0.02
    descend_z_tol: float = 0.03
    reachable_lift: bool = True


@dataclass
class EpisodeResult:
    score: dict
    ticks: int
    holds: int
    hold_reasons: dict
    ik_fallbacks: int
    tick_s: list
    expert_ticks: int = 0
    tick_cpu_s: list = field(default_factory=list)  # thread CPU time per tick (load-independent)
    rows: dict | None = None  # recorded data (obs, labels, ...)
    carry_max_s: float = 0.0  # the longest an item stayed on the cup
    carry_timeouts: int = 0  # carries the controller's scripted place finished (carry_timeout_s)


def make_sim(seed: int = 0) -> CellSim:
    return CellSim(SimConfig(seed=seed, render_enabled=False))


def _score(sim) -> dict:
    t = sim.score.totals()
    return {k: int(getattr(t, k)) for k in OUTCOMES}


def run_reference_expert(sim: CellSim, ep: EpisodeSpec) -> dict:
    """Today's scripted expert from ground truth, joint space, no limiter (the reference count)."""
    sim.reset(ep.seed)
    sim.set_belt_speed(ep.belt_speed)
    ExpertDriver(sim, CONTROL_DT).run_for(ep.episode_s)
    return _score(sim)


def run_episode(
    sim: CellSim,
    ep: EpisodeSpec,
    chunk_size: int,
    ctrl_cfg: ControllerConfig | None = None,
    policy=None,
    expert_params: ExpertParams | None = None,
    label: bool = False,
    beta: float = 1.0,
    block_ticks: int = 50,
    dart: DartConfig | None = None,
    rng_seed: int | None = None,
    time_ticks: bool = False,
    obs_version: int = SPEC_VERSION,
) -> EpisodeResult:
    """One episode. `policy`: a chunk source (TickState -> (K, 4)); None = the expert drives.
    `obs_version`: the observation's spec version (the policy's; recorded rows use it too).
    With a policy and `beta` > 0, the expert drives random blocks of `block_ticks` with probability
    `beta` (DAgger mixing). `label`: run the expert on every tick and record (obs, expert chunk)."""
    sim.reset(ep.seed)
    sim.set_belt_speed(ep.belt_speed)
    arm = sim.desc.arm
    rng = np.random.default_rng([ep.seed, 11] if rng_seed is None else rng_seed)
    ctrl = Controller(
        policy,
        chunk_size,
        JointLimits.from_arm(arm),
        arm,
        ctrl_cfg or ControllerConfig(rate_hz=1.0 / CONTROL_DT),
        GoalTracker(),
        obs_version,
    )
    oracle = OracleGoals(ep.goals, sim.desc, ep.seed)
    need_expert = policy is None or label or beta > 0
    ep_params = expert_params or ExpertParams()
    expert = (
        ScriptedExpert(
            arm,
            CONTROL_DT,
            ep_params.speed_fraction,
            ep_params.lead_s,
            ep_params.descend_xy_tol,
            ep_params.descend_z_tol,
            ep_params.reachable_lift,
        )
        if need_expert
        else None
    )
    dart_n = _Dart(dart, rng) if dart is not None else None
    names = arm.joint_names
    rows = {"obs": [], "act": [], "phase": []} if label else None
    tick_s, tick_cpu, expert_ticks = [], [], 0
    expert_drives = policy is None
    n_ticks = int(round(ep.episode_s / CONTROL_DT))
    for t in range(n_ticks):
        now = sim.time
        if policy is not None and t % block_ticks == 0:
            expert_drives = beta > 0 and rng.random() < beta
        ctrl.on_joint_state(names, sim.joint_positions(), sim.joint_velocities(), now)
        ctrl.on_belt(sim.belt_position(), sim.belt_speed, now)
        ctrl.on_vacuum(sim.holding() is not None, now)
        for g in oracle.poll(sim):
            ctrl.on_goal(g)
        t0, c0 = time.perf_counter(), time.thread_time()
        st = ctrl.prepare(now)
        if isinstance(st, TickState):
            lab = expert.chunk(st, chunk_size) if expert is not None else None
            if expert_drives:
                cmd = ctrl.execute(st, lab, dart_n.sample() if dart_n is not None else None)
                expert_ticks += 1
            else:
                cmd = ctrl.execute(st, policy(st))
            if rows is not None:
                rows["obs"].append(st.obs)
                rows["act"].append(lab.astype(np.float32))
                rows["phase"].append(PHASES.index(expert.last_decision.phase))
        else:
            cmd = st
            if expert is not None and isinstance(st, Command):
                expert.reset()  # holding still: the expert re-plans from scratch afterwards
        if time_ticks:
            tick_s.append(time.perf_counter() - t0)
            tick_cpu.append(time.thread_time() - c0)
        if cmd is not None:
            sim.command_joints(cmd.positions)
            sim.set_suction(cmd.suction)
        sim.step(CONTROL_DT)
    reasons = {}
    if rows is not None:
        rows = {
            "obs": np.asarray(rows["obs"], np.float32).reshape(-1, obs_dim(obs_version)),
            "act": np.asarray(rows["act"], np.float32).reshape(-1, chunk_size, 4),
            "phase": np.asarray(rows["phase"], np.int8),
        }
    return EpisodeResult(
        _score(sim),
        n_ticks,
        ctrl.holds,
        reasons,
        ctrl.ik_fallbacks,
        tick_s,
        expert_ticks=expert_ticks,
        rows=rows,
        tick_cpu_s=tick_cpu,
        carry_max_s=ctrl.max_carry_s,
        carry_timeouts=ctrl.carry_timeouts,
    )


def run_raw_expert_episode(sim: CellSim, ep: EpisodeSpec, chunk_size: int,
                           expert_params: ExpertParams | None = None) -> EpisodeResult:  # fmt: skip
    """ABLATION ONLY: demonstrations recorded the old way, NOT through the execution path. The
    expert's own joint-space commands (`act`: up to 0.9 x the speed limits, no acceleration limit)
    drive the sim directly; the observation is built by a Controller from the same goal view
    (its commands are discarded); the label of tick t is the tip positions of the expert's next K
    commands (hindsight windows), relative to the measured tip, plus its suction decision."""
    from s1s2.kinematics import forward_batch

    sim.reset(ep.seed)
    sim.set_belt_speed(ep.belt_speed)
    arm = sim.desc.arm
    ctrl = Controller(None, chunk_size, JointLimits.from_arm(arm), arm,
                      ControllerConfig(rate_hz=1.0 / CONTROL_DT), GoalTracker())  # fmt: skip
    oracle = OracleGoals(ep.goals, sim.desc, ep.seed)
    p = expert_params or ExpertParams()
    expert = ScriptedExpert(
        arm, CONTROL_DT, p.speed_fraction, p.lead_s, p.descend_xy_tol, p.descend_z_tol, p.reachable_lift
    )
    from conveyor_sim.expert import ExpertObservation

    obs, tips, cmds, sucs, phases = [], [], [], [], []
    names = arm.joint_names
    for _ in range(int(round(ep.episode_s / CONTROL_DT))):
        now = sim.time
        ctrl.on_joint_state(names, sim.joint_positions(), sim.joint_velocities(), now)
        ctrl.on_belt(sim.belt_position(), sim.belt_speed, now)
        ctrl.on_vacuum(sim.holding() is not None, now)
        for g in oracle.poll(sim):
            ctrl.on_goal(g)
        st = ctrl.prepare(now)
        if isinstance(st, TickState):
            a = expert.act(ExpertObservation(st.q, st.target if st.has_target else None, st.target_vel,
                                             st.place if st.has_place else None, st.suction, st.holding))  # fmt: skip
            obs.append(st.obs)
            tips.append(st.tip)
            cmds.append(a.q)
            sucs.append(a.suction)
            phases.append(PHASES.index(a.phase))
            sim.command_joints(a.q)
            sim.set_suction(a.suction)
            ctrl.suction = a.suction
        sim.step(CONTROL_DT)
    n = len(obs)
    cmd = np.asarray(cmds)
    idx = np.minimum(np.arange(n)[:, None] + np.arange(chunk_size)[None, :], n - 1)
    wp = forward_batch(arm, cmd[idx].reshape(-1, 4)).reshape(n, chunk_size, 3)
    act = np.empty((n, chunk_size, 4), np.float32)
    act[..., :3] = wp - np.asarray(tips)[:, None, :]
    act[..., 3] = np.where(np.asarray(sucs), 6.0, -6.0)[:, None]
    rows = {"obs": np.asarray(obs, np.float32), "act": act, "phase": np.asarray(phases, np.int8)}
    return EpisodeResult(_score(sim), n, 0, {}, 0, [], expert_ticks=n, rows=rows)
