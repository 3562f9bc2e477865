"""`s1s2 models policy`: rebuild the shipped System 1 policy end to end, seeded, on a CPU budget.

Stages (tqdm bars; seconds per stage in provenance):
 1. expert demonstrations THROUGH the deployment execution path (controller + SafetyLimiter),
    DART noise on the aim point, belt speed and goal timing randomised per episode;
 2. behaviour cloning from scratch;
 3. DAgger rounds: the exported policy drives (the expert drives random 1 s blocks with
    probability beta), the expert labels every visited state, data aggregated, fine-tuned;
 4. ONNX export (parity-checked) -> out_dir/policy.onnx + policy.json + policy.safetensors;
 5. closed-loop evaluation on held-out seeds through onnxruntime + Controller + limiter, per-tick
    and 1 Hz planner-like oracle goals, against the scripted expert on the same seeds;
    written into policy.json metrics and returned as the models/manifest.json record.

    s1s2 models policy             (ACT, the shipped default: models/policy)
    s1s2 models policy_flow        (flow matching: models/policy_flow)
    s1s2 models policy_mlp         (the MLP baseline: models/policy_mlp)
    python -m s1s2_training.policy.build --out DIR [--type act|flow|mlp] [--seed 0] [--set field=json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from s1s2_training.policy.rollout import DartConfig, ExpertParams

# data seeds never overlap the evaluation seeds (evaluate.TEST_SEEDS 1000-1011, DEV_SEEDS 2000-2011)
EXPERT_SEED_BASE = 100_000
DAGGER_SEED_BASE = 200_000
# optimiser steps (batch 256) of the first fit and of each DAgger fine-tune, sized so the whole
# build fits 20 minutes on the idle 2-core machine (measured CPU rates: mlp ~160, flow ~85,
# act ~18 steps per CPU second)
TRAIN_STEPS = {"mlp": (20_000, 8_000), "flow": (20_000, 8_000), "act": (8_000, 3_000)}


@dataclass
class BuildConfig:
    policy_type: str = "act"
    seed: int = 0
    expert_episodes: int = 80
    dart: DartConfig = field(default_factory=DartConfig)
    belt_speed_range: tuple[float, float] = (0.05, 0.17)
    planner_fraction: float = 0.5
    first_steps: int | None = None  # None: TRAIN_STEPS[policy_type][0]
    first_minutes: float = 12.0  # wall-clock safety cap of the first fit
    dagger_rounds: int = 1
    dagger_episodes: int = 30
    dagger_beta: float = 0.2
    finetune_steps: int | None = None  # None: TRAIN_STEPS[policy_type][1]
    finetune_minutes: float = 5.0
    finetune_lr_scale: float = 0.3
    eval_seeds: tuple[int, ...] = tuple(range(1000, 1012))
    eval_speeds: tuple[float, ...] = (0.06, 0.10, 0.15)
    eval_noise_m: float = 0.015
    workers: int = 2
    aim_index: int = -1
    model_overrides: dict = field(default_factory=dict)
    expert: ExpertParams = field(default_factory=ExpertParams)
    # ablations / reuse
    raw_expert_demos: bool = False  # record demos the old way (no limiter in the loop)
    expert_data_path: str | None = None  # reuse these expert demos instead of collecting
    eval_controller_overrides: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.policy_type not in ("act", "flow", "mlp"):
            raise ValueError(f"BuildConfig.policy_type {self.policy_type!r}: expected act, flow or mlp")
        for name in ("expert_episodes", "dagger_episodes", "workers"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                raise ValueError(f"BuildConfig.{name} must be a positive int, got {getattr(self, name)!r}")
        if not (isinstance(self.dagger_rounds, int) and self.dagger_rounds >= 0):
            raise ValueError(f"BuildConfig.dagger_rounds must be an int >= 0, got {self.dagger_rounds!r}")


def build(out_dir: str | Path, seed: int = 0, cfg: BuildConfig | None = None, progress: bool = True,
          evaluate_model: bool = True, work_dir: str | Path | None = None) -> dict:  # fmt: skip
    """The `s1s2 models policy` builder: build(out_dir, seed) -> manifest record."""
    import torch  # noqa: F401 - training only

    from s1s2.cell import DEFAULT_CELL
    from s1s2_training.policy import data as pdata
    from s1s2_training.policy.configuration import TrainConfig, make_policy_config
    from s1s2_training.policy.evaluate import evaluate, table
    from s1s2_training.policy.export import save_policy
    from s1s2_training.policy.parallel import make_pool
    from s1s2_training.policy.train import train

    cfg = cfg or BuildConfig(seed=seed)
    if cfg.seed != seed:
        raise ValueError(f"build: seed {seed} differs from BuildConfig.seed {cfg.seed}")
    out_dir = Path(out_dir)
    arm = DEFAULT_CELL.arm
    mcfg = make_policy_config(cfg.policy_type, **cfg.model_overrides)
    execution = {"chunk_mode": "aim", "aim_index": cfg.aim_index, "suction_index": 0}
    from s1s2_training.policy.parallel import CPU_SECONDS

    timings: dict[str, float] = {}
    cpu: dict[str, float] = {}
    t_all = time.monotonic()

    def cpu_mark(name: str, c_main0: float, c_tasks0: float) -> None:
        cpu[name] = round(time.process_time() - c_main0 + CPU_SECONDS["tasks"] - c_tasks0, 1)

    def marks():
        return time.process_time(), CPU_SECONDS["tasks"]

    pool = make_pool(cfg.workers)
    tmp = tempfile.TemporaryDirectory() if work_dir is None else None
    work = Path(tmp.name if tmp else work_dir)
    work.mkdir(parents=True, exist_ok=True)
    try:
        t0, m0 = time.monotonic(), marks()
        ccfg = pdata.CollectConfig(
            cfg.expert_episodes, EXPERT_SEED_BASE + 10_000 * cfg.seed, mcfg.chunk_size,
            belt_speed_range=cfg.belt_speed_range, planner_fraction=cfg.planner_fraction, dart=cfg.dart,
            expert=cfg.expert, raw_expert=cfg.raw_expert_demos, spec_version=mcfg.spec_version,
        )  # fmt: skip
        if cfg.expert_data_path:
            arrays, expert_score = pdata.load(cfg.expert_data_path), f"reused {cfg.expert_data_path}"
        else:
            arrays, expert_score = pdata.collect(ccfg, None, pool, progress, "1/5 expert demos (DART)")
        parts = [arrays]
        if work_dir is not None:
            pdata.save(work / "expert.npz", arrays)
        timings["expert_data_s"] = round(time.monotonic() - t0, 1)
        cpu_mark("expert_data", *m0)

        t0, m0 = time.monotonic(), marks()
        steps0, steps1 = TRAIN_STEPS[cfg.policy_type]
        tcfg = TrainConfig(max_steps=cfg.first_steps or steps0, max_minutes=cfg.first_minutes, seed=cfg.seed)
        model, metrics = train(mcfg, tcfg, arrays, progress=progress, desc=f"2/5 train {cfg.policy_type}")
        timings["train_s"] = round(time.monotonic() - t0, 1)
        cpu_mark("train", *m0)
        rng = np.random.default_rng(cfg.seed)
        check_obs = arrays["obs"][rng.choice(len(arrays["obs"]), 32, replace=False)]
        rounds = []
        for r in range(cfg.dagger_rounds):
            t0, m0 = time.monotonic(), marks()
            rdir = work / f"round{r}"
            save_policy(model, rdir, arm, execution, True, {"dagger_round": r}, metrics, check_obs)
            dcfg = pdata.CollectConfig(
                cfg.dagger_episodes, DAGGER_SEED_BASE + 10_000 * cfg.seed + 1000 * r, mcfg.chunk_size,
                belt_speed_range=cfg.belt_speed_range, planner_fraction=cfg.planner_fraction, dart=None,
                beta=cfg.dagger_beta, expert=cfg.expert, spec_version=mcfg.spec_version,
            )  # fmt: skip
            darr, dscore = pdata.collect(
                dcfg, rdir / "policy.onnx", pool, progress, f"3/5 DAgger round {r + 1}"
            )
            parts.append(darr)
            if work_dir is not None:
                pdata.save(work / f"dagger{r + 1}.npz", darr)
            timings[f"dagger{r + 1}_data_s"] = round(time.monotonic() - t0, 1)
            cpu_mark(f"dagger{r + 1}_data", *m0)
            t0, m0 = time.monotonic(), marks()
            ft = TrainConfig(max_steps=cfg.finetune_steps or steps1, max_minutes=cfg.finetune_minutes,
                             lr=TrainConfig.lr * cfg.finetune_lr_scale, seed=cfg.seed + r + 1,
                             warmup_frac=0.0)  # fmt: skip
            model, metrics = train(mcfg, ft, pdata.concat(parts), init=model, progress=progress,
                                   desc=f"3/5 fine-tune round {r + 1}")  # fmt: skip
            timings[f"dagger{r + 1}_train_s"] = round(time.monotonic() - t0, 1)
            cpu_mark(f"dagger{r + 1}_train", *m0)
            rounds.append({"round": r + 1, "rows": int(len(darr["obs"])), "rollout_score_with_beta": dscore})

        t0, m0 = time.monotonic(), marks()
        provenance = {
            "command": f"s1s2 models policy{'' if cfg.policy_type == 'act' else '_' + cfg.policy_type} "
            f"(s1s2_training.policy.build, type {cfg.policy_type}, seed {cfg.seed})",
            "build_config": json.loads(json.dumps(asdict(cfg))),
            "data": {
                "expert": f"{cfg.expert_episodes} x 30 s episodes, scripted expert through the controller + "
                f"limiter, DART sigma {cfg.dart.sigma_m} m, belt {cfg.belt_speed_range} m/s, "
                f"{cfg.planner_fraction:.0%} with 1 Hz planner-like goals; expert score {expert_score}",
                "dagger_rounds": rounds,
                "rows_total": int(sum(len(p["obs"]) for p in parts)),
            },
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        save_policy(model, out_dir, arm, execution, True, provenance, metrics, check_obs)
        timings["export_s"] = round(time.monotonic() - t0, 1)
        cpu_mark("export", *m0)
        record_eval = None
        if evaluate_model:
            t0, m0 = time.monotonic(), marks()
            res = evaluate({cfg.policy_type: str(out_dir / "policy.onnx")}, cfg.eval_seeds, cfg.eval_speeds,
                           noise_m=cfg.eval_noise_m, pool=pool, progress=progress,
                           controller_overrides=cfg.eval_controller_overrides)  # fmt: skip
            timings["eval_s"] = round(time.monotonic() - t0, 1)
            cpu_mark("eval", *m0)
            record_eval = res
            if progress:
                print(table(res), flush=True)
    finally:
        if pool is not None:
            pool.shutdown()
        if tmp is not None:
            tmp.cleanup()
    timings["total_s"] = round(time.monotonic() - t_all, 1)
    # idle-machine estimate: stages with rollouts run on `workers` processes in parallel
    par = {"expert_data", "eval"} | {k for k in cpu if k.startswith("dagger") and k.endswith("_data")}
    cpu["idle_estimate_s"] = round(sum(v / (cfg.workers if k in par else 1) for k, v in cpu.items()), 1)
    meta_path = out_dir / "policy.json"
    meta = json.loads(meta_path.read_text())
    meta["provenance"]["timings_s"] = timings
    meta["provenance"]["cpu_seconds"] = cpu
    if record_eval is not None:
        meta["metrics"]["closed_loop"] = record_eval
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    pol = record_eval["policies"][cfg.policy_type] if record_eval else None
    notes = f"{cfg.policy_type} policy, spec v{mcfg.spec_version} (task space), {metrics['params']} params"
    if pol:
        notes += "; closed loop vs scripted expert (correct): " + ", ".join(
            f"{tm} goals {pol[tm]['total']['correct']}/{sum(r['correct'] for r in record_eval['reference_expert'].values())}"
            for tm in ("tick", "planner")
        )
    summary = None
    if record_eval:
        summary = {
            "seeds": record_eval["seeds"], "episode_s": record_eval["episode_s"],
            "planner_goals": record_eval["planner_goals"],
            "reference_expert": record_eval["reference_expert"],
            "policy": {tm: pol[tm] for tm in ("tick", "planner")}, "tick_ms": pol.get("tick_ms"),
        }  # fmt: skip
    return {"name": "policy", "path": str(out_dir), "command": provenance["command"], "seed": cfg.seed,
            "trained": True, "data": provenance["data"], "timings_s": timings, "cpu_seconds": cpu,
            "notes": notes, "metrics": {"closed_loop": summary, "train": {k: v for k, v in metrics.items()
                                                                          if k != "history"}}}  # fmt: skip


def build_flow(out_dir: str | Path, seed: int = 0) -> dict:
    """`s1s2 models policy_flow`."""
    return build(out_dir, seed, BuildConfig(policy_type="flow", seed=seed))


def build_mlp(out_dir: str | Path, seed: int = 0) -> dict:
    """`s1s2 models policy_mlp`."""
    return build(out_dir, seed, BuildConfig(policy_type="mlp", seed=seed))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("models/policy"))
    ap.add_argument("--type", default="act", choices=("act", "flow", "mlp"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--work-dir", type=Path, default=None, help="keep intermediate data/models here")
    ap.add_argument("--no-eval", action="store_true")
    ap.add_argument("--set", action="append", default=[], help="BuildConfig field=json value")
    ap.add_argument("--record", type=Path, default=None, help="write the manifest record (json) here")
    a = ap.parse_args(argv)
    os.environ.setdefault("MUJOCO_GL", "egl")
    kw = {"policy_type": a.type, "seed": a.seed, "workers": a.workers}
    for s in a.set:
        k, _, v = s.partition("=")
        kw[k] = json.loads(v)
    if "dart" in kw and isinstance(kw["dart"], dict):
        kw["dart"] = DartConfig(**kw["dart"])
    if "expert" in kw and isinstance(kw["expert"], dict):
        kw["expert"] = ExpertParams(**kw["expert"])
    for k in ("belt_speed_range", "eval_seeds", "eval_speeds"):
        if k in kw:
            kw[k] = tuple(kw[k])
    rec = build(a.out, a.seed, BuildConfig(**kw), work_dir=a.work_dir, evaluate_model=not a.no_eval)
    print(json.dumps(rec, indent=1))
    if a.record:
        a.record.write_text(json.dumps(rec, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
