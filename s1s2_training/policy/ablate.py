"""Ablations of the System 1 recipe: each variant is a full `build` changed in ONE respect (its own
DAgger round with its own policy), evaluated closed loop on the DEV seeds (never the held-out
test seeds).

    python -m s1s2_training.policy.ablate --type mlp --variants full,no_dagger [--seeds 2000-2005]

Results: runs/ablate_<type>/<variant>/record.json and a summary line per variant in
runs/ablate_<type>/summary.jsonl. docs/policy.md tabulates them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from s1s2.cli import parse_seeds
from s1s2_training.policy.build import BuildConfig, build
from s1s2_training.policy.rollout import DartConfig, ExpertParams

VARIANTS = {
    "full": ({}, "the shipped recipe"),
    "no_dagger": ({"dagger_rounds": 0}, "no DAgger round"),
    "no_dart": ({"dart": DartConfig(sigma_m=0.0)}, "no DART noise in the expert demos"),
    "fixed_speed": ({"belt_speed_range": (0.10, 0.10)}, "demos (and DAgger) at 0.10 m/s only"),
    "raw_demos_no_dagger": ({"raw_expert_demos": True, "dagger_rounds": 0},
                            "demos recorded the old way (expert drives joints, no limiter), no DAgger"),
    "no_fine": ({"model_overrides": {"drop_features": ("target_fine", "place_fine")}},
                "no fine (tanh) relative features"),
    "no_holding": ({"model_overrides": {"drop_features": ("holding",)}}, "no vacuum/holding bit"),
    "joint_abs_obs": ({"model_overrides": {"obs_mode": "joint_absolute"}},
                      "old-style observation: joints + absolute target/place (no tip, no relative)"),
    "expert_tol_012": ({"expert": ExpertParams(descend_xy_tol=0.012)}, "expert descend tolerance 1.2 cm"),
    "planner_goals_only": ({"planner_fraction": 1.0}, "all demos with 1 Hz planner goals"),
    "tick_goals_only": ({"planner_fraction": 0.0}, "all demos with per-tick goals"),
    "goal_latent": ({"model_overrides": {"spec_version": 3}},
                    "spec v3: + the goal latent (the oracle's, in the trained planner's layout)"),
}  # fmt: skip
DEMO_KEYS = {"dart", "belt_speed_range", "raw_expert_demos", "expert", "planner_fraction"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--type", default="mlp", choices=("act", "flow", "mlp"))
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--seeds", default="2000-2005")
    ap.add_argument("--root", type=Path, default=None, help="default runs/ablate_<type>")
    ap.add_argument("--reuse-expert", default=None, help="expert.npz for variants that keep the demos")
    a = ap.parse_args(argv)
    root = a.root or Path(f"runs/ablate_{a.type}")
    root.mkdir(parents=True, exist_ok=True)
    for name in a.variants.split(","):
        if name not in VARIANTS:
            raise SystemExit(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}")
        over, desc = VARIANTS[name]
        over = dict(over)
        if a.reuse_expert and not (DEMO_KEYS & set(over)):
            over["expert_data_path"] = a.reuse_expert
        cfg = BuildConfig(policy_type=a.type, eval_seeds=tuple(parse_seeds(a.seeds)), **over)
        rec = build(root / name, cfg.seed, cfg, work_dir=root / f"{name}_work", progress=True)
        rec.update(variant=name, description=desc)
        (root / name / "record.json").write_text(json.dumps(rec, indent=1, default=str) + "\n")
        cl = rec["metrics"]["closed_loop"]
        line = {"variant": name, "description": desc, "tick": cl["policy"]["tick"]["total"],
                "planner": cl["policy"]["planner"]["total"],
                "expert_correct": sum(r["correct"] for r in cl["reference_expert"].values())}  # fmt: skip
        with open(root / "summary.jsonl", "a") as f:
            f.write(json.dumps(line) + "\n")
        print(f"ABLATION {json.dumps(line)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
