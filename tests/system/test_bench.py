"""`s1s2 bench --quick` writes a report with every section, plots and raw results (system tier
because it starts the stack)."""

import json
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.system, pytest.mark.slow]


def test_quick_bench_writes_report_results_and_plots(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "s1s2.cli", "bench", "--quick", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = (tmp_path / "report.md").read_text()
    for heading in ("## System 1", "## System 2", "## LoRA", "## Adapters", "## Learning", "## Simulation"):
        assert heading in report
    assert "FAILED" not in report
    assert "Plan cycles with the manager on" in report  # the planner's counters reached the shift day
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["machine"]["cores"] and set(results["sections"]) >= {
        "system1",
        "system2",
        "lora",
        "adapters",
    }
    s1 = results["sections"]["system1"]["scenarios"]
    for name in ("alone", "with_planner", "whole_stack"):
        assert len(s1[name]["fifo_probe"]["periods_ms"]) > 100  # raw samples are kept
    assert (tmp_path / "system1_periods.png").stat().st_size > 1000
    lora = results["sections"]["lora"]
    assert lora["lecture_example"]["lora_r16"] == 131_072
    assert lora["merge"]["max_abs_logit_diff"] < 1e-4  # merged == unmerged on a full-precision base
