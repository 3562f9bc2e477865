"""`s1s2 adapters list|classify` on a temporary library and images."""

import json

import cv2
import numpy as np

from adapter_manager.cli import main
from s1s2 import repo_root


def test_list_shows_adapters_sizes_base_and_trained(tmp_path, capsys):
    a = tmp_path / "daylight"
    a.mkdir()
    (a / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "models/sim_vlm", "r": 8}))
    (a / "adapter_model.safetensors").write_bytes(b"0" * 4096)
    (a / "s1s2_adapter.json").write_text(json.dumps({"trained": False}))
    assert main(["list", "--library", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "daylight" in out and "models/sim_vlm" in out and "4.1 KB" in out and " no " in out
    assert main(["list", "--library", str(tmp_path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["adapter_id"] == "daylight" and rows[0]["trained"] is False and rows[0]["rank"] == 8
    assert main(["list", "--library", str(tmp_path / "none")]) == 0
    assert "no adapters" in capsys.readouterr().out


def test_classify_prints_label_and_probabilities(tmp_path, capsys):
    img = np.full((120, 160, 3), 140, np.uint8)
    img[40:80] = 50
    good = tmp_path / "frame.png"
    cv2.imwrite(str(good), img)
    clf = repo_root() / "models/lighting/classifier.json"
    assert main(["classify", str(good), "--classifier", str(clf), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[0])
    assert out["label"] in out["probabilities"]
    assert abs(sum(out["probabilities"].values()) - 1.0) < 1e-3
    # An unreadable image is reported and makes the exit code non-zero; a bad classifier path is named.
    assert main(["classify", str(tmp_path / "missing.png"), "--classifier", str(clf)]) == 1
    assert main(["classify", str(good), "--classifier", str(tmp_path / "nope.json")]) == 2
    assert "nope.json" in capsys.readouterr().err
