"""Calibrated confidence: bounded, monotone, fitted honestly; unparsable output never becomes a goal."""

from __future__ import annotations

import numpy as np
import pytest

from vlm_planner import confidence as conf


def test_calibration_is_bounded_and_monotone():
    params = {"type": "logistic", "features": list(conf.FEATURES), "w": [2.0, 1.0, 1.5, 0.5], "b": 1.0}
    assert conf.check_params(params) is None
    x = np.linspace(-60, 0, 200)
    for k in range(4):
        f = np.zeros((len(x), 4))
        f[:, k] = x
        p = conf.apply(params, f)
        assert np.all((p > 0) & (p < 1)) or np.all((p >= 0) & (p <= 1))
        assert np.all(np.diff(p) >= 0)  # more probable tokens never lower the confidence
    assert np.all(np.isfinite(conf.apply(params, np.full((1, 4), -1e6))))


def test_fit_recovers_a_calibrated_monotone_map():
    from s1s2_training.vlm.calibrate import auroc, choose_threshold, ece, fit

    rng = np.random.default_rng(0)
    f = rng.normal(-1.0, 1.0, (4000, 4))
    true_p = 1 / (1 + np.exp(-(1.5 * f[:, 0] + 0.8 * f[:, 2] + 0.5)))
    right = rng.random(4000) < true_p
    params = fit(f, right)
    assert conf.check_params(params) is None
    p = conf.apply(params, f)
    assert params["w"][0] > 0 and params["w"][2] > 0
    assert ece(p, right) < 0.03 and auroc(p, right) > 0.75
    t = choose_threshold(p, right, len(right), 0.02)
    assert ((p >= t) & ~right).sum() / len(right) <= 0.02
    assert choose_threshold(p, np.zeros_like(right), len(right), 0.0) == 1.0 or np.all(p < 1.0)


def test_threshold_bounds_each_scene_type_not_only_their_mix():
    from s1s2_training.vlm.calibrate import choose_threshold

    # 100 default frames, 5 picks, none wrong; 20 dense frames, 5 picks, 2 wrong at 0.6 and 0.8.
    prob = np.array([0.5, 0.6, 0.7, 0.8, 0.9, 0.6, 0.7, 0.8, 0.85, 0.9])
    right = np.array([1, 1, 1, 1, 1, 0, 1, 0, 1, 1], bool)
    scene = np.array(["default"] * 5 + ["dense"] * 5)
    # over the mix of 120 frames, 2 wrong is 1.7 %: every pick passes at 2 %
    assert choose_threshold(prob, right, 120, 0.02) == 0.0
    # in the dense frames alone 2 wrong of 20 is 10 %: both must be cut off
    t = choose_threshold(prob, right, {"default": 100, "dense": 20}, 0.02, scene)
    assert t == 0.85
    assert not ((prob >= t) & ~right).any()
    # 1 wrong of 20 dense frames (5 %) is allowed at a 5 % bound: only the 0.6 one is cut
    assert choose_threshold(prob, right, {"default": 100, "dense": 20}, 0.05, scene) == 0.7


def test_threshold_at_a_confidence_bounds_the_rate_on_new_frames():
    import math

    from s1s2_training.vlm.calibrate import allowed_wrong, binom_cdf, choose_threshold, rate_holds

    # closed forms (float64): P(X = 0) = (1 - p)^n; P(X <= 1) = (1 - p)^n + n p (1 - p)^(n - 1)
    assert abs(binom_cdf(0, 10, 0.3) - 0.7**10) < 1e-12
    assert abs(binom_cdf(1, 669, 0.02) - (0.98**669 + 669 * 0.02 * 0.98**668)) < 1e-12
    assert (
        binom_cdf(0, 10, 0.0) == 1.0
        and binom_cdf(9, 10, 1.0) == 0.0
        and binom_cdf(700, 669, 0.02) > 1 - 1e-12
    )
    assert abs(binom_cdf(7, 600, 0.02) - 0.087) < 1e-3 and abs(binom_cdf(8, 600, 0.02) - 0.152) < 1e-3
    assert math.isclose(sum(math.comb(669, i) * 0.02**i * 0.98 ** (669 - i) for i in range(14)),
                        binom_cdf(13, 669, 0.02), rel_tol=1e-9)  # fmt: skip
    # 669 frames: 13 wrong is 1.94 %, within 2 % as a rate but not as a 90 % upper bound
    assert rate_holds(13, 669, 0.02) and not rate_holds(13, 669, 0.02, 0.9)
    assert rate_holds(8, 669, 0.02, 0.9) and not rate_holds(9, 669, 0.02, 0.9)
    assert allowed_wrong(669, 0.02, 0.9) == 8 and allowed_wrong(669, 0.02) == 13
    assert allowed_wrong(100, 0.02, 0.9) == -1 and allowed_wrong(0, 0.02) == 0  # too few frames for any
    # Coverage: over many fresh frame sets at a true rate of 2 %, the bound passes at most 10 %.
    rng = np.random.default_rng(0)
    passed = np.mean([rate_holds(int(w), 669, 0.02, 0.9) for w in rng.binomial(669, 0.02, 4000)])
    assert passed <= 0.10
    # 600 frames, 20 picks: wrong ones at 0.55..0.64; the bound cuts deeper than the rate
    prob = np.r_[np.linspace(0.55, 0.64, 10), np.linspace(0.7, 0.99, 10)]
    right = np.r_[np.zeros(10, bool), np.ones(10, bool)]
    t_rate = choose_threshold(prob, right, 600, 0.02)
    t_bound = choose_threshold(prob, right, 600, 0.02, confidence=0.9)
    assert t_rate == 0.0  # 10 of 600 is 1.7 %
    # at most 7 wrong of 600 keeps the 90 % upper bound within 2 % (P(X <= 7) = 0.087; 8: 0.152)
    assert t_bound == prob[3] and ((prob >= t_bound) & ~right).sum() == 7


def test_features_read_the_window_mass_of_the_numbers():
    v = 1000
    nums = np.arange(10, 10 + v)
    eos = 5
    lp0 = np.full(2000, -50.0)
    lp0[7] = np.log(0.9)
    lp_u = np.full(2000, -50.0)
    lp_u[nums[100:103]] = np.log([0.3, 0.4, 0.3])  # mass spread over 100..102 (inside +-5 of 101)
    lp_v = np.full(2000, -50.0)
    lp_v[nums[50]] = np.log(0.5)
    lp_e = np.full(2000, -50.0)
    lp_e[eos] = np.log(0.99)
    f = conf.features([7, nums[101], 3, nums[50], eos], [lp0, lp_u, lp_e, lp_v, lp_e], nums, eos)
    np.testing.assert_allclose(f, [np.log(0.9), 0.0, np.log(0.5), np.log(0.99)], atol=1e-6)
    assert np.all(conf.features([], [], nums, eos) == 0)


def test_refined_numbers_are_the_local_mean_around_each_greedy_number():
    nums = np.arange(10, 1010)
    eos = 5
    lp_label = np.full(2000, -50.0)
    lp_label[7] = 0.0
    lp_u = np.full(2000, -50.0)
    lp_u[nums[100:103]] = np.log([0.2, 0.5, 0.3])  # greedy 101, mean 101.1
    lp_u[nums[140]] = np.log(0.4)  # far outside +-5: another mode, not this number's spread
    lp_v = np.full(2000, -50.0)
    lp_v[nums[[50, 51]]] = np.log([0.6, 0.4])  # greedy 50, mean 50.4
    lp_e = np.full(2000, -50.0)
    lp_e[eos] = 0.0
    toks, steps = [7, nums[101], 3, nums[50], eos], [lp_label, lp_u, lp_e, lp_v, lp_e]
    u, v = conf.refined_numbers(toks, steps, nums, eos)
    assert abs(u - 101.1) < 1e-6 and abs(v - 50.4) < 1e-6
    # fewer than two numbers before EOS, or numbers that are not single tokens: nothing to refine
    assert (
        conf.refined_numbers([7, nums[101], eos, nums[50]], [lp_label, lp_u, lp_e, lp_v], nums, eos) is None
    )
    assert conf.refined_numbers(toks, steps, np.zeros(0, np.int64), eos) is None
    # one read of the windows serves both the features and the refinement, with the same results
    win = conf.number_windows(toks, steps, nums, eos, conf.WINDOW_PX)
    assert [lo for lo, _ in win] == [96, 45]
    assert conf.refined_numbers(toks, steps, nums, eos, windows=win) == (u, v)
    np.testing.assert_array_equal(
        conf.features(toks, steps, nums, eos, windows=win), conf.features(toks, steps, nums, eos)
    )


def test_temporal_features_are_agreement_with_the_previous_plan_on_the_belt():
    pick = ("paper", np.array([-0.50, 0.05]), "", 10.0)
    same = ("paper", np.array([-0.53, 0.05]), "", 9.0)  # 3 cm away on the belt, 1 s earlier
    assert conf.temporal_features(pick, same).tolist() == [1.0, 1.0]
    assert conf.temporal_features(pick, ("paper", np.array([-0.60, 0.05]), "", 9.0)).tolist() == [1.0, 0.0]
    for other in (
        None,
        ("cardboard", same[1], "", 9.0),  # another class
        ("paper", same[1], "night_noise", 9.0),  # made with another adapter
        ("paper", same[1], "", 10.0 - conf.MAX_GAP_S - 0.1),  # too old
        ("paper", same[1], "", 10.5),  # newer than the plan (another episode's clock)
        ("paper", same[1], "", 10.0),  # the same image planned twice confirms nothing
    ):
        assert conf.temporal_features(pick, other).tolist() == [0.0, 0.0]


def test_temporal_calibration_adds_agreement_in_logit_space():
    """with_temporal(calibrated(token features), temporal) = sigmoid(w . all features + b): the
    planner's two steps give the fitted map; a token-only calibration ignores agreement."""
    params = {
        "type": "logistic",
        "features": list(conf.LAYOUTS[1]),
        "w": [2.0, 1.0, 1.5, 0.5, -0.5, 2.0],
        "b": 1.0,
    }
    assert conf.check_params(params) is None and conf.is_temporal(params)
    rng = np.random.default_rng(1)
    for _ in range(20):
        f, t = rng.normal(-1.0, 0.5, 4), rng.integers(0, 2, 2).astype(float)
        want = conf.apply(params, np.r_[f, t][None])[0]
        assert conf.with_temporal(params, conf.calibrated(params, f), t) == pytest.approx(want, rel=1e-9)
    base = conf.calibrated(params, np.full(4, -1.0))
    assert conf.with_temporal(params, base, [1.0, 1.0]) > base  # agreeing plans: more confident
    assert np.isnan(conf.with_temporal(params, float("nan"), [1.0, 1.0]))  # still refused by the gate
    token_only = {**params, "features": list(conf.FEATURES), "w": params["w"][:4]}
    assert not conf.is_temporal(token_only)
    assert conf.with_temporal(token_only, 0.3, [1.0, 1.0]) == 0.3


def test_unusable_calibration_is_reported():
    assert "weights" in conf.check_params(
        {"type": "logistic", "features": list(conf.FEATURES), "w": [1.0], "b": 0}
    )
    assert conf.check_params(None) == "not an object"


@pytest.mark.parametrize(
    "text",
    ["", "label=", "label=banana u=10 v=10", "label=pet_bottle u=10", "label=pet_bottle u=nan v=3",
     "label=pet_bottle u=1e9 v=3", "u=10 v=10", "\x00\x01", "label=none"],
)  # fmt: skip
def test_unparsable_or_hold_output_never_becomes_a_goal(monkeypatch, text):
    from vlm_planner.config import PlannerConfig
    from vlm_planner.geometry import CameraModel

    planner = _planner()
    real = planner._infer

    def fake(img, prompt):
        inf = real(img, prompt)
        inf.text, inf.confidence = text, 1.0  # even at full confidence
        return inf

    monkeypatch.setattr(planner, "_infer", fake)
    img = np.zeros((240, 320, 3), np.uint8)
    r = planner.plan(img, "sort the recyclables", 0.0, 0.0, CameraModel.from_cell())
    assert not r.has_target and r.target_world is None and r.confidence == 0.0 and r.reason
    del PlannerConfig


def test_below_min_confidence_or_nan_is_a_hold(monkeypatch):
    from vlm_planner.geometry import CameraModel

    planner = _planner()
    real = planner._infer
    value = [float("nan")]

    def fake(img, prompt):
        inf = real(img, prompt)
        inf.text, inf.confidence = "label=pet_bottle u=160 v=60", value[0]
        return inf

    monkeypatch.setattr(planner, "_infer", fake)
    img = np.zeros((240, 320, 3), np.uint8)
    cam = CameraModel.from_cell()
    assert not planner.plan(img, "x", 0.0, 0.0, cam).has_target
    value[0] = max(planner.min_confidence - 1e-3, 0.0)
    if planner.min_confidence > 0:
        r = planner.plan(img, "x", 0.0, 0.0, cam)
        assert not r.has_target and "min_confidence" in r.reason
    value[0] = 1.0
    assert planner.plan(img, "x", 0.0, 0.0, cam).has_target


_PLANNER = {}


def _planner():
    from vlm_planner.config import PlannerConfig
    from vlm_planner.planner import Planner

    if "p" not in _PLANNER:
        _PLANNER["p"] = Planner(PlannerConfig(adapter_library=""))
    return _PLANNER["p"]


def test_a_pick_the_previous_plan_agrees_with_is_more_confident(monkeypatch):
    """The shipped card's calibration is token-only (it serves the base in any light); the daylight
    context's, in the daylight starter adapter, is temporal: the same answer twice, 1 s apart, the
    second time names the same item on the belt, and only then clears the gate."""
    from vlm_planner.config import PlannerConfig
    from vlm_planner.geometry import CameraModel
    from vlm_planner.planner import Planner

    # the shipped adapter library; gate_keeps_goal off: a plan under the gate is a hold here,
    # not the previous pick sent again (that rule: test_planner_model.py)
    planner = Planner(PlannerConfig(gate_keeps_goal=False))
    assert planner.calibration and not conf.is_temporal(planner.calibration)
    assert planner.swap_adapter("daylight").success
    assert conf.is_temporal(planner.calibration_for("daylight"))
    assert planner.info()["active_calibration"] == "adapter's own"
    gate = planner.threshold_for("daylight")
    real = planner._infer
    text = ["label=pet_bottle u=160 v=60"]

    def fake(img, prompt):
        inf = real(img, prompt)
        inf.text, inf.confidence = text[0], gate - 0.05
        return inf

    monkeypatch.setattr(planner, "_infer", fake)
    img, cam = np.zeros((240, 320, 3), np.uint8), CameraModel.from_cell()
    planner._last_pick = None
    first = planner.plan(img, "x", 100.0, 0.0, cam)
    assert not first.has_target and "min_confidence" in first.reason
    # 1 s later the belt moved 0.1 m; the same pixel is 0.1 m elsewhere on the belt: no agreement
    assert not planner.plan(img, "x", 101.0, 0.1, cam).has_target
    second = planner.plan(img, "x", 102.0, 0.1, cam)  # the same point on the belt as 1 s before
    assert second.has_target and second.confidence > gate
    text[0] = "label=paper u=160 v=60"  # another class at the same point: no agreement
    assert not planner.plan(img, "x", 103.0, 0.1, cam).has_target


def _temporal_calibration(**kw) -> dict:
    """A calibration block of the token + previous-plan layout with the given fields."""
    return {"type": "logistic", "features": list(conf.LAYOUTS[1]), **kw}


def _library(tmp_path, metrics: dict):
    """A library of copies of the shipped night_noise adapter, one per name, whose manifest carries
    only the given threshold / calibration metrics (`metrics[name]`)."""
    import json
    import shutil

    from s1s2 import resolve_path

    lib = tmp_path / "adapters"
    for name, extra in metrics.items():
        shutil.copytree(resolve_path("models/adapters/night_noise"), lib / name)
        path = lib / name / "s1s2_adapter.json"
        m = json.loads(path.read_text())
        m["adapter_id"] = name
        for key in ("min_confidence", "confidence_calibration"):
            m["metrics"].pop(key, None)
        m["metrics"].update(extra)
        path.write_text(json.dumps(m))
    return lib


def test_an_adapter_with_its_own_threshold_uses_it(monkeypatch, tmp_path):
    """The card's min_confidence was fitted on the base in daylight; an adapter whose manifest
    carries its own (s1s2 nightly: calibrated on its held-out frames) is gated by that one."""

    from vlm_planner.config import PlannerConfig
    from vlm_planner.geometry import CameraModel
    from vlm_planner.planner import Planner

    lib = _library(tmp_path, {"night_noise": {"min_confidence": 0.3}, "plain": {}})
    # the card's gate and the adapters' own thresholds (the defaults, pinned here)
    planner = Planner(PlannerConfig(adapter_library=str(lib), card_min_confidence=True, confirm_pick_cm=0.0))
    assert planner.min_confidence > 0.5  # the card's
    real = planner._infer

    def fake(img, prompt):
        inf = real(img, prompt)
        inf.text, inf.confidence = "label=pet_bottle u=160 v=60", 0.5
        return inf

    monkeypatch.setattr(planner, "_infer", fake)
    img, cam = np.zeros((240, 320, 3), np.uint8), CameraModel.from_cell()
    assert not planner.plan(img, "x", 0.0, 0.0, cam).has_target  # base: the card's threshold
    assert planner.swap_adapter("night_noise").success
    assert planner.threshold_for("night_noise") == 0.3 and planner.info()["active_min_confidence"] == 0.3
    assert planner.plan(img, "x", 0.0, 0.0, cam).has_target  # 0.5 >= the adapter's 0.3
    assert planner.swap_adapter("plain").success  # no threshold of its own: the card's
    assert planner.threshold_for("plain") == planner.min_confidence
    assert not planner.plan(img, "x", 0.0, 0.0, cam).has_target


def test_an_adapter_with_its_own_calibration_is_scored_by_it(tmp_path):
    """An adapter calibrated on its own domain's frames (manifest metrics.confidence_calibration)
    scores its plans with those weights; an unusable one falls back to the card's."""

    from vlm_planner.config import PlannerConfig
    from vlm_planner.planner import Planner

    own = _temporal_calibration(w=[0.0] * 6, b=3.0, min_confidence=0.9)
    lib = _library(
        tmp_path,
        {
            "own": {"confidence_calibration": own},
            "broken": {"confidence_calibration": {**own, "w": [1.0]}},
            "none": {},
        },
    )
    planner = Planner(PlannerConfig(adapter_library=str(lib)))
    assert planner.calibration_for("own") == own
    assert planner.calibration_for("broken") is planner.calibration  # falls back to the card's
    assert planner.calibration_for("none") is planner.calibration
    assert planner.calibration_for("") is planner.calibration
    assert planner.swap_adapter("own").success
    inf = planner._infer(np.zeros((240, 320, 3), np.uint8), planner.build_prompt("x", 320, 240))
    assert inf.confidence == pytest.approx(1 / (1 + np.exp(-3.0)))  # the adapter's weights: sigmoid(b)
    assert planner.info()["active_calibration"] == "adapter's own"


def test_setting_an_adapters_calibration_keeps_it_verifiable(tmp_path):
    import shutil

    from s1s2 import resolve_path
    from s1s2.adapters import base_fingerprint, read_manifest, verify_adapter
    from s1s2_training.vlm.calibrate import set_adapter_calibration

    d = tmp_path / "night_noise"
    shutil.copytree(resolve_path("models/adapters/night_noise"), d)
    own = _temporal_calibration(w=[1.0] * 6, b=0.0, min_confidence=0.42)
    set_adapter_calibration(d, own, 0.42, {"max_rate": 0.02, "frames": 10})
    m = read_manifest(d)
    assert m.metrics["min_confidence"] == 0.42 and m.metrics["confidence_threshold"]["frames"] == 10
    assert m.metrics["confidence_calibration"] == own
    verify_adapter(d, base_fingerprint(resolve_path("models/sim_vlm")))  # hashes and fields still check out
    set_adapter_calibration(d, None, 0.5, {"max_rate": 0.02, "frames": 10})  # back to the card's
    assert "confidence_calibration" not in read_manifest(d).metrics


def test_manifest_fields_register_a_verifiable_adapter(tmp_path):
    """The fields finetune and nightly both build (finetune.manifest_fields) make a manifest the
    library accepts: registered with add_adapter, verified against the base."""
    import json

    from s1s2 import resolve_path
    from s1s2.adapters import add_adapter, base_fingerprint, verify_adapter
    from s1s2_training.vlm.finetune import FinetuneConfig, manifest_fields

    src = resolve_path("models/adapters/night_noise")
    targets = json.loads((src / "s1s2_adapter.json").read_text())["target_modules"]
    cfg = FinetuneConfig(strategy="projector+vision", rank=8, alpha=16)
    base = resolve_path("models/sim_vlm")
    fields = manifest_fields(cfg, base, {"targets": targets}, "night2", base_model="sim_vlm",
                             data={"frames": 1}, metrics={"min_confidence": 0.5}, notes="test")  # fmt: skip
    m = add_adapter(tmp_path / "lib", src, "night2", expected_base=fields["base_fingerprint"], **fields)
    assert m.context_tags == ["lighting:night2"] and m.trained and m.metrics["min_confidence"] == 0.5
    verify_adapter(tmp_path / "lib" / "night2", base_fingerprint(base))


def test_evaluate_scores_an_adapter_before_its_manifest_is_written(tmp_path):
    """The finetune and s1s2 nightly calibrate a new adapter before they write its manifest: the
    evaluation then uses the card's calibration (and an adapter's own one once it has it)."""
    import shutil

    from s1s2 import resolve_path
    from s1s2.adapters import MANIFEST
    from s1s2_training.vlm.evaluate import evaluate

    d = tmp_path / "new"
    shutil.copytree(resolve_path("models/adapters/night_noise"), d)
    (d / MANIFEST).unlink()
    n = 3
    data = {
        "pixels": np.zeros((n, 128, 128, 3), np.uint8),
        "label": np.full(n, -1),
        "uv": np.zeros((n, 2), np.float32),
        "pick": np.zeros((n, 3), np.float32),
        "n_candidates": np.zeros(n, np.int64),
        "seed": np.zeros(n, np.int64),
        "time": np.arange(n, dtype=np.float64),
        "belt_position": np.zeros(n),
    }
    r = evaluate(resolve_path("models/sim_vlm"), data, "nf4", d, min_confidence=0.0)
    assert r["frames"] == n and r["_temporal"].shape == (n, 2)


def test_fit_on_fits_every_layout_and_the_card_keeps_the_token_features(monkeypatch):
    """fit_on returns the better layout and every layout it fitted: agreement with the previous
    plan that separates right from wrong picks wins, yet the card's layout (CARD_LAYOUTS) stays the
    token features alone, because the card also serves the base in shifted light, where a
    model's wrong picks repeat from plan to plan."""
    from s1s2_training.vlm import calibrate as cal_mod
    from s1s2_training.vlm import evaluate as ev_mod

    rng = np.random.default_rng(3)
    n = 600
    right = rng.random(n) < 0.7
    feats = rng.normal(-1.0, 1.0, (n, 4)) + 0.3 * right[:, None]  # the tokens barely separate
    temporal = np.stack([right | (rng.random(n) < 0.1)] * 2, 1).astype(float)  # agreement does
    res = {"_picked": np.ones(n, bool), "_good": right, "_raw": feats[:, 0], "_features": feats,
           "_temporal": temporal}  # fmt: skip
    monkeypatch.setattr(ev_mod, "evaluate", lambda *a, **k: res)
    out = cal_mod.fit_on("unused", {"label": np.zeros(n)})
    keys = [cal_mod.layout_key(x) for x in conf.LAYOUTS]
    assert set(out["fitted"]) == set(keys) and out["params"] is out["fitted"][keys[1]]["params"]
    assert out["metrics"]["by_layout"] == out["fitted"][keys[0]]["metrics"]["by_layout"]
    card = out["fitted"][cal_mod.layout_key(cal_mod.CARD_LAYOUTS[0])]["params"]
    assert card["features"] == list(conf.FEATURES) and not conf.is_temporal(card)
    assert conf.is_temporal(out["params"])
    keep = {k: out["fitted"][k]["metrics"]["right_picks_kept"] for k in keys}
    assert keep[keys[1]] > keep[keys[0]]
    own, t, info = cal_mod.own_calibration(out)
    assert own is out["params"] and t == own["min_confidence"] and info["frames"] == n
    assert info["confident_wrong_per_frame"] <= cal_mod.MAX_RATE


def test_calibrate_refuses_a_bound_confidence_outside_0_1(capsys):
    import pytest

    from s1s2_training.vlm.calibrate import main

    with pytest.raises(SystemExit) as e:
        main(["--bound-confidence", "1.5"])
    assert e.value.code == 2 and "--bound-confidence 1.5" in capsys.readouterr().err
