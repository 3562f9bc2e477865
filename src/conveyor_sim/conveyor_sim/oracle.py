"""The oracle: ground truth -> the goal a perfect System 2 would publish. The one place that turns
the simulator's ground truth into a Goal's content, used by the scripted expert's driver, the
recorders and dataset builders, the policy's evaluation and training, and the oracle planner.

Which item: the one `select_target` picks (the most downstream item on the belt that is reachable
now and will still be reachable), kept until it is no longer on the belt or held, and only
switched while the arm is free to switch (`switch_allowed`). While an item is held it stays the
target (its place point is where to go), with no pick point. The goal latent for a target is
`goal_latent` (a one-hot of its class in the cell's class order, zero-padded to LATENT_DIM).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from conveyor_sim.expert import select_target
from s1s2.cell import CellDescription
from s1s2.topics import LATENT_DIM


def goal_latent(label: str | None, class_names: list[str]) -> np.ndarray:
    """The oracle's goal latent: one-hot of the target class, zero-padded to LATENT_DIM (zeros: no target)."""
    z = np.zeros(LATENT_DIM, dtype=np.float32)
    if label:
        z[class_names.index(label)] = 1.0
    return z


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
            return OracleGoal(None, None, None, None, np.zeros(3), None, False)
        return OracleGoal(
            item_id=tgt.item_id,
            label=tgt.class_label,
            bin_id=tgt.bin_id,
            pick_world=None if tgt.grasped else np.asarray(tgt.pick_point, float).copy(),
            velocity=np.asarray(tgt.velocity, float).copy(),
            place_world=self.desc.place_point(tgt.bin_id),
            held=bool(tgt.grasped),
            changed=chosen and tgt.item_id != previous,
            latent=goal_latent(tgt.class_label, self.desc.class_names),
        )

    def goal_for(self, sim, switch_allowed: bool = True) -> OracleGoal:
        """`update` from a CellSim's current state."""
        return self.update(sim.ground_truth(), sim.holding(), switch_allowed)
