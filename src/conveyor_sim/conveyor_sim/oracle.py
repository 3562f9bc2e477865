"""The oracle: ground truth -> the goal a perfect System 2 would publish. The one place that turns
the simulator's ground truth into a Goal's content, used by the scripted expert's driver, the
recorders and dataset builders, the policy's evaluation and training, and the oracle planner.

Which item: the one `select_target` picks (the most downstream item on the belt that is reachable
now and will still be reachable), kept until it is no longer on the belt or held, and only
switched while the arm is free to switch (`switch_allowed`). While an item is held it stays the
target (its place point is where to go), with no pick point. The goal latent is
`s1s2.latent.goal_latent`: the trained planner's layout (class, hold, bin, pick point) for the truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from conveyor_sim.expert import select_target
from s1s2.cell import CellDescription
from s1s2.latent import goal_latent
from s1s2.topics import LATENT_DIM


@dataclass(frozen=True)
class OracleGoal:
    item_id: str | None  # None: nothing to pick
    label: str | None  # item class
    bin_id: str | None
    pick_world: np.ndarray | None  # the target's pick point now (world); None while it is held
    velocity: np.ndarray  # the target's velocity (world), zeros without a target
    place_world: np.ndarray | None  # where the suction tip releases it
    held: bool  # the target is on the suction cup
    changed: bool = False  # a newly chosen item, other than the previous target
    latent: np.ndarray = field(default_factory=lambda: np.zeros(LATENT_DIM, np.float32))

    @property
    def has_target(self) -> bool:
        return self.item_id is not None


class Oracle:
    """Stateful target choice over ground-truth updates (see the module docstring)."""

    def __init__(self, desc: CellDescription):
        self.desc = desc
        self.target_id: str | None = None

    def reset(self) -> None:
        self.target_id = None

    def update(self, items, holding_id: str | None, switch_allowed: bool = True) -> OracleGoal:
        """`items`: ItemTruth list (CellSim.ground_truth()); `holding_id`: the item on the cup."""
        by_id = {it.item_id: it for it in items}
        previous = self.target_id
        if holding_id is not None:
            self.target_id = holding_id
        tgt = by_id.get(self.target_id) if self.target_id else None
        if tgt is not None and not (tgt.on_belt or tgt.grasped):
            tgt = None
        chosen = False
        if tgt is None and switch_allowed and holding_id is None:
            tgt = select_target(items, self.desc.arm)
            chosen = tgt is not None
        self.target_id = tgt.item_id if tgt is not None else None
        if tgt is None:
            return OracleGoal(
                None, None, None, None, np.zeros(3), None, False, latent=goal_latent(None, None, self.desc)
            )
        return OracleGoal(
            item_id=tgt.item_id,
            label=tgt.class_label,
            bin_id=tgt.bin_id,
            pick_world=None if tgt.grasped else np.asarray(tgt.pick_point, float).copy(),
            velocity=np.asarray(tgt.velocity, float).copy(),
            place_world=self.desc.place_point(tgt.bin_id),
            held=bool(tgt.grasped),
            changed=chosen and tgt.item_id != previous,
            latent=goal_latent(tgt.class_label, None if tgt.grasped else tgt.pick_point, self.desc),
        )

    def goal_for(self, sim, switch_allowed: bool = True) -> OracleGoal:
        """`update` from a CellSim's current state."""
        return self.update(sim.ground_truth(), sim.holding(), switch_allowed)


@dataclass(frozen=True)
class OraclePlan:
    """One plan of the oracle System 2, in the Goal message's terms."""

    stamp: float  # the ground truth's stamp (a planner's image time)
    publish_at: float  # stamp + latency: when a planner would have finished
    label: str  # "" = nothing to pick
    bin_id: str
    target_belt: np.ndarray  # (3,) pick point in the belt frame (+ noise), zeros without a target
    place_world: np.ndarray  # (3,) zeros without a target
    latent: np.ndarray


class OraclePlanner:
    """An oracle System 2 with a planner's timing: at each plan it looks at one ground-truth
    snapshot (an image) and names an item on the belt: the one it named before while that is still
    on the belt (a planner that switched targets every second would make the arm zig-zag), else
    the one `select_target` picks. An item on the suction cup is never a target, as for a VLM: while
    the arm carries one item, the plan already names the next. It adds Gaussian pick-point noise
    (std `pick_noise_m` per horizontal axis, `pick_noise_z_m` vertically) and reports the pick
    point in the belt frame, to be published `latency` seconds (uniform in [latency_min_s,
    latency_max_s]) after the snapshot's stamp. With no noise and no latency it is the per-tick
    oracle that policy training and evaluation use. `p_other` > 0 makes it a System 2 that confuses
    items: with that chance a plan names another item on the belt (chosen at random) instead of its
    own, which it keeps for the next plan; System 1's robustness to a planner that switches targets.
    FOR EVALUATION ONLY: it reads the simulator's ground truth."""

    def __init__(self, desc: CellDescription, pick_noise_m: float = 0.015, latency_min_s: float = 0.3,
                 latency_max_s: float = 0.5, seed: int = 0, pick_noise_z_m: float = 0.0,
                 p_other: float = 0.0):  # fmt: skip
        if not (0.0 <= latency_min_s <= latency_max_s):
            raise ValueError(f"latency range [{latency_min_s}, {latency_max_s}] is not valid")
        if not (pick_noise_m >= 0.0 and pick_noise_z_m >= 0.0):
            raise ValueError(f"pick noise must be >= 0, got {pick_noise_m!r}, {pick_noise_z_m!r}")
        if not 0.0 <= p_other <= 1.0:
            raise ValueError(f"p_other must be in [0, 1], got {p_other!r}")
        self.desc = desc
        self.p_other = float(p_other)
        self.noise = np.array([pick_noise_m, pick_noise_m, pick_noise_z_m], dtype=float)
        self.latency = (float(latency_min_s), float(latency_max_s))
        self.rng = np.random.default_rng(seed)
        self.target_id: str | None = None

    def reset(self) -> None:
        self.target_id = None

    def plan(self, stamp: float, items, belt_position: float) -> OraclePlan:
        on_belt = [it for it in items if it.on_belt and not it.grasped]
        tgt = next((it for it in on_belt if it.item_id == self.target_id), None)
        if tgt is None:
            tgt = select_target(on_belt, self.desc.arm)
        self.target_id = tgt.item_id if tgt is not None else None
        if self.p_other > 0.0 and tgt is not None:
            others = [it for it in on_belt if it.item_id != tgt.item_id]
            if others and self.rng.uniform() < self.p_other:
                tgt = others[int(self.rng.integers(len(others)))]  # this plan only: the target stays
        lo, hi = self.latency
        publish_at = stamp + (self.rng.uniform(lo, hi) if hi > 0 else 0.0)
        if tgt is None:
            z = np.zeros(3)
            return OraclePlan(stamp, publish_at, "", "", z, z, goal_latent(None, None, self.desc))
        p = np.asarray(tgt.pick_point, float).copy()
        if np.any(self.noise > 0):
            p += self.rng.normal(0.0, 1.0, 3) * self.noise
        latent = goal_latent(tgt.class_label, p, self.desc)  # world pick at image time, as the planner's
        p[0] -= belt_position  # world -> belt frame at the snapshot's time
        return OraclePlan(
            stamp, publish_at, tgt.class_label, tgt.bin_id, p, self.desc.place_point(tgt.bin_id), latent
        )
