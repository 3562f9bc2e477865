"""Builder of models/policy: expert demonstrations -> behaviour cloning -> ONNX + policy.json.

    s1s2 models policy      (or: python -m s1s2_training.policy.build --out models/policy)

Steps: `conveyor_sim.datasets.make_policy_dataset` rolls out the scripted expert (no rendering),
`train.train` fits the chunking policy on CPU (with `--dagger-iters N`, `dagger.run` instead adds
DART-noised expert rollouts, fits, then runs N DAgger rounds: policy rollouts relabelled by the
expert, aggregated, fine-tuned),
`export.save_policy` exports ONNX (opset 18) and checks parity with onnxruntime, and
`evaluate.closed_loop` runs the exported model in the sim.
If the demonstration generator is unavailable, an UNTRAINED model is written and marked so
(trained=false in policy.json and the record), so the stack still starts.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from s1s2_training.policy.configuration import PolicyConfig

N_EPISODES = 40  # x 30 s at 50 Hz = 60k samples; about 2-3 min of sim on a CPU
EVAL_EPISODES = 3
DATA_SEED_OFFSET = 0
EVAL_SEED = 1000  # closed-loop seeds are disjoint from the demonstration seeds
# DAgger rounds (s1s2_training.policy.dagger). 0 = plain behaviour cloning, the shipped model:
# 3 rounds did not yet sort any item closed loop either (docs/policy.md) and add about 8 min
DAGGER_ITERS = 0


def _untrained(out_dir: Path, seed: int, reason: str) -> dict:
    import torch

    from fast_policy.spec import N_JOINTS, OBS_DIM
    from s1s2_training.policy.export import save_policy
    from s1s2_training.policy.modeling import ChunkPolicy

    torch.manual_seed(seed)
    cfg = PolicyConfig(seed=seed, action_relative=True)  # relative + tiny std: it barely moves the arm
    st = {
        "obs_mean": np.zeros(OBS_DIM, np.float32),
        "obs_std": np.ones(OBS_DIM, np.float32),
        "action_mean": np.zeros((cfg.chunk_size, N_JOINTS), np.float32),
        "action_std": np.full((cfg.chunk_size, N_JOINTS), 1e-3, np.float32),  # near-zero motion
    }
    prov = {"data": None, "reason_untrained": reason, "seed": seed}
    meta = save_policy(ChunkPolicy(cfg).eval(), st, out_dir, trained=False, provenance=prov, metrics={})
    return meta["metrics"]


def build(out_dir: Path, seed: int = 0, n_episodes: int = N_EPISODES, eval_episodes: int = EVAL_EPISODES,
          config: PolicyConfig | None = None, data_path: Path | None = None,
          dagger_iters: int = DAGGER_ITERS) -> dict:  # fmt: skip
    """Build models/policy. `data_path`: reuse an existing demonstration npz (else generate one)."""
    out_dir = Path(out_dir)
    command = f"s1s2 models policy  (s1s2_training.policy.build, {n_episodes} expert episodes, seed {seed})"
    if dagger_iters > 0:
        command = command[:-1] + f", DART + {dagger_iters} DAgger rounds)"
    record = {"name": "policy", "path": str(out_dir), "command": command, "seed": seed}
    try:
        from conveyor_sim.datasets import make_policy_dataset
    except ImportError as exc:
        reason = f"demonstration generator unavailable: {exc}"
        metrics = _untrained(out_dir, seed, reason)
        return record | {"data": None, "trained": False, "notes": f"UNTRAINED: {reason}", "metrics": metrics}

    from s1s2_training.policy import dagger
    from s1s2_training.policy.evaluate import closed_loop
    from s1s2_training.policy.export import save_policy
    from s1s2_training.policy.train import train

    cfg = config or PolicyConfig(seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.monotonic()
        if data_path is None:
            data_path = Path(tmp) / "policy_demos.npz"
            ds = make_policy_dataset(n_episodes, seed + DATA_SEED_OFFSET, data_path)
        else:
            with np.load(data_path) as z:
                ds = {"rows": len(z["episode_index"]), "score": "not recorded (reused file)"}
        gen_s = round(time.monotonic() - t0, 1)
        if dagger_iters > 0:
            model, st, metrics, rounds = dagger.run(
                data_path, Path(tmp) / "dagger", cfg, dagger_iters, seed=seed, first_minutes=cfg.max_minutes
            )
        else:
            model, st, metrics = train(cfg, data_path)
            rounds = []
    data = (
        f"conveyor_sim.datasets.make_policy_dataset(n_episodes={n_episodes}, seed={seed + DATA_SEED_OFFSET}): "
        f"{ds['rows']} rows at 50 Hz from the scripted expert (expert score {ds['score']})"
        if "path" in ds
        else f"{data_path}: {ds['rows']} rows (reused demonstration file)"
    )
    metrics["data_generation_seconds"] = gen_s
    if dagger_iters > 0:
        metrics["dagger_rounds"] = rounds
        data += (
            f"; + {dagger.DART_EPISODES} DART expert rollouts (noise {dagger.NOISE_RAD} rad) and {dagger_iters} x "
            f"{dagger.EPISODES} DAgger policy rollouts relabelled by the scripted expert "
            "(s1s2_training.policy.dagger)"
        )
    provenance = {
        "data": data,
        "command": command,
        "seed": seed,
        "trainer": "s1s2_training.policy.train (behaviour cloning, L1 + BCE)"
        + (" + DART + DAgger (s1s2_training.policy.dagger)" if dagger_iters > 0 else ""),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    save_policy(model, st, out_dir, trained=True, provenance=provenance, metrics=metrics)
    if eval_episodes > 0:
        metrics["closed_loop"] = closed_loop(out_dir / "policy.onnx", eval_episodes, EVAL_SEED)
        # rewrite policy.json with the closed-loop numbers (the ONNX is unchanged)
        meta_path = out_dir / "policy.json"
        meta = json.loads(meta_path.read_text())
        meta["metrics"]["closed_loop"] = metrics["closed_loop"]
        meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    metrics = json.loads((out_dir / "policy.json").read_text())["metrics"]
    metrics.pop("val_loss_history", None)
    cl = metrics.get("closed_loop", {})
    notes = (
        f"ACT-style chunking transformer ({metrics['params']} params, K={cfg.chunk_size}), behaviour-cloned on "
        f"{metrics['train_samples']} samples{f' (BC + DART + {dagger_iters} DAgger rounds)' if dagger_iters else ''}; val L1+BCE {metrics['val_loss']}, val joint MAE "
        f"{metrics['val_joint_mae_rad']} rad"
        + (
            f"; closed loop with oracle goals: {cl['policy']['correct']}/{sum(cl['policy'].values())} items sorted "
            f"correctly (expert {cl['expert']['correct']}/{sum(cl['expert'].values())})"
            if cl
            else ""
        )
    )
    return record | {"data": data, "trained": True, "notes": notes, "metrics": metrics}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("models/policy"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--episodes", type=int, default=N_EPISODES)
    ap.add_argument("--eval-episodes", type=int, default=EVAL_EPISODES)
    ap.add_argument("--data", type=Path, default=None, help="reuse this demonstration npz")
    ap.add_argument("--dagger-iters", type=int, default=DAGGER_ITERS)
    ap.add_argument(
        "--max-minutes",
        type=float,
        default=PolicyConfig.max_minutes,
        help="training time cap (DAgger: of the first fit)",
    )
    args = ap.parse_args(argv)
    os.environ.setdefault("MUJOCO_GL", "egl")
    cfg = PolicyConfig(seed=args.seed, max_minutes=args.max_minutes)
    rec = build(args.out, args.seed, args.episodes, args.eval_episodes, cfg, args.data, args.dagger_iters)
    print(json.dumps(rec, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
