"""The figures and report the nightly job and the demo write, from their results (no training, no ROS)."""

import json


def _result(registered: bool) -> dict:
    acc = lambda item, cls: {"item_acc": item, "class_acc": cls}  # noqa: E731
    return {
        "context": "sodium_lamps",
        "registered": registered,
        "adapter": "sodium_lamps",
        "gate": {
            "why": "registered" if registered else "context gain 4.0 < 10",
            "context_gain_pts": 31.2,
            "min_gain_pts": 10.0,
            "general_drop_pts": -0.3,
            "max_general_drop_pts": 2.0,
        },  # fmt: skip
        "metrics": {
            "base_domain": acc(0.12, 0.2),
            "base_daylight": acc(0.839, 0.86),
            "adapter_domain": acc(0.432, 0.5),
            "adapter_daylight": acc(0.842, 0.861),
            "min_confidence": 0.91,
            "confidence_threshold": {"max_rate": 0.02, "acted_picks": 40, "frames": 120, "acted_right": 39},
        },  # fmt: skip
        "day": {"records": 72, "kinds": {"missed": 60, "low_confidence": 12}, "labelled": 72},
        "config": {"holdout": 0.25, "strategy": "lora", "rank": 16, "alpha": 32, "steps": 600, "mix": 0.1},
        "frames": {"train": {"frames": 54, "targets": 50}, "heldout": {"frames": 18}, "daylight_mix": 512},
        "train": {"train_s": 301.4, "trainable_parameters": 123456, "optimizer": "AdamW"},
    }


def test_report_states_the_gate_and_draws_it(tmp_path):
    from s1s2_training.nightly import write_report

    for registered in (True, False):
        out = tmp_path / str(registered)
        out.mkdir()
        write_report(_result(registered), out)
        md = (out / "report.md").read_text()
        assert (
            "| context (held-out failures) | item 12.0 % / class 20.0 % | item 43.2 % / class 50.0 % |" in md
        )
        assert "context gain 31.2 points (need >= 10.0)" in md and "![gate](report.png)" in md
        assert ("Registered: yes, sodium_lamps." in md) is registered
        assert ("the library is unchanged" in md) is not registered
        assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert json.loads((out / "result.json").read_text())["registered"] is registered


def test_demo_timing_plot_draws_what_the_monitor_saw(tmp_path):
    from types import SimpleNamespace

    import numpy as np

    from s1s2.demo import plot_timing

    times = np.arange(0.0, 10.0, 0.02)  # 50 Hz commands
    node = SimpleNamespace(meters={"command": SimpleNamespace(times=list(times))},
                           goal_ages=[(t, 0.5 + 0.5 * (t % 1.0)) for t in times[::5]])  # fmt: skip
    path = tmp_path / "stack_timing.png"
    assert plot_timing(node, path) == str(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    empty = SimpleNamespace(
        meters={"command": SimpleNamespace(times=[])}, goal_ages=[]
    )  # a stack that never ran
    assert plot_timing(empty, tmp_path / "empty.png") and (tmp_path / "empty.png").exists()


def test_the_demo_reports_system_1s_commands_as_sent_under_those_received():
    from s1s2.demo import format_stack

    rate = {"rate_hz": 49.1, "count": 2946, "period_p99_ms": 24.0}
    report = {
        "goal": rate,
        "command": rate,
        "camera": rate,
        "goal_age": {"p50_s": 0.3, "p99_s": 0.9, "max_s": 1.1},
    }
    assert not any("as System 1 sent them" in line for line in format_stack(report))  # none recorded
    report["command_stream"] = {"published": 3000, "published_hz": 50.0, "longest_pause_ms": 20.9, "lost": 54,
                                "received": 2946, "one_publisher": True, "longest_receive_gap_ms": 1100.0}  # fmt: skip
    lines = format_stack(report)
    i = next(k for k, line in enumerate(lines) if "joint commands" in line)
    assert "as System 1 sent them" in lines[i + 1]
    assert "50.00 Hz" in lines[i + 1] and "20.9 ms" in lines[i + 1] and "54 of 3000 lost" in lines[i + 1]
