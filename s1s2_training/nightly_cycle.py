"""`s1s2 nightly cycle`: one full continual-learning cycle in lighting no shipped adapter covers.

    s1s2 nightly cycle [--day-s 300] [--seed 1000] [--work runs/nightly_cycle]

1. Day 1: the default stack (trained planner, learned System 1, adapter manager) plus the
   `failure_recorder` node sorts for `--day-s` seconds under a custom lighting spec (default:
   sodium-vapour lamps). The classifier calls that lighting unknown, the manager falls back, the
   planner fails; the recorder writes the day's failures to MCAP.
2. Night: `s1s2 nightly` on those recordings (train, evaluate, gate, register, refit classifier).
3. Day 2: the same stack and lighting on the next seed (other items), with the library and
   classifier the night produced: the manager recognises the lighting and selects the new
   adapter; and the control, the same day 2 with what shipped.

Everything runs on copies (`<work>/adapters`, `<work>/lighting/classifier.json`): the shipped
library and classifier are not touched. Writes `<work>/cycle.md` and `<work>/cycle.json`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

SODIUM = {"name": "sodium_vapour", "colour_temp_k": 1900.0, "intensity": 0.7, "exposure": 1.3}


def _stack(day_dir: Path, spec: dict, lib: str, clf: str):
    from s1s2.launcher import load_stack
    from s1s2.stack import NodeSpec

    stack = load_stack("config/recycling_sim.yaml")
    rec = NodeSpec(
        "adapter_manager", "failure_recorder_node", "failure_recorder", ("config/failure_recorder.yaml",)
    )
    stack = replace(stack, nodes=(*stack.nodes, rec))
    overrides = {
        "conveyor_sim": [f"lighting_spec:='{json.dumps(spec)}'"],
        "vlm_planner": [f"adapter_library:={lib}"],
        "adapter_manager": [f"adapter_library:={lib}", f"classifier_path:={clf}"],
        "failure_recorder": [f"output_dir:={day_dir / 'failures'}"],
    }
    return stack, overrides


def run_day(name: str, work: Path, spec: dict, seed: int, day_s: float, lib: str = "", clf: str = "") -> dict:
    """One day of the stack under `spec`, with the library `lib` and classifier `clf` (default:
    the cycle's copies in `work`)."""
    from adapter_manager.failure_node import read_failures
    from s1s2.shiftday import run_episodes

    from .nightly import failure_kinds

    day_dir = work / name
    if day_dir.exists():
        shutil.rmtree(day_dir)
    day_dir.mkdir(parents=True)
    lib = lib or str(work / "adapters")
    clf = clf or str(work / "lighting" / "classifier.json")
    stack, over = _stack(day_dir, spec, lib, clf)
    print(f"[cycle] {name}: {day_s:g} s of sorting under {spec['name']} (seed {seed})", flush=True)
    r = run_episodes(stack, [seed], day_s, over, log_dir=day_dir / "logs")
    fails = read_failures(sorted((day_dir / "failures").glob("*.mcap")))
    kinds = failure_kinds(fails)
    out = {"totals": r["totals"], "adapters_seen": r["adapters_seen"], "adapter_swaps": r["adapter_swaps"],
           "failures_recorded": len(fails), "failure_kinds": kinds, "wall_s": r["episodes"][0]["wall_s"]}  # fmt: skip
    print(f"[cycle] {name}: {json.dumps(out)}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    from s1s2 import resolve_path

    from .nightly import NightlyConfig, run

    ap = argparse.ArgumentParser(prog="s1s2 nightly cycle", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--lighting-spec",
        default=json.dumps(SODIUM),
        help="JSON custom lighting (conveyor_sim lighting_spec)",
    )
    ap.add_argument("--day-s", type=float, default=300.0)
    ap.add_argument("--seed", type=int, default=1000, help="day 1's seed; day 2 is seed + 1 (other items)")
    ap.add_argument(
        "--no-control", action="store_true", help="skip day 2 with the shipped library (the control)"
    )
    ap.add_argument("--work", default="runs/nightly_cycle")
    ap.add_argument("--steps", type=int, default=NightlyConfig.steps)
    ap.add_argument("--mix", type=float, default=NightlyConfig.mix)
    ap.add_argument("--lr", type=float, default=NightlyConfig.lr)
    ap.add_argument("--skip-day1", action="store_true",
                    help="reuse <work>/day1 (recordings and counts) and the control day if there is one")  # fmt: skip
    a = ap.parse_args(argv)
    spec = json.loads(a.lighting_spec)
    work = resolve_path(a.work)
    t0 = time.time()
    result: dict = {"lighting_spec": spec, "seed": a.seed, "day_s": a.day_s}
    if not a.skip_day1:
        if work.exists():
            shutil.rmtree(work)
        (work / "lighting").mkdir(parents=True)
        shutil.copytree(resolve_path("models/adapters"), work / "adapters")
        shutil.copy(resolve_path("models/lighting/classifier.json"), work / "lighting" / "classifier.json")
        result["day1"] = run_day("day1", work, spec, a.seed, a.day_s)
        (work / "day1.json").write_text(json.dumps(result["day1"], indent=1))
    else:
        result["day1"] = json.loads((work / "day1.json").read_text())
    cfg = NightlyConfig(context=spec["name"], steps=a.steps, mix=a.mix, lr=a.lr)
    night = run(cfg, [work / "day1" / "failures"], library=work / "adapters",
                classifier=work / "lighting" / "classifier.json", report_dir=work / "nightly")  # fmt: skip
    result["nightly"] = {
        k: night.get(k) for k in ("gate", "registered", "seconds", "classifier", "frames", "day")
    }
    if night["registered"]:
        result["day2"] = run_day("day2", work, spec, a.seed + 1, a.day_s)
    control = work / "day2_control.json"
    if a.skip_day1 and control.exists():  # what shipped does not change with the night: reuse it
        result["day2_control"] = json.loads(control.read_text())
    elif not a.no_control:  # the same day 2 with what shipped: what the night changed, on the same items
        result["day2_control"] = run_day("day2_control", work, spec, a.seed + 1, a.day_s,
                                         str(resolve_path("models/adapters")),
                                         str(resolve_path("models/lighting/classifier.json")))  # fmt: skip
        control.write_text(json.dumps(result["day2_control"], indent=1))
    result["seconds"] = round(time.time() - t0, 1)
    from s1s2.bench import provenance

    # what `s1s2 bench` shows once the file is copied to results/nightly_cycle.json
    result["command"] = "s1s2 nightly cycle " + " ".join(argv if argv is not None else sys.argv[1:])
    result["recorded"] = provenance()
    (work / "cycle.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    (work / "cycle.md").write_text(cycle_markdown(result))
    print((work / "cycle.md").read_text())
    return 0


def cycle_markdown(r: dict) -> str:
    name = r["lighting_spec"]["name"]
    lines = [
        f"# Nightly cycle under `{name}` ({json.dumps(r['lighting_spec'])}), {r['day_s']:g} s per day",
        "",
        f"Day 1: seed {r['seed']}, the shipped library and classifier. Day 2: seed {r['seed'] + 1} (other items), "
        "with the library and classifier the night produced; day 2 control: the same seed with what shipped.",
        "",
    ]
    lines += ["| | correct | wrong bin | missed | dropped | failures recorded | adapters the manager chose |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for d in ("day1", "day2", "day2_control"):
        if d in r:
            t = r[d]["totals"]
            lines.append(f"| {d} | {t['correct']} | {t['wrong_bin']} | {t['missed']} | {t['dropped']} | "
                         f"{r[d]['failures_recorded']} | {', '.join(x or '(base)' for x in r[d]['adapters_seen'])} |")  # fmt: skip
    g = r["nightly"]["gate"]
    lines += ["", f"Night: gate {g['why']} (context +{g['context_gain_pts']} points, daylight -{g['general_drop_pts']} "
              f"points); registered: {r['nightly']['registered']}. Report: nightly/report.md.", ""]  # fmt: skip
    return "\n".join(lines)
