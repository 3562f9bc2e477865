"""The builder recreates the sim VLM (tiny recipe here) and a verifiable starter adapter library
for the new base, from scratch, offline."""

import json

import pytest


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from test_planner_simvlm import tiny_recipe

    from s1s2_training.vlm.build import build

    root = tmp_path_factory.mktemp("models")
    record = build(root / "sim_vlm", seed=0, recipe=tiny_recipe(), work_dir=root / "data")
    return root, record


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
