"""Fit the planner's confidence calibration on held-out frames (the runtime side is
vlm_planner.confidence: features of the greedy answer's token probabilities, sigmoid(w.f + b)).

    cal = fit_on(model_dir, frames)     # {"params": {... "min_confidence": t}, "metrics": {...}}

The event fitted is "this plan is right": a target with the right class within 5 cm of the right
pick point (a target on a frame that should be a hold is wrong). Logistic regression (Newton, small
L2) over the answers that are picks; min_confidence = the smallest threshold at which at most
`max_rate` (1 %, half the issue's 2 % target as a margin) of the calibration FRAMES carry a
confident wrong pick (wrong class, > 5 cm off, or a pick where nothing should be picked).
"""

from __future__ import annotations

import numpy as np

from vlm_planner import confidence as conf_mod


def fit(feats: np.ndarray, right: np.ndarray, l2: float = 1e-2, iters: int = 100) -> dict:
    """Logistic regression of right (0/1) on feats; returns the model card's calibration block."""
    x = np.concatenate([np.asarray(feats, dtype=np.float64), np.ones((len(feats), 1))], 1)
    y = np.asarray(right, dtype=np.float64)
    w = np.zeros(x.shape[1])
    reg = l2 * np.r_[np.ones(x.shape[1] - 1), 0.0]
    for _ in range(iters):
        p = 1 / (1 + np.exp(-np.clip(x @ w, -50, 50)))
        g = x.T @ (p - y) + reg * w
        h = (x * (p * (1 - p))[:, None]).T @ x + np.diag(reg) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(h, g)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return {
        "type": "logistic",
        "features": list(conf_mod.FEATURES),
        "window_px": conf_mod.WINDOW_PX,
        "w": [float(v) for v in w[:-1]],
        "b": float(w[-1]),
    }


def ece(prob: np.ndarray, right: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over equal-width bins."""
    edges = np.linspace(0, 1, bins + 1)
    e = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        m = (prob >= lo) & ((prob < hi) if hi < 1 else (prob <= hi))
        if m.any():
            e += m.mean() * abs(prob[m].mean() - right[m].mean())
    return float(e)


def auroc(score: np.ndarray, right: np.ndarray) -> float:
    right = np.asarray(right, dtype=bool)
    pos, neg = score[right], score[~right]
    if not len(pos) or not len(neg):
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="stable")
    ranks = np.empty(len(order))
    ranks[order] = np.arange(1, len(order) + 1)
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def choose_threshold(prob: np.ndarray, right: np.ndarray, frames: int, max_rate: float = 0.01) -> float:
    """Smallest t with (picks >= t that are wrong) / frames <= max_rate (prob, right: per pick)."""
    for t in np.unique(np.r_[0.0, prob]):
        if ((prob >= t) & ~right).sum() / max(1, frames) <= max_rate:
            return float(t)
    return 1.0


def fit_on(model_dir, data: dict, max_rate: float = 0.01, quant: str = "nf4") -> dict:
    """Fit on `data` (held-out frames) with the model as the planner loads it; returns params
    (incl. min_confidence) and metrics (AUROC / ECE of calibrated vs raw, rates at the threshold)."""
    from .evaluate import evaluate

    res = evaluate(model_dir, data, quant, min_confidence=0.0)
    picked, right, feats, raw = res["_picked"], res["_good"], res["_features"], res["_raw"]
    if picked.sum() < 4 or right[picked].all() or not right[picked].any():
        # Nothing to fit (an untrained model picks nothing): no calibration, the planner keeps the raw proxy.
        why = f"cannot calibrate: {int(picked.sum())} picks, {int(right[picked].sum())} right"
        return {"params": None, "metrics": {"frames": int(len(right)), "error": why}}
    params = fit(feats[picked], right[picked])
    prob = conf_mod.apply(params, feats[picked])
    thr = choose_threshold(prob, right[picked], len(right), max_rate)
    params["min_confidence"] = round(thr, 4)
    act = prob >= thr
    metrics = {
        "frames": int(len(right)),
        "picks": int(picked.sum()),
        "pick_accuracy": float(right[picked].mean()),
        "auroc_calibrated": auroc(prob, right[picked]),
        "auroc_raw": auroc(raw[picked], right[picked]),
        "ece_calibrated": ece(prob, right[picked]),
        "ece_raw": ece(raw[picked], right[picked]),
        "min_confidence": params["min_confidence"],
        "acted_picks": int(act.sum()),
        "wrong_per_acted_pick": float((act & ~right[picked]).sum() / max(1, act.sum())),
        "confident_wrong_per_frame": float((act & ~right[picked]).sum() / max(1, len(right))),
        "right_picks_kept": float((act & right[picked]).sum() / max(1, right[picked].sum())),
    }
    return {"params": params, "metrics": metrics}
