"""Scripted expert: picks items off the moving belt with the suction cup and drops them in bins.

The core is a pure function of its inputs plus a small phase memory: arm joint positions, a pick
point (world, now), the pick point's velocity, a place point and the suction/vacuum state in. It
knows nothing about MuJoCo, so the planner/policy code can reuse it on any source of targets:
- `decide(obs)`: the phase machine alone: where the tip should go and the suction command;
- `act(obs)`: the original joint-space behaviour: the next joint targets, each joint moving at up
  to `speed_fraction` x its speed limit, no acceleration limit (the `expert` controller of the sim
  node, labelled scenes, and the reference scores);
- `chunk(state, K)`: one action chunk in System 1's action space (fast_policy.spec): the tip
  waypoints of its joint path from the measured joints, relative to the measured tip, plus
  suction logits. System 1's Controller executes it exactly like a policy's chunk (aim point ->
  IK -> SafetyLimiter), so demonstrations recorded that way are limiter-consistent by construction.
`select_target` picks which item to go for from ground truth; `ExpertDriver` wires both to a
CellSim (used for demonstrations, labelled scenes, the `controller: expert` node mode and scoring).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from s1s2 import kinematics
from s1s2.cell import DEFAULT_CELL, ArmSpec

HOVER = 0.06  # approach height above the pick point
PRESS = 0.008  # how far below the pick point the cup aims while descending
TRAVEL_Z = 0.62  # tip height while carrying
READY = (0.0, -0.30, 0.60)  # tip position while waiting for an item
LEAD_S = 0.10  # aim ahead of a moving target by this much time (servo lag)
SUCTION_LOGIT = 6.0  # |logit| of the expert's suction decisions in a chunk (sigmoid 0.9975)


@dataclass(frozen=True)
class ExpertObservation:
    q: np.ndarray  # measured joint positions (4,)
    target: np.ndarray | None  # pick point, world frame, now; None: nothing to pick
    target_velocity: np.ndarray  # (3,) m/s
    place: np.ndarray | None  # tip position over the destination bin
    suction: bool  # suction currently commanded
    holding: bool  # vacuum sensor: an item is attached to the cup


@dataclass(frozen=True)
class ExpertAction:
    q: np.ndarray  # next joint position targets (4,)
    suction: bool
    phase: str


@dataclass(frozen=True)
class Decision:
    goal: np.ndarray | None  # tip goal (world); None: stay where the command is
    suction: bool
    phase: str


class ScriptedExpert:
    """Phases: idle -> approach -> descend -> lift -> transport -> release -> idle."""

    def __init__(
        self,
        arm: ArmSpec = DEFAULT_CELL.arm,
        dt: float = 0.02,
        speed_fraction: float = 0.9,
        lead_s: float = LEAD_S,
        descend_xy_tol: float = 0.012,
        descend_z_tol: float = 0.03,
        reachable_lift: bool = False,
    ):
        if not 0 < speed_fraction <= 1:
            raise ValueError(f"speed_fraction must be in (0, 1], got {speed_fraction!r}")
        if not lead_s >= 0:
            raise ValueError(f"lead_s must be >= 0, got {lead_s!r}")
        if not (descend_xy_tol > 0 and descend_z_tol > 0):
            raise ValueError(f"descend tolerances must be > 0, got {descend_xy_tol!r}, {descend_z_tol!r}")
        self.descend_xy_tol = descend_xy_tol
        self.descend_z_tol = descend_z_tol
        self.reachable_lift = reachable_lift
        self.arm = arm
        self.dt = dt
        self.speed_fraction = speed_fraction
        self.lead_s = lead_s
        self.vlim = speed_fraction * arm.velocity_limits()
        self._lo, self._hi = arm.lower_limits(), arm.upper_limits()
        self.last_decision: Decision | None = None
        self.reset()

    def reset(self) -> None:
        self.phase = "idle"
        self._q_cmd: np.ndarray | None = None
        self._phase_t = 0.0
        self._tip_prev: np.ndarray | None = None

    def _set(self, phase: str) -> None:
        self.phase = phase
        self._phase_t = 0.0

    def ik(self, p) -> np.ndarray | None:
        try:
            return kinematics.inverse(self.arm, p)
        except kinematics.UnreachableError:
            return None

    # ---- public hooks ---------------------------------------------------------------------
    def decide(self, obs: ExpertObservation) -> Decision:
        """Advance the phase machine by one tick; returns the tip goal and suction command."""
        self._phase_t += self.dt
        tip = kinematics.forward(self.arm, obs.q)
        tip_speed = 0.0 if self._tip_prev is None else float(np.linalg.norm(tip - self._tip_prev)) / self.dt
        self._tip_prev = tip
        suction = obs.suction
        goal = None
        if self.phase in ("idle", "approach", "descend") and obs.holding:
            self._set("lift")  # something is on the cup: carry it whatever we were doing
        if self.phase == "idle":
            suction = False
            if obs.target is not None:
                self._set("approach")
            else:
                goal = np.array(READY)
        if self.phase in ("approach", "descend") and obs.target is None:
            self._set("idle")
            goal, suction = np.array(READY), False
        if self.phase == "approach":
            aim = np.asarray(obs.target) + self.lead_s * np.asarray(obs.target_velocity)
            goal = aim + np.array([0.0, 0.0, HOVER])
            if (np.linalg.norm(tip[:2] - goal[:2]) < self.descend_xy_tol
                    and abs(tip[2] - goal[2]) < self.descend_z_tol):  # fmt: skip
                self._set("descend")
        if self.phase == "descend":
            suction = True
            aim = np.asarray(obs.target) + self.lead_s * np.asarray(obs.target_velocity)
            goal = aim - np.array([0.0, 0.0, PRESS])
            if self._phase_t > 1.5:  # missed it: back off and retry from above
                self._set("approach")
                suction = False
        if self.phase == "lift":
            suction = True
            goal = (
                self.lift_goal(tip, obs.place)
                if self.reachable_lift
                else np.array([tip[0], tip[1], TRAVEL_Z])
            )
            if not obs.holding:
                self._set("idle")
            elif tip[2] > TRAVEL_Z - 0.04 or self._phase_t > 1.0:
                self._set("transport")
        if self.phase == "transport":
            suction = True
            if obs.place is None or not obs.holding:
                self._set("release")
            else:
                goal = np.asarray(obs.place, dtype=float)
                # release only once settled over the bin, so the item is not thrown
                if np.linalg.norm(tip - goal) < 0.03 and tip_speed < 0.08:
                    self._set("release")
        if self.phase == "release":
            suction = False
            goal = np.asarray(obs.place, dtype=float) if obs.place is not None else np.array(READY)
            if self._phase_t > 0.1 and not obs.holding:
                self._set("idle")
        return Decision(goal, bool(suction), self.phase)

    def lift_goal(self, tip, place) -> np.ndarray:
        """Straight up to TRAVEL_Z; where that is out of reach (an item picked at the far edge of
        the workspace), the nearest reachable point at TRAVEL_Z on the way to the place. The
        original goal is then unreachable, the arm holds still until the 1 s lift timeout: a
        timer a memoryless policy cannot see."""
        up = np.array([tip[0], tip[1], TRAVEL_Z])
        if self.ik(up) is not None:
            return up
        towards = np.asarray(place if place is not None else READY, dtype=float)
        for s in np.linspace(0.1, 1.0, 10):
            p = np.array([*(tip[:2] + s * (towards[:2] - tip[:2])), TRAVEL_Z])
            if self.ik(p) is not None:
                return p
        return up

    def step_towards(self, q: np.ndarray, q_goal: np.ndarray) -> np.ndarray:
        step = np.clip(q_goal - q, -self.vlim * self.dt, self.vlim * self.dt)
        return np.clip(q + step, self._lo, self._hi)

    def joint_path(self, q_from, goal, horizon: int) -> np.ndarray:
        """(horizon, 4) joint positions from q_from towards IK(goal) along a straight line in joint
        space, as fast as `speed_fraction` x the speed limits allow (all joints arrive together).

        A straight joint-space line between two tool-down poses keeps the tool down (the pitch
        q1 + q2 + q3 is linear along it) and stays inside the joint box, so the controller's
        tool-down IK of each waypoint's tip gives back exactly these joints: the path is
        executable as planned. An unreachable or missing goal gives a path that stays at q_from."""
        q = np.asarray(q_from, dtype=float)
        q_goal = self.ik(goal) if goal is not None else None
        if q_goal is None:
            return np.repeat(q[None], horizon, axis=0)
        delta = q_goal - q
        ticks = float(np.max(np.abs(delta) / (self.vlim * self.dt)))  # ticks to get there
        frac = np.minimum(np.arange(1, horizon + 1) / max(ticks, 1e-9), 1.0)
        return q[None] + frac[:, None] * delta[None]

    def chunk(self, state, horizon: int) -> np.ndarray:
        """One spec-v2 action chunk (horizon, 4) for a controller TickState: tip waypoints of the
        expert's joint path from the measured joints, relative to the measured tip, and suction
        logits (+-SUCTION_LOGIT, the current decision held over the chunk)."""
        obs = ExpertObservation(
            q=state.q,
            target=state.target if state.has_target else None,
            target_velocity=state.target_vel,
            place=state.place if state.has_place else None,
            suction=state.suction,
            holding=state.holding,
        )
        d = self.decide(obs)
        self.last_decision = d
        path = self.joint_path(state.q, d.goal, horizon)
        out = np.empty((horizon, 4))
        out[:, :3] = kinematics.forward_batch(self.arm, path) - state.tip
        out[:, 3] = SUCTION_LOGIT if d.suction else -SUCTION_LOGIT
        return out

    # ---- the original joint-space behaviour --------------------------------------------------
    def act(self, obs: ExpertObservation) -> ExpertAction:
        if self._q_cmd is None:
            self._q_cmd = np.asarray(obs.q, dtype=float).copy()
        d = self.decide(obs)
        q_goal = self.ik(d.goal) if d.goal is not None else None
        if q_goal is None:
            q_goal = self._q_cmd  # unreachable goal: hold still
        self._q_cmd = self.step_towards(self._q_cmd, q_goal)
        return ExpertAction(self._q_cmd.copy(), d.suction, d.phase)


def reachable(arm: ArmSpec, p) -> bool:
    try:
        kinematics.inverse(arm, p)
        kinematics.inverse(arm, np.asarray(p) + np.array([0.0, 0.0, HOVER]))
        return True
    except kinematics.UnreachableError:
        return False


def select_target(items, arm: ArmSpec = DEFAULT_CELL.arm, horizon_s: float = 1.8):
    """The item to pick next: among items on the belt that are reachable now and still will be
    `horizon_s` from now, the most downstream one (it leaves first). `items`: ItemTruth list."""
    best, best_x = None, -math.inf
    for it in items:
        if not it.on_belt or it.grasped:
            continue
        p = np.asarray(it.pick_point)
        later = p + horizon_s * np.asarray(it.velocity)
        if reachable(arm, p) and reachable(arm, later) and p[0] > best_x:
            best, best_x = it, p[0]
    return best


class ExpertDriver:
    """Runs ScriptedExpert on a CellSim with the oracle's goals (the `expert` controller)."""

    def __init__(self, sim, dt: float = 0.02):
        from conveyor_sim.oracle import Oracle

        self.sim = sim
        self.dt = dt
        self.expert = ScriptedExpert(sim.desc.arm, dt)
        self.oracle = Oracle(sim.desc)
        self.last_action: ExpertAction | None = None
        self.last_goal = None  # OracleGoal of the last compute()

    def reset(self) -> None:
        self.expert.reset()
        self.oracle.reset()

    def compute(self) -> ExpertAction:
        """Next action from the sim's current state (does not apply it)."""
        sim = self.sim
        holding = sim.holding()
        goal = self.oracle.goal_for(
            sim, switch_allowed=self.expert.phase in ("idle", "approach", "descend") and holding is None
        )
        if goal.changed:
            self.expert.reset()
        obs = ExpertObservation(
            q=sim.joint_positions(),
            target=goal.pick_world,
            target_velocity=goal.velocity,
            place=goal.place_world,
            suction=sim.suction,
            holding=holding is not None,
        )
        act = self.expert.act(obs)
        self.last_action = act
        self.last_goal = goal
        return act

    def apply(self, act: ExpertAction) -> None:
        self.sim.command_joints(act.q)
        self.sim.set_suction(act.suction)

    def tick(self) -> ExpertAction:
        act = self.compute()
        self.apply(act)
        return act

    def run_for(self, seconds: float) -> None:
        """Advance the cell by `seconds` (rounded to whole control periods), the expert acting
        every period."""
        for _ in range(max(0, int(round(seconds / self.dt)))):
            self.tick()
            self.sim.step(self.dt)
