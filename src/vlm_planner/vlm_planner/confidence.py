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

and, in a calibration whose "features" also list TEMPORAL_FEATURES, two features of the plan
before it (a wrong pick rarely repeats from one frame to the next; a right one does):

    prev_class  1 if the previous plan (same adapter, 0 < gap <= MAX_GAP_S) picked the same class
    prev_5cm    1 if, in addition, its pick point was within AGREE_CM on the belt (belt frame, so
                the belt's motion between the two images is taken out)

fitted to the event "this plan is right" (right class and within 5 cm of the right pick point).
The map is always in (0, 1). `t` is the smallest threshold at which at most 2 % of the held-out
calibration frames carry a wrong pick above it; the planner holds below it
(PlannerConfig.card_min_confidence). Calibration frames are 1 s apart, as the planner's plans.
"""

from __future__ import annotations

import math

import numpy as np

FEATURES = ("label", "u", "v", "eos")  # of the answer's own tokens
TEMPORAL_FEATURES = ("prev_class", "prev_5cm")  # agreement with the previous plan
LAYOUTS = (FEATURES, FEATURES + TEMPORAL_FEATURES)  # the feature lists a calibration may use
WINDOW_PX = 5
AGREE_CM = 5.0  # the "right plan" radius, also the agreement radius
MAX_GAP_S = 2.0  # a plan older than this (image stamps) is no previous plan (about 1 s at 1 Hz)


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


def features(
    tokens, step_logprobs, number_ids, eos_id: int, window: int = WINDOW_PX, windows=None
) -> np.ndarray:
    """tokens: generated ids; step_logprobs[j]: (V,) log-softmax at step j; number_ids: ids of
    0..N in value order (may be empty). Returns the 4 features (a missing one is 0). `windows`:
    number_windows() of the same answer, when the caller has it already (refined_numbers reads it
    too, so a plan reads the windows once)."""
    f = {"label": 0.0, "u": 0.0, "v": 0.0, "eos": 0.0}
    number_ids = np.asarray(number_ids, dtype=np.int64)
    for j, t in enumerate(tokens[: len(step_logprobs)]):
        if j == 0:
            f["label"] = float(step_logprobs[j][t])
        if t == eos_id:
            f["eos"] = float(step_logprobs[j][t])
            break
    if windows is None:
        windows = number_windows(tokens, step_logprobs, number_ids, eos_id, window)
    for name, (_, p) in zip(("u", "v"), windows, strict=False):
        f[name] = float(np.log(p.sum() + 1e-12))
    return np.array([f[k] for k in FEATURES], dtype=np.float64)


def number_windows(tokens, step_logprobs, number_ids, eos_id: int, window: int = WINDOW_PX):
    """For each generated number token (value order ids `number_ids`, before EOS): (the lowest
    value of the +-window around it, the probabilities of the window's values)."""
    value_of = {int(t): k for k, t in enumerate(np.asarray(number_ids).tolist())}
    out = []
    for j, t in enumerate(tokens[: len(step_logprobs)]):
        if t == eos_id:
            break
        if int(t) in value_of:
            val = value_of[int(t)]
            lo, hi = max(0, val - window), min(len(number_ids) - 1, val + window)
            lp = np.asarray(step_logprobs[j], dtype=np.float64)
            out.append((lo, np.exp(lp[number_ids[lo : hi + 1]])))
    return out


def refined_numbers(tokens, step_logprobs, number_ids, eos_id: int, window: int = WINDOW_PX, windows=None):
    """The first two generated numbers (u, v) as the expected value of the model's distribution
    over the number tokens within +-window of each greedy one, or None (fewer than two numbers, or
    numbers that are not single tokens). The greedy token is the mode of a distribution trained
    with a soft label over neighbouring numbers; its local mean is sub-token: measured on held-out
    daylight, the dense set's pick error p90 3.05 -> 2.8 cm (docs/sim_vlm.md). `windows`: as in
    features()."""
    w = windows if windows is not None else number_windows(tokens, step_logprobs, number_ids, eos_id, window)
    if len(w) < 2:
        return None
    vals = [float((p * np.arange(lo, lo + len(p))).sum() / max(p.sum(), 1e-300)) for lo, p in w[:2]]
    return (vals[0], vals[1]) if all(math.isfinite(v) for v in vals) else None


def agreement(pick, previous, max_gap_s: float) -> tuple[bool, float] | None:
    """(same class, distance on the belt in cm) between a pick and the previous plan's pick, each
    (label, belt-frame xy, adapter, image stamp); None when they are not comparable: no previous
    pick, another adapter, or the previous image is not 0 < age <= max_gap_s older (the same image
    twice confirms nothing)."""
    if previous is None:
        return None
    label, xy, adapter, stamp = pick
    p_label, p_xy, p_adapter, p_stamp = previous
    if p_adapter != adapter or not 0.0 < stamp - p_stamp <= max_gap_s:
        return None
    d = np.asarray(xy[:2], np.float64) - np.asarray(p_xy[:2], np.float64)
    return p_label == label, 100.0 * float(np.hypot(*d))


def temporal_features(pick, previous, max_gap_s: float = MAX_GAP_S) -> np.ndarray:
    """TEMPORAL_FEATURES of a pick (label, belt-frame xy, adapter, image stamp) given the previous
    plan's pick in the same form (None when the previous plan was no pick)."""
    a = agreement(pick, previous, max_gap_s)
    if a is None or not a[0]:
        return np.zeros(2)
    return np.array([1.0, float(a[1] <= AGREE_CM)])


def is_temporal(params: dict) -> bool:
    """Whether a (checked) calibration uses the previous plan (TEMPORAL_FEATURES)."""
    return len(params["features"]) == len(FEATURES) + len(TEMPORAL_FEATURES)


def apply(params: dict, feats) -> np.ndarray:
    """Calibrated probability for each row of `feats` (N, len(params["features"])) -> (N,),
    always in (0, 1)."""
    z = np.asarray(feats, dtype=np.float64) @ np.asarray(params["w"], dtype=np.float64) + float(params["b"])
    z = np.clip(z, -50.0, 50.0)
    return 1.0 / (1.0 + np.exp(-z))


def calibrated(params: dict, token_feats) -> float:
    """One plan's calibrated confidence from its token features (FEATURES) alone: a temporal
    calibration's previous-plan features at 0 (no agreement known yet). 0.0 if not finite."""
    f = np.asarray(token_feats, dtype=np.float64)
    f = np.r_[f, np.zeros(len(params["features"]) - len(f))]
    c = float(apply(params, f[None])[0])
    return c if math.isfinite(c) else 0.0


def with_temporal(params: dict, confidence: float, temporal) -> float:
    """`confidence` (from `calibrated`) with a temporal calibration's TEMPORAL_FEATURES added in
    logit space: the same sigmoid(w . f + b) as all features at once. Unchanged for a calibration
    without them or when no previous plan agrees; NaN stays NaN (refused by the gate)."""
    t = np.asarray(temporal, dtype=np.float64)
    if not is_temporal(params) or not np.any(t) or not math.isfinite(confidence):
        return confidence
    c = min(max(float(confidence), 1e-15), 1.0 - 1e-15)
    z = math.log(c / (1.0 - c)) + float(np.asarray(params["w"][len(FEATURES) :], np.float64) @ t)
    return 1.0 / (1.0 + math.exp(-min(max(z, -50.0), 50.0)))


def raw_confidence(token_logprobs) -> float:
    """The uncalibrated proxy: geometric mean of the chosen tokens' probabilities (0 if none)."""
    if not len(token_logprobs):
        return 0.0
    c = math.exp(sum(token_logprobs) / len(token_logprobs))
    return c if math.isfinite(c) else 0.0


def own_or(own, fallback: dict | None) -> dict | None:
    """An adapter's own calibration `own` (its manifest's metrics.confidence_calibration) when it
    is usable, else `fallback` (the card's)."""
    return own if own is not None and check_params(own) is None else fallback


def check_params(params) -> str | None:
    """Why a model card's calibration block is unusable (None when it is fine)."""
    if not isinstance(params, dict):
        return "not an object"
    feats = params.get("features")
    if params.get("type") != "logistic" or not any(feats == list(f) for f in LAYOUTS):
        return f"type/features {params.get('type')!r}/{feats!r}, expected logistic/one of {[list(f) for f in LAYOUTS]}"
    w = params.get("w")
    if not isinstance(w, list) or len(w) != len(feats) or not all(math.isfinite(float(x)) for x in w):
        return f"weights {w!r}"
    if not math.isfinite(float(params.get("b", math.nan))):
        return f"bias {params.get('b')!r}"
    return None
