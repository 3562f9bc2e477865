"""finetune scores a new adapter at its own gate before the adapter has a manifest: its answers,
generated once at the card's gate, scored again with its own calibration (`rescore`), or its
calibration passed to `evaluate(calibration=...)`. Both must give what the registered adapter gets
from its manifest (what the planner serves and `calibrate --check` measures)."""

import json
import shutil

import numpy as np

from s1s2 import repo_root
from s1s2_training.vlm import data as dm
from s1s2_training.vlm.evaluate import evaluate, rescore


def test_an_own_calibration_passed_in_scores_like_the_registered_adapter(tmp_path):
    models = repo_root() / "models"
    registered = models / "adapters" / "warm_tungsten"
    bare = tmp_path / "warm_tungsten"  # peft's files only, as finetune has them before registering
    bare.mkdir()
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        shutil.copy(registered / name, bare / name)
    metrics = json.loads((registered / "s1s2_adapter.json").read_text())["metrics"]
    own, gate = metrics["confidence_calibration"], metrics["min_confidence"]
    test = dm.frames_of(dm.domain_test_specs("warm_tungsten", 1, 1, episode_s=8.0), 128, tmp_path / "data", 1)
    served = evaluate(models / "sim_vlm", test, adapter_dir=registered, min_confidence=gate)
    passed = evaluate(models / "sim_vlm", test, adapter_dir=bare, min_confidence=gate, calibration=own)
    card = evaluate(models / "sim_vlm", test, adapter_dir=bare, min_confidence=gate)
    assert len(served["_conf"]) >= 5
    # same process, same weights, same kernels: the same numbers
    np.testing.assert_allclose(passed["_conf"], served["_conf"], rtol=0, atol=1e-12)
    assert passed["acted_picks"] == served["acted_picks"]
    # without it the card's calibration scores the frames, and the confidences differ
    assert np.abs(card["_conf"] - served["_conf"]).max() > 1e-3
    # the card-gate answers scored again at the adapter's own gate: the served result, every metric
    again = rescore(card, test, models / "sim_vlm", own, gate)
    np.testing.assert_allclose(again["_conf"], served["_conf"], rtol=0, atol=1e-12)
    public = [k for k in served if not k.startswith("_") and k != "seconds"]
    assert {k: again[k] for k in public} == {k: served[k] for k in public}
    assert again["acted_picks"] != card["acted_picks"] or np.abs(again["_conf"] - card["_conf"]).max() > 1e-3
