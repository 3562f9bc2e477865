"""Ablations of the sim VLM's pretraining tricks: each variant is the shipped recipe
(`build.Recipe.full()`) changed in ONE respect, pretrained at a short budget (a third of the shipped
steps, so a variant costs about 13 minutes on one thread), and scored on the build's held-out
daylight sets (NF4, the card's gate; never the sets anything was tuned on).

    python -m s1s2_training.vlm.ablate --variants full,no_patch_head --seed 0 [--threads 1]

Results: runs/ablate_vlm/<variant>_s<seed>.json, one line per variant in runs/ablate_vlm/summary.jsonl;
docs/sim_vlm.md "What mattered in pretraining" tabulates them. Frames come from the build's cache
(runs/vlm_data), rendered first if missing. A short budget tells a trick that the model cannot
learn without from one inside the seed's spread; it does not rank small effects at full length.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

SHORT = {"vision_steps": 300, "steps": 1200}  # shipped: 1000 + 3500
VARIANTS = {
    "full": ({}, "the shipped recipe"),
    "no_patch_head": ({"aux_weight": 0, "vision_steps": 0},
                      "no per-patch head (and so no vision stage, which trains only through it)"),
    "no_soft_numbers": ({"sigma_px": 0}, "one-hot number targets instead of the Gaussian soft labels"),
    "no_sinusoid_numbers": ({"sinusoid_numbers": False}, "number embeddings start random, not as sinusoids"),
    "label_weight_1": ({"label_weight": 1}, "the class / none token weighted 1, not 3"),
}  # fmt: skip


def config(variant: str, seed: int, threads: int = 1):
    """(PretrainConfig, settings) of a variant: the shipped recipe's pretraining settings at the
    short budget, with the variant's changes on top."""
    from .build import Recipe
    from .pretrain import PretrainConfig, apply_overrides

    settings = {**Recipe.full().pretrain, **SHORT, **VARIANTS[variant][0]}
    cfg = apply_overrides(
        PretrainConfig(seed=seed, threads=threads), [f"{k}={v}" for k, v in settings.items()]
    )
    return cfg, settings


def run(variant: str, seed: int, threads: int = 1, root: Path = Path("runs/ablate_vlm"),
        work_dir: Path = Path("runs/vlm_data")) -> dict:  # fmt: skip
    """Pretrain one variant, evaluate it on the held-out daylight sets; returns its record."""
    import torch

    from . import data as dm
    from . import evaluate as ev
    from .build import Recipe, held_out_specs, train_specs
    from .pretrain import train

    cfg, settings = config(variant, seed, threads)
    r = Recipe.full()
    torch.set_num_threads(threads)
    size = cfg.arch.image_size
    data = dm.concat([dm.cached(s, size, work_dir, r.workers) for s in train_specs(r)])
    tests = {k: dm.cached(s, size, work_dir, r.workers) for k, s in held_out_specs(r).items()}
    out = root / f"{variant}_s{seed}"
    t0 = time.time()
    train(cfg, data, out)
    rec = {"variant": variant, "description": VARIANTS[variant][1], "seed": seed, "settings": settings,
           "threads": threads, "train_s": round(time.time() - t0), "train_frames": int(len(data["label"]))}  # fmt: skip
    for k, d in tests.items():
        m = ev.evaluate(out, dm.scored(k, d), "nf4")
        rec[k] = {x: m.get(x) for x in ("class_acc", "hold_acc", "pick_err_median_cm", "pick_err_p90_cm",
                                         "target_frames")}  # fmt: skip
    return rec


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--root", type=Path, default=Path("runs/ablate_vlm"))
    a = ap.parse_args(argv)
    names = a.variants.split(",")
    for name in names:
        if name not in VARIANTS:
            raise SystemExit(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}")
    a.root.mkdir(parents=True, exist_ok=True)
    for name in names:
        rec = run(name, a.seed, a.threads, a.root)
        (a.root / f"{name}_s{a.seed}.json").write_text(json.dumps(rec, indent=1, default=str) + "\n")
        line = {k: rec[k] for k in ("variant", "seed", "train_s")} | {
            f"{k}_{m}": rec[k][m] for k in ("default", "dense") for m in ("class_acc", "pick_err_median_cm")
        }
        with open(a.root / "summary.jsonl", "a") as f:
            f.write(json.dumps(line) + "\n")
        print(f"ABLATION {json.dumps(line)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
