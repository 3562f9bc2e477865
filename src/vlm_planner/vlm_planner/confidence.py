"""Calibrated plan confidence from the answer's token probabilities.

The raw proxy (a hub model without calibration keeps it): exp(mean log p) of the generated tokens
up to EOS. A model trained by the project carries, in its model card `s1s2_vlm.json`,
"confidence_calibration" = {"type": "logistic", "features": [...], "window_px": W, "w": [...],
"b": b, "min_confidence": t}, fitted on held-out frames by s1s2_training.vlm.calibrate. Then

    confidence = sigmoid(w . features + b)          (Platt / logistic regression)

with the features of one greedy answer (log-probabilities of the model's own softmax):

    label   log p(first answer token)          (" label=<class> u=" or " label=none")
    u, v    log of the probability mass on number tokens within +-W px of the generated number
            (W = 5 px, about 3.6 cm on the belt): "is the point right to within W"
    eos     log p(EOS)

fitted to the event "this plan is right" (right class and within 5 cm of the right pick point).
The map is monotone in every feature with a positive weight and always in (0, 1). `t` is the
smallest threshold at which at most 2 % of the acted-on held-out picks were wrong; the planner
holds below it (PlannerConfig.card_min_confidence).
"""

from __future__ import annotations

import math

import numpy as np

FEATURES = ("label", "u", "v", "eos")
WINDOW_PX = 5


def number_token_ids(tokenizer, max_number: int = 999) -> np.ndarray:
    """Ids of the tokens "0".."max_number" in value order, or an empty array when some integer is
    not one token (then the window features fall back to the token's own log-prob)."""
    out = []
    for n in range(max_number + 1):
        ids = tokenizer(str(n), add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            return np.zeros(0, dtype=np.int64)
        out.append(ids[0])
    return np.asarray(out, dtype=np.int64)


def features(tokens, step_logprobs, number_ids, eos_id: int, window: int = WINDOW_PX) -> np.ndarray:
    """tokens: generated ids; step_logprobs[j]: (V,) log-softmax at step j; number_ids: ids of
    0..N in value order (may be empty). Returns the 4 features (a missing one is 0)."""
    f = {"label": 0.0, "u": 0.0, "v": 0.0, "eos": 0.0}
    number_ids = np.asarray(number_ids, dtype=np.int64)
    value_of = {int(t): k for k, t in enumerate(number_ids.tolist())}
    nums = []
    for j, t in enumerate(tokens):
        if j >= len(step_logprobs):
            break
        lp = step_logprobs[j]
        if j == 0:
            f["label"] = float(lp[t])
        if t == eos_id:
            f["eos"] = float(lp[t])
            break
        if int(t) in value_of:
            nums.append((j, int(t)))
    for name, (j, t) in zip(("u", "v"), nums[:2], strict=False):
        lp = np.asarray(step_logprobs[j], dtype=np.float64)
        val = value_of[t]
        lo, hi = max(0, val - window), min(len(number_ids) - 1, val + window)
        f[name] = float(np.log(np.exp(lp[number_ids[lo : hi + 1]]).sum() + 1e-12))
    return np.array([f[k] for k in FEATURES], dtype=np.float64)


def apply(params: dict, feats) -> np.ndarray:
    """Calibrated probability for each row of `feats` (N, 4) -> (N,), always in (0, 1)."""
    z = np.asarray(feats, dtype=np.float64) @ np.asarray(params["w"], dtype=np.float64) + float(params["b"])
    z = np.clip(z, -50.0, 50.0)
    return 1.0 / (1.0 + np.exp(-z))


def raw_confidence(token_logprobs) -> float:
    """The uncalibrated proxy: geometric mean of the chosen tokens' probabilities (0 if none)."""
    if not len(token_logprobs):
        return 0.0
    c = math.exp(sum(token_logprobs) / len(token_logprobs))
    return c if math.isfinite(c) else 0.0


def check_params(params) -> str | None:
    """Why a model card's calibration block is unusable (None when it is fine)."""
    if not isinstance(params, dict):
        return "not an object"
    if params.get("type") != "logistic" or list(params.get("features", [])) != list(FEATURES):
        return f"type/features {params.get('type')!r}/{params.get('features')!r}, expected logistic/{list(FEATURES)}"
    w = params.get("w")
    if not isinstance(w, list) or len(w) != len(FEATURES) or not all(math.isfinite(float(x)) for x in w):
        return f"weights {w!r}"
    if not math.isfinite(float(params.get("b", math.nan))):
        return f"bias {params.get('b')!r}"
    return None
