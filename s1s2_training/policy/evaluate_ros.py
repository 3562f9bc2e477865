"""The learned System 1 through the ROS nodes: the oracle stack (config/recycling_oracle.yaml: the
cell, the ORACLE System 2 at 1 Hz with 0.3-0.5 s latency and 1.5 cm pick-point noise in the belt
frame, and `fast_policy` at 50 Hz) sorts the held-out seeds at each belt speed, over DDS in real
time (`--stack config/recycling_sim.yaml`: the default stack, the trained VLM planner and the
adapter manager instead of the oracle). The reference is the scripted expert on the same seeds, speeds and episode length (the
offline cell: the ROS node runs the same `CellSim`, reset to the same seed).

    python -m s1s2_training.policy.evaluate_ros --model models/policy/policy.onnx \
        --seeds 1000-1011 --speeds 0.06,0.10,0.15 --out runs/eval_ros.json

One stack per belt speed; for each seed the cell is reset and `episode_s` of wall time is
scored from its /sim/sort_events (items still on the belt at the end are not counted, as in the
offline evaluation). No torch.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from tqdm import tqdm

from s1s2.cli import parse_seeds
from s1s2_training.policy.evaluate import SPEEDS, TEST_SEEDS, evaluate

STACK = "config/recycling_oracle.yaml"


def evaluate_ros(model: str, seeds=TEST_SEEDS, speeds=SPEEDS, episode_s: float = 30.0,
                 log_dir: Path | None = None, workers: int = 2, stack: str = STACK,
                 params: dict[str, list[str]] | None = None) -> dict:  # fmt: skip
    from s1s2.shiftday import OUTCOMES, run_episodes

    ref = evaluate({}, seeds, speeds, timings=(), episode_s=episode_s, workers=workers, progress=False)
    ref = ref["reference_expert"]
    per: dict[str, dict] = {}
    bar = tqdm(total=len(seeds) * len(speeds), desc=f"{Path(stack).stem} (ROS)", unit="ep")
    for sp in speeds:
        over = {k: list(v) for k, v in (params or {}).items()}
        over.setdefault("conveyor_sim", []).append(f"belt_speed:={sp}")
        over.setdefault("fast_policy", []).append(f"model_path:={model}")
        r = run_episodes(stack, list(seeds), episode_s, over,
                         log_dir=None if log_dir is None else Path(log_dir) / f"speed_{sp:.2f}",
                         progress=lambda *_a: bar.update())  # fmt: skip
        c = dict(r["totals"])
        c["vs_expert"] = round(c["correct"] / max(1, ref[f"{sp:.2f}"]["correct"]), 3)
        c["episodes"] = [{"seed": e["seed"], **e["totals"]} for e in r["episodes"]]
        per[f"{sp:.2f}"] = c
    bar.close()
    tot = {k: sum(per[s][k] for s in per) for k in OUTCOMES}
    tot["vs_expert"] = round(tot["correct"] / max(1, sum(ref[s]["correct"] for s in ref)), 3)
    per["total"] = tot
    return {"stack": stack, "model": model, "seeds": list(seeds), "episode_s": episode_s,
            "params": params or {}, "reference_expert": ref, "ros": per,
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}  # fmt: skip


def table(res: dict) -> str:
    rows = ["| belt m/s | expert correct | policy correct | wrong_bin | missed | dropped | vs expert |",
            "|---|---|---|---|---|---|---|"]  # fmt: skip
    ref = res["reference_expert"]
    for sp, c in res["ros"].items():
        e = sum(r["correct"] for r in ref.values()) if sp == "total" else ref[sp]["correct"]
        rows.append(f"| {sp} | {e} | {c['correct']} | {c['wrong_bin']} | {c['missed']} | {c['dropped']} | "
                    f"{c['vs_expert']:.3f} |")  # fmt: skip
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="models/policy/policy.onnx")
    ap.add_argument(
        "--stack", default=STACK, help="config/recycling_sim.yaml: the trained planner instead of the oracle"
    )
    ap.add_argument("--seeds", default="1000-1011")
    ap.add_argument("--speeds", default="0.06,0.10,0.15")
    ap.add_argument("--episode-s", type=float, default=30.0)
    ap.add_argument("--log-dir", type=Path, default=None, help="node logs per speed")
    ap.add_argument("--param", action="append", default=[], metavar="NODE:PARAM:=VALUE")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args(argv)
    from s1s2.launcher import parse_overrides

    params = parse_overrides(a.param)
    res = evaluate_ros(
        a.model,
        parse_seeds(a.seeds),
        [float(s) for s in a.speeds.split(",")],
        a.episode_s,
        a.log_dir,
        stack=a.stack,
        params=params,
    )
    print(table(res))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
