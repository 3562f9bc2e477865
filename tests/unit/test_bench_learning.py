"""The benchmark's learning section reads the shipped adapters, the recorded ablations and the
recorded closed-loop runs, and draws them; the CLI refuses an unknown System 1 scenario."""

import json

from s1s2 import bench, repo_root


def test_learning_section_reports_every_shipped_adapter_and_the_mixing_ablation(tmp_path):
    res, lines = bench.section_learning(True, tmp_path)
    text = "\n".join(lines)
    trained = [r["domain"] for r in res["adapters"]]
    assert {
        "overcast_dim",
        "warm_tungsten",
        "cold_fluorescent_flicker",
        "low_sun_glare",
        "night_noise",
    } <= set(trained)
    for r in res["adapters"]:  # measured, not placeholders
        assert 0.0 <= r["base_domain"] <= 1.0 and 0.0 <= r["adapter_domain"] <= 1.0
        assert f"| {r['domain']} | {100 * r['base_domain']:.1f} | {100 * r['adapter_domain']:.1f} |" in text
    mixes = {(r["domain"], r["mix"]) for r in res["ablations"]}
    assert ("warm_tungsten", 0.0) in mixes and ("night_noise", 0.0) in mixes  # forgetting without mixing
    assert (tmp_path / res["plot"]).stat().st_size > 1000
    # the recorded pretraining ablation: one row per variant and seed, the per-patch head's collapse shown
    runs = {(r["variant"], r["seed"]): r for r in res["pretrain_ablation"]}
    assert len(runs) == len(res["pretrain_ablation"]) and {("full", 0), ("no_patch_head", 0)} <= set(runs)
    head = runs[("no_patch_head", 0)]
    assert head["class_acc_both"] < 0.5 * runs[("full", 0)]["class_acc_both"]
    assert f"| no_patch_head | 0 | {100 * head['default']['class_acc']:.1f} |" in text
    if (repo_root() / "results" / "shift_day.json").is_file():
        shift = json.loads((repo_root() / "results" / "shift_day.json").read_text())
        assert {"manager ON", "manager OFF"} <= set(shift["runs"])
        assert "| TOTAL |" in text and shift["command"] in text


def test_provenance_names_the_commit_and_the_cpu():
    line = bench.provenance()
    assert " at commit " in line and "cores" in line


def test_unknown_system1_scenario_is_refused(capsys):
    assert bench.main(["--sections", "system1", "--system1-scenarios", "whole_stak"]) == 2
    assert "whole_stak" in capsys.readouterr().err
