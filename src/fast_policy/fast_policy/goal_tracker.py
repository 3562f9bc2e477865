"""The latest System 2 goal, its age, and its target in the world frame now (pure Python).

The node converts each `s1s2_interfaces/msg/Goal` into a `GoalData` (plain Python values) and
hands it to `GoalTracker.update`. A goal is rejected (and counted) when its latent is not exactly
LATENT_DIM finite values, a pose is not finite, or its frame is unknown.

Frames (see Goal.msg): "belt" moves with the belt, world = belt + (belt odometry now) along +x,
so a pick point stays on the item while the belt carries it; "world" is fixed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from s1s2.topics import BELT_FRAME, LATENT_DIM, WORLD_FRAME


@dataclass
class GoalData:
    stamp_s: float  # header.stamp (capture time of the image the plan was made from)
    frame_id: str
    target_label: str  # "" = nothing to pick
    target_xyz: tuple[float, float, float]
    place_xyz: tuple[float, float, float]
    latent: list[float]
    valid_for_s: float  # 0 = not set -> the tracker's default
    plan_id: str = ""
    bin_id: str = ""
    confidence: float = 0.0


@dataclass
class GoalObs:
    """What the policy sees of the goal at one tick."""

    target_world: np.ndarray  # (3,)
    place_world: np.ndarray  # (3,)
    latent: np.ndarray  # (LATENT_DIM,)
    has_goal: float  # 1.0 = something to pick, 0.0 = plan says "nothing to pick"
    age_s: float
    plan_id: str


class GoalRejectedError(ValueError):
    """A goal message the policy cannot use."""


class GoalTracker:
    def __init__(self, default_valid_for_s: float = 2.0, timeout_margin_s: float = 0.0):
        if not default_valid_for_s > 0:
            raise ValueError(f"default_valid_for_s must be > 0, got {default_valid_for_s!r}")
        if not timeout_margin_s >= 0:
            raise ValueError(f"timeout_margin_s must be >= 0, got {timeout_margin_s!r}")
        self.default_valid_for_s = float(default_valid_for_s)
        self.timeout_margin_s = float(timeout_margin_s)
        self.goal: GoalData | None = None
        self._latent: np.ndarray | None = None
        self.accepted = 0
        self.rejected = 0
        self.last_rejection = ""

    @staticmethod
    def check(goal: GoalData) -> np.ndarray:
        """Validate a goal; returns its latent as float32, raises GoalRejectedError naming the problem."""
        latent = np.asarray(goal.latent, dtype=np.float32).reshape(-1)
        if latent.shape[0] != LATENT_DIM:
            raise GoalRejectedError(
                f"goal {goal.plan_id!r}: latent has {latent.shape[0]} values, expected {LATENT_DIM}"
            )
        if not np.all(np.isfinite(latent)):
            raise GoalRejectedError(f"goal {goal.plan_id!r}: latent contains NaN/inf")
        for name in ("target_xyz", "place_xyz"):
            v = getattr(goal, name)
            if len(v) != 3 or not all(math.isfinite(float(x)) for x in v):
                raise GoalRejectedError(f"goal {goal.plan_id!r}: {name} is not 3 finite values: {list(v)}")
        if goal.frame_id not in (BELT_FRAME, WORLD_FRAME):
            raise GoalRejectedError(
                f"goal {goal.plan_id!r}: unknown frame_id {goal.frame_id!r}; expected '{BELT_FRAME}' or '{WORLD_FRAME}'"
            )
        if not (math.isfinite(goal.stamp_s) and math.isfinite(goal.valid_for_s) and goal.valid_for_s >= 0):
            raise GoalRejectedError(
                f"goal {goal.plan_id!r}: bad stamp {goal.stamp_s!r} or valid_for {goal.valid_for_s!r}"
            )
        return latent

    def update(self, goal: GoalData) -> bool:
        """Accept a new goal (replacing the previous one) or reject it (the previous one stays)."""
        try:
            latent = self.check(goal)
        except GoalRejectedError as exc:
            self.rejected += 1
            self.last_rejection = str(exc)
            return False
        self.goal = goal
        self._latent = latent
        self.accepted += 1
        return True

    def age(self, now_s: float) -> float | None:
        """Seconds since the goal's header stamp (None without a goal). Never negative."""
        return None if self.goal is None else max(0.0, now_s - self.goal.stamp_s)

    def valid_for(self, g: GoalData | None = None) -> float:
        """Seconds goal `g` (default: the latest) stays usable after its stamp."""
        g = self.goal if g is None else g
        return self.default_valid_for_s if g is None or g.valid_for_s <= 0 else g.valid_for_s

    def remaining(self, now_s: float) -> float | None:
        """Seconds until the goal goes stale (None without a goal; negative once stale)."""
        age = self.age(now_s)
        return None if age is None else self.valid_for() + self.timeout_margin_s - age

    def current(self, now_s: float, belt_odometry: float | None) -> GoalObs | None:
        """The goal as the policy should see it now, or None when there is none, it is stale, or it is
        in the belt frame and no belt odometry has arrived yet (all of which mean: hold)."""
        return self.observe(self.goal, now_s, belt_odometry)

    def observe(self, g: GoalData | None, now_s: float, belt_odometry: float | None) -> GoalObs | None:
        """`current()` for any accepted goal `g` (an earlier one the controller still pursues):
        None when it is stale by its own stamp and validity, or a belt-frame goal has no odometry."""
        if g is None:
            return None
        age = max(0.0, now_s - g.stamp_s)
        if age > self.valid_for(g) + self.timeout_margin_s:
            return None
        target = np.asarray(g.target_xyz, dtype=np.float32)
        if g.frame_id == BELT_FRAME:
            if belt_odometry is None or not math.isfinite(belt_odometry):
                return None
            target = belt_to_world(target, belt_odometry).astype(np.float32)
        return GoalObs(
            target_world=target,
            place_world=np.asarray(g.place_xyz, dtype=np.float32),
            latent=self._latent if g is self.goal else self.check(g),
            has_goal=1.0 if g.target_label else 0.0,
            age_s=age,
            plan_id=g.plan_id,
        )


def belt_to_world(xyz, belt_odometry: float) -> np.ndarray:
    """world = belt + odometry along +x."""
    p = np.asarray(xyz, dtype=np.float64).copy()
    p[..., 0] += belt_odometry
    return p
