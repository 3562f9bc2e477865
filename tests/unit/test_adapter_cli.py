"""`s1s2 adapters list|classify` on a temporary library and images."""

import json

import cv2
import numpy as np

from adapter_manager.cli import main
from s1s2 import repo_root


def test_list_add_verify_remove(tmp_path, capsys):
    import shutil

    lib = tmp_path / "lib"
    src = tmp_path / "warm"
    shutil.copytree(repo_root() / "models/adapters/warm_tungsten", src)
    (src / "s1s2_adapter.json").unlink()  # a plain peft folder, as a trainer writes it
    assert (
        main(
            [
                "add",
                str(src),
                "--library",
                str(lib),
                "--tag",
                "lighting:warm_tungsten",
                "--strategy",
                "vision",
            ]
        )
        == 0
    )
    assert "registered 'warm'" in capsys.readouterr().out
    assert main(["list", "--library", str(lib)]) == 0
    out = capsys.readouterr().out
    assert "warm" in out and "vision" in out and "lighting:warm_tungsten" in out
    assert main(["list", "--library", str(lib), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert (
        rows[0]["adapter_id"] == "warm"
        and rows[0]["rank"] == 8
        and rows[0]["manifest"]["strategy"] == "vision"
    )
    assert main(["list", "--library", str(lib), "--tag", "lighting:night_noise"]) == 0
    assert "no adapters" in capsys.readouterr().out
    assert main(["verify", "--library", str(lib)]) == 0
    w = lib / "warm" / "adapter_model.safetensors"
    w.write_bytes(b"x" + w.read_bytes()[1:])
    assert main(["verify", "--library", str(lib)]) == 1
    assert "FAIL  warm" in capsys.readouterr().out
    assert main(["add", str(src), "--library", str(lib)]) == 2  # already there
    assert "already" in capsys.readouterr().err
    assert main(["remove", "warm", "--library", str(lib)]) == 0
    assert main(["list", "--library", str(lib)]) == 0 and "no adapters" in capsys.readouterr().out


def test_classify_prints_label_and_probabilities(tmp_path, capsys):
    img = np.full((120, 160, 3), 140, np.uint8)
    img[40:80] = 50
    good = tmp_path / "frame.png"
    cv2.imwrite(str(good), img)
    clf = repo_root() / "models/lighting/classifier.json"
    assert main(["classify", str(good), "--classifier", str(clf), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[0])
    # a painted grey frame is far from every rendered domain: "unknown", with the nearest domain named
    assert out["label"] == "unknown" and out["nearest"] in out["probabilities"]
    assert out["ood_distance"] > out["ood_threshold"] and out["confidence"] < 0.5
    assert abs(sum(out["probabilities"].values()) - 1.0) < 1e-3
    # An unreadable image is reported and makes the exit code non-zero; a bad classifier path is named.
    assert main(["classify", str(tmp_path / "missing.png"), "--classifier", str(clf)]) == 1
    assert main(["classify", str(good), "--classifier", str(tmp_path / "nope.json")]) == 2
    assert "nope.json" in capsys.readouterr().err


def test_add_with_new_tags_keeps_the_source_manifest_fields(tmp_path, capsys):
    """Re-tagging an adapter that carries a manifest keeps what its trainer wrote: an adapter
    trained on raw frames must still be served raw frames, with its own calibration."""
    import shutil

    from s1s2.adapters import read_manifest

    src = tmp_path / "glare"
    shutil.copytree(repo_root() / "models/adapters/low_sun_glare", src)
    before = read_manifest(src)
    assert before.input_normalisation is False  # the shipped low-sun adapter sees raw frames
    lib = tmp_path / "lib"
    assert (
        main(["add", str(src), "--library", str(lib), "--tag", "lighting:evening", "--strategy", "vision"])
        == 0
    )
    after = read_manifest(lib / "glare")
    assert (
        after.adapter_id == "glare"
        and after.context_tags == ["lighting:evening"]
        and after.strategy == "vision"
    )
    assert after.input_normalisation is False
    assert after.metrics == before.metrics and after.data == before.data and after.notes == before.notes
    assert after.files == before.files and after.trained is True
    assert main(["verify", "--library", str(lib)]) == 0
