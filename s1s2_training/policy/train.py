"""Behaviour cloning of the chunking policy on expert demonstrations (CPU is enough).

    python -m s1s2_training.policy.train --data demos.npz --out models/policy [--epochs N]

Loss: L1 on normalised joint targets (ACT uses L1 too) + BCE on the suction logits.
The validation split holds out whole episodes.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from tqdm import tqdm

from s1s2_training.policy.configuration import PolicyConfig
from s1s2_training.policy.data import BCData, load_npz, split_episodes, stats
from s1s2_training.policy.modeling import ChunkPolicy


def _tensors(data: BCData, st: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    obs = (data.obs - st["obs_mean"]) / st["obs_std"]
    obs = np.clip(obs, -10.0, 10.0)  # the runtime clips the same way (ControllerConfig.obs_clip)
    act = (data.target - st["action_mean"]) / st["action_std"]
    return (
        torch.from_numpy(obs.astype(np.float32)),
        torch.from_numpy(act.astype(np.float32)),
        torch.from_numpy(data.suction.astype(np.float32)),
    )


def losses(model: ChunkPolicy, obs, act, suc, cfg: PolicyConfig) -> tuple[torch.Tensor, dict]:
    out = model(obs)
    l1 = F.l1_loss(out[..., :4], act)
    bce = F.binary_cross_entropy_with_logits(out[..., 4], suc)
    return l1 + cfg.suction_loss_weight * bce, {"l1": float(l1.detach()), "bce": float(bce.detach())}


@torch.no_grad()
def evaluate(model: ChunkPolicy, obs, act, suc, cfg: PolicyConfig, st: dict) -> dict:
    model.eval()
    tot, n = {"loss": 0.0, "l1": 0.0, "bce": 0.0, "joint_mae_rad": 0.0, "suction_acc": 0.0}, 0
    std = torch.from_numpy(st["action_std"].astype(np.float32))
    for i in range(0, len(obs), 4096):
        o, a, s = obs[i : i + 4096], act[i : i + 4096], suc[i : i + 4096]
        out = model(o)
        loss, parts = losses(model, o, a, s, cfg)
        b = len(o)
        tot["loss"] += float(loss) * b
        tot["l1"] += parts["l1"] * b
        tot["bce"] += parts["bce"] * b
        tot["joint_mae_rad"] += float(((out[..., :4] - a).abs() * std).mean()) * b
        tot["suction_acc"] += float(((out[..., 4] > 0).float() == s).float().mean()) * b
        n += b
    model.train()
    return {k: v / n for k, v in tot.items()}


def train(
    cfg: PolicyConfig,
    data_path: str | Path | list,
    progress: bool = True,
    init: tuple[ChunkPolicy, dict] | None = None,
) -> tuple[ChunkPolicy, dict, dict]:
    """Train on one or more npz datasets (episode ids must not collide). Returns (model in eval
    mode, normalisation stats, metrics). `init` = (model, stats): fine-tune that model, keeping
    its normalisation stats (DAgger iterations), instead of starting from scratch."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    np.random.seed(cfg.seed)
    paths = data_path if isinstance(data_path, list | tuple) else [data_path]
    parts = [load_npz(p, cfg.chunk_size, cfg.action_relative) for p in paths]
    data = BCData(
        *(np.concatenate([getattr(d, f) for d in parts]) for f in ("obs", "target", "suction", "episode"))
    )
    tr, va = split_episodes(data, cfg.val_fraction, cfg.seed)
    st = stats(tr, cfg.std_floor) if init is None else init[1]
    o_tr, a_tr, s_tr = _tensors(tr, st)
    o_va, a_va, s_va = _tensors(va, st)
    model = ChunkPolicy(cfg) if init is None else init[0].train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = cfg.epochs * max(1, math.ceil(len(o_tr) / cfg.batch_size))
    budget_s = cfg.max_minutes * 60
    gen = torch.Generator().manual_seed(cfg.seed)
    initial_val = evaluate(model, o_va, a_va, s_va, cfg, st)["loss"]
    t0, step, history = time.monotonic(), 0, []
    stopped_early = False
    bar = tqdm(range(cfg.epochs), desc="policy BC", disable=not progress)
    for epoch in bar:
        perm = torch.randperm(len(o_tr), generator=gen)
        for i in range(0, len(o_tr), cfg.batch_size):
            # progress = whichever runs out first, steps or the time budget, so the schedule
            # always finishes annealed: 5% warm-up, then cosine to zero
            prog = max(step / total, (time.monotonic() - t0) / budget_s)
            if prog >= 1.0:
                break
            for g in opt.param_groups:
                g["lr"] = cfg.lr * (
                    prog / 0.05 if prog < 0.05 else 0.5 * (1 + math.cos(math.pi * (prog - 0.05) / 0.95))
                )
            idx = perm[i : i + cfg.batch_size]
            loss, _ = losses(model, o_tr[idx], a_tr[idx], s_tr[idx], cfg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
        val = evaluate(model, o_va, a_va, s_va, cfg, st)
        history.append({"epoch": epoch + 1, "step": step, "val_loss": round(val["loss"], 5)})
        bar.set_postfix(train=f"{loss.item():.4f}", val=f"{val['loss']:.4f}", step=step)
        if step < (epoch + 1) * math.ceil(len(o_tr) / cfg.batch_size):  # the time budget ran out
            stopped_early = epoch + 1 < cfg.epochs
            break
    model.eval()
    tr_m = evaluate(model, o_tr, a_tr, s_tr, cfg, st)
    va_m = evaluate(model, o_va, a_va, s_va, cfg, st)
    metrics = {
        "train_loss": round(tr_m["loss"], 5),
        "val_loss": round(va_m["loss"], 5),
        "val_loss_untrained": round(initial_val, 5),
        "val_joint_mae_rad": round(va_m["joint_mae_rad"], 5),
        "val_suction_acc": round(va_m["suction_acc"], 4),
        "train_samples": len(o_tr),
        "val_samples": len(o_va),
        "train_episodes": int(len(np.unique(tr.episode))),
        "val_episodes": int(len(np.unique(va.episode))),
        "epochs_run": len(history),
        "steps": step,
        "stopped_at_time_cap": stopped_early,
        "train_seconds": round(time.monotonic() - t0, 1),
        "val_loss_history": history,
        "params": sum(p.numel() for p in model.parameters()),
    }
    return model, st, metrics


def main(argv: list[str] | None = None) -> int:
    from s1s2_training.policy.export import save_policy

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, type=Path, help="npz in the policy schema (see data.py)")
    ap.add_argument("--out", required=True, type=Path, help="directory for policy.onnx + policy.json")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    cfg = PolicyConfig(seed=args.seed, **({"epochs": args.epochs} if args.epochs else {}))
    model, st, metrics = train(cfg, args.data)
    provenance = {
        "data": str(args.data),
        "command": "python -m s1s2_training.policy.train",
        "seed": args.seed,
    }
    meta = save_policy(model, st, args.out, trained=True, provenance=provenance, metrics=metrics)
    print(json.dumps({k: v for k, v in meta["metrics"].items() if k != "val_loss_history"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
