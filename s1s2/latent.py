"""The goal latent's trained layout, defined once: the sim VLM's projection is trained to it
(s1s2_training.vlm), the oracle publishes it for the ground truth (conveyor_sim.oracle), and a
System 1 policy of spec v3 reads it (fast_policy.spec). Pure numpy.

z before normalisation (the published latent is z / ||z||):
    dims 0..6   one-hot of the target class (cell description class_names order)
    dim  7      1 = nothing to pick (hold)
    dims 8..12  one-hot of the destination bin (cell description bin_ids order)
    dims 13,14  target pick point in world at image time: x / 1 m, y / 0.2 m (0 for a hold, or
                while the target is on the suction cup)
    dims 15..31 0 (reserved)
"""

from __future__ import annotations

import numpy as np

from s1s2.topics import LATENT_DIM

HOLD_DIM = 7
BIN0 = 8
XY_DIMS = (13, 14)
XY_SCALE = (1.0, 0.2)
LAYOUT = (
    "z ~= [class one-hot (7, class_names order), hold (1), bin one-hot (5, bin_ids order), "
    "pick x/1m, pick y/0.2m (world, image time), 0 x 17]; latent = z/||z||"
)


def _cell(cell=None):
    if cell is None:
        from s1s2.cell import DEFAULT_CELL

        cell = DEFAULT_CELL
    return cell


def latent_target(label: int, pick, cell=None) -> np.ndarray:
    """z the trained projection is fitted to: label = class index (-1 = hold), pick = world point
    (None: no pick point, e.g. the target is already held; xy stay 0)."""
    cell = _cell(cell)
    z = np.zeros(LATENT_DIM, np.float32)
    if label < 0:
        z[HOLD_DIM] = 1.0
        return z
    names = cell.class_names
    z[label] = 1.0
    z[BIN0 + list(cell.bin_ids).index(cell.item_class(names[label]).bin_id)] = 1.0
    if pick is not None:
        z[XY_DIMS[0]] = float(pick[0]) / XY_SCALE[0]
        z[XY_DIMS[1]] = float(pick[1]) / XY_SCALE[1]
    return z


def goal_latent(label: str | None, pick, cell=None) -> np.ndarray:
    """The published latent (unit norm) of a goal: class name (None or "": hold) and world pick
    point. What a perfectly trained planner publishes; the oracle's latent."""
    cell = _cell(cell)
    z = latent_target(cell.class_names.index(label) if label else -1, pick, cell)
    return z / np.linalg.norm(z)


def decode_latent(latent, cell=None) -> dict:
    """{"label": class or "" (hold), "bin": bin id or "", "xy": world (x, y) or None} of a latent
    published by a model with a trained projection (meaningless for a random one)."""
    cell = _cell(cell)
    z = np.asarray(latent, dtype=np.float64)
    k = int(np.argmax(z[: HOLD_DIM + 1]))
    if k == HOLD_DIM or z[k] <= 0:
        return {"label": "", "bin": "", "xy": None}
    scale = z[k]  # the class dim is 1 before normalisation
    bins = list(cell.bin_ids)
    return {
        "label": cell.class_names[k],
        "bin": bins[int(np.argmax(z[BIN0 : BIN0 + len(bins)]))],
        "xy": np.array([z[XY_DIMS[0]] / scale * XY_SCALE[0], z[XY_DIMS[1]] / scale * XY_SCALE[1]]),
    }
