"""Scripted expert: picks items off the moving belt with the suction cup and drops them in bins.

The core (`ScriptedExpert.act`) is a pure function of its inputs plus a small phase memory:
arm joint positions, a pick point (world, now), the pick point's velocity, a place point and the
suction/vacuum state in; the next joint position targets and suction command out (50 Hz). It
knows nothing about MuJoCo, so the planner/policy code can reuse it on any source of targets.
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


class ScriptedExpert:
    """Phases: idle -> approach -> descend -> lift -> transport -> release -> idle."""

    def __init__(self, arm: ArmSpec = DEFAULT_CELL.arm, dt: float = 0.02, speed_fraction: float = 0.9):
        self.arm = arm
        self.dt = dt
        self.vlim = speed_fraction * arm.velocity_limits()
        self.reset()

    def reset(self) -> None:
        self.phase = "idle"
        self._q_cmd: np.ndarray | None = None
        self._phase_t = 0.0
        self._tip_prev: np.ndarray | None = None
        self.goal_q: np.ndarray | None = None  # joint goal of the last act()
        self.start_q: np.ndarray | None = None  # command the last act() stepped from

    def sync_command(self, q) -> None:
        """Continue from the command that was actually sent (another controller, noise, a limiter)
        instead of the expert's own last command."""
        self._q_cmd = np.asarray(q, dtype=float).copy()

    def _step(self, q_from: np.ndarray, q_goal: np.ndarray) -> np.ndarray:
        step = np.clip(q_goal - q_from, -self.vlim * self.dt, self.vlim * self.dt)
        return np.clip(q_from + step, self.arm.lower_limits(), self.arm.upper_limits())

    def _goto(self, q_goal: np.ndarray) -> np.ndarray:
        self.start_q, self.goal_q = self._q_cmd.copy(), np.asarray(q_goal, dtype=float).copy()
        self._q_cmd = self._step(self._q_cmd, q_goal)
        return self._q_cmd.copy()

    def plan(self, k: int) -> np.ndarray:
        """(k, 4): the expert's next k commands from the last act() if its goal stayed fixed."""
        if self.goal_q is None:
            raise RuntimeError("plan() needs an act() first")
        q, out = self.start_q, []
        for _ in range(k):
            q = self._step(q, self.goal_q)
            out.append(q)
        return np.array(out)

    def _ik(self, p) -> np.ndarray | None:
        try:
            return kinematics.inverse(self.arm, p)
        except kinematics.UnreachableError:
            return None

    def _set(self, phase: str) -> None:
        self.phase = phase
        self._phase_t = 0.0

    def act(self, obs: ExpertObservation) -> ExpertAction:
        if self._q_cmd is None:
            self._q_cmd = np.asarray(obs.q, dtype=float).copy()
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
            aim = np.asarray(obs.target) + LEAD_S * np.asarray(obs.target_velocity)
            goal = aim + np.array([0.0, 0.0, HOVER])
            if np.linalg.norm(tip[:2] - goal[:2]) < 0.012 and abs(tip[2] - goal[2]) < 0.03:
                self._set("descend")
        if self.phase == "descend":
            suction = True
            aim = np.asarray(obs.target) + LEAD_S * np.asarray(obs.target_velocity)
            goal = aim - np.array([0.0, 0.0, PRESS])
            if self._phase_t > 1.5:  # missed it: back off and retry from above
                self._set("approach")
                suction = False
        if self.phase == "lift":
            suction = True
            goal = np.array([tip[0], tip[1], TRAVEL_Z])
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
        q_goal = self._ik(goal) if goal is not None else None
        if q_goal is None:
            q_goal = self._q_cmd  # unreachable goal: hold still
        return ExpertAction(self._goto(q_goal), bool(suction), self.phase)


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
