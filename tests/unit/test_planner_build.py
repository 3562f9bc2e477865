"""The builder recreates the sim VLM (tiny recipe here) and a verifiable starter adapter library
for the new base, from scratch, offline."""

import json

import pytest


def _fitted_both_layouts(*_a, layouts=None, by_scene=False, **_k) -> dict:
    """What calibrate.fit_on returns for a model it can calibrate (the tiny build's model is too
    weak to): the feature layouts asked for fitted (both by default), the one with the previous
    plan's agreement better; a per-scene threshold reports its rate per scene type."""
    import numpy as np

    from s1s2_training.vlm.calibrate import fit, layout_key
    from vlm_planner.confidence import LAYOUTS

    rng = np.random.default_rng(0)
    right = rng.random(200) < 0.7
    fitted = {}
    for layout in layouts or LAYOUTS:
        p = {**fit(rng.normal(0, 1, (200, len(layout))), right, features=layout), "min_confidence": 0.8}
        m = {"frames": 200, "acted_picks": 50, "wrong_per_acted_pick": 0.04, "confident_wrong_per_frame": 0.01,
             "auroc_calibrated": 0.8, "right_picks_kept": 0.5 + 0.1 * len(fitted), "by_layout": {}}  # fmt: skip
        if by_scene:
            m["confident_wrong_per_frame_by_scene"] = {"default": 0.01, "dense": 0.01}
        fitted[layout_key(layout)] = {"params": p, "metrics": m}
    best = list(fitted.values())[-1]
    return {"params": best["params"], "metrics": best["metrics"], "fitted": fitted}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from test_planner_simvlm import tiny_recipe

    from s1s2_training.vlm import calibrate
    from s1s2_training.vlm.build import build

    root = tmp_path_factory.mktemp("models")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(calibrate, "fit_on", _fitted_both_layouts)
        record = build(root / "sim_vlm", seed=0, recipe=tiny_recipe(), work_dir=root / "data")
    return root, record


def test_the_card_keeps_token_features_and_the_daylight_starter_the_better_layout(built):
    """The card serves the base in any light, so it never trusts the previous plan's agreement;
    the daylight context's own calibration (in the B = 0 starter's manifest) may."""
    from s1s2.adapters import read_manifest
    from vlm_planner.confidence import FEATURES, is_temporal

    root, record = built
    card = json.loads((root / "sim_vlm" / "s1s2_vlm.json").read_text())["confidence_calibration"]
    assert card["features"] == list(FEATURES) and not is_temporal(card)
    assert record["metrics"]["calibration"]["right_picks_kept"] == 0.5
    # the card's threshold holds in each scene type; a context's over its calibration mix
    assert "confident_wrong_per_frame_by_scene" in record["metrics"]["calibration"]
    day = read_manifest(root / "adapters" / "daylight").metrics
    assert is_temporal(day["confidence_calibration"]) and day["min_confidence"] == 0.8
    assert "by_scene" not in day["confidence_threshold"]
    assert "daylight" in day["confidence_threshold"]["data"]
    assert "confidence_calibration" not in read_manifest(root / "adapters" / "night_noise").metrics


def test_manifest_record_is_honest(built):
    root, record = built
    assert record["trained"] is True and record["metrics"]["adapters_trained"] is False
    assert "B = 0 starters" in record["notes"]
    assert {"name", "path", "command", "data", "seed", "trained", "notes", "metrics"} <= set(record)
    m = record["metrics"]
    assert m["footprint_nf4_bytes"] < m["footprint_fp32_bytes"]
    assert m["model_dir_bytes"] < 20e6  # it is committed


def test_starter_adapters_verify_against_the_new_base(built):
    import torch
    from safetensors.torch import load_file

    from s1s2.adapters import base_fingerprint, verify_adapter

    root, _ = built
    fp = base_fingerprint(root / "sim_vlm")
    for domain in ("daylight", "overcast_dim", "warm_tungsten", "cold_fluorescent_flicker",
                   "low_sun_glare", "night_noise"):  # fmt: skip
        d = root / "adapters" / domain
        m = verify_adapter(d, expected_base=fp)
        assert m.trained is False and m.strategy == "starter"
        cfg = json.loads((d / "adapter_config.json").read_text())
        assert cfg["peft_type"] == "LORA" and cfg["r"] == 8
        assert "vision_tower" in cfg["target_modules"] and "o_proj" in cfg["target_modules"]
        w = load_file(str(d / "adapter_model.safetensors"))
        assert all(torch.count_nonzero(v) == 0 for k, v in w.items() if "lora_B" in k)  # B = 0
