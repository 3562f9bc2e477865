"""The builder recreates the stand-in VLM and the adapter library from scratch, offline."""

import json

import pytest


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from s1s2_training.vlm.build import build

    root = tmp_path_factory.mktemp("models")
    record = build(root / "sim_vlm", seed=0)
    return root, record


def test_manifest_record_is_honest(built):
    root, record = built
    assert record["trained"] is False and "UNTRAINED" in record["notes"]
    assert {"name", "path", "command", "data", "seed", "trained", "notes", "metrics"} <= set(record)
    m = record["metrics"]
    assert m["footprint_nf4_bytes"] < m["footprint_fp32_bytes"]
    assert m["model_dir_bytes"] < 8e6  # a few MB: it is committed
    assert m["adapters_trained"] is False


def test_artifacts_load_with_the_generic_auto_classes(built):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    root, _ = built
    model_dir = root / "sim_vlm"
    for f in ("config.json", "model.safetensors", "tokenizer.json", "processor_config.json",
              "chat_template.jinja", "latent_projection.safetensors", "s1s2_vlm.json"):  # fmt: skip
        assert (model_dir / f).is_file(), f
    proc = AutoProcessor.from_pretrained(str(model_dir), local_files_only=True, backend="pil")
    model = AutoModelForImageTextToText.from_pretrained(str(model_dir), local_files_only=True)
    assert type(model).__name__ == "LlavaForConditionalGeneration"
    answer = "label=aluminium_can u=123 v=45"
    ids = proc.tokenizer(answer, add_special_tokens=False)["input_ids"]
    assert proc.tokenizer.decode(ids) == answer  # byte-level BPE: lossless, no <unk>
    assert len(ids) < 16  # the project's words are merged tokens, not single bytes
    for domain in ("daylight", "overcast_dim", "warm_tungsten", "cold_fluorescent_flicker",
                   "low_sun_glare", "night_noise"):  # fmt: skip
        d = root / "adapters" / domain
        assert (d / "adapter_model.safetensors").is_file()
        cfg = json.loads((d / "adapter_config.json").read_text())
        assert cfg["peft_type"] == "LORA" and cfg["r"] == 8
        assert "vision_tower" in cfg["target_modules"] and "o_proj" in cfg["target_modules"]
        assert json.loads((d / "s1s2_adapter.json").read_text())["trained"] is False
