"""Behaviour cloning of a System 1 policy on expert-labelled chunks (CPU).

Loss (per policy class, see modeling.py): L1 on normalised tip offsets (ACT, MLP) or the
flow-matching velocity MSE (flow), plus `suction_loss_weight` x BCE on the K suction logits.
Validation holds out whole episodes. The LR schedule (warm-up, cosine to zero) runs on optimiser
steps only, so a seeded build gives the same model on any machine; the wall-clock cap is a safety
net that stops training early (recorded as `stopped_by_time_cap`: then the run is not
reproducible and ends before the schedule has annealed).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from tqdm import tqdm

from fast_policy.spec import obs_dim
from s1s2_training.policy.configuration import PolicyConfigBase, TrainConfig
from s1s2_training.policy.modeling import PolicyBase, make_model

PHASE_NAMES = ("idle", "approach", "descend", "lift", "transport", "release")


def compute_stats(obs: np.ndarray, offsets: np.ndarray, std_floor: float) -> dict[str, np.ndarray]:
    return {
        "obs_mean": obs.mean(0).astype(np.float32),
        "obs_std": np.maximum(obs.std(0), std_floor).astype(np.float32),
        "act_mean": offsets.mean(0).astype(np.float32),
        "act_std": np.maximum(offsets.std(0), std_floor).astype(np.float32),
    }


def split_episodes(episode: np.ndarray, val_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of validation rows: whole episodes held out."""
    eps = np.unique(episode)
    if len(eps) < 2:
        raise ValueError(f"need at least 2 episodes to hold some out for validation, got {len(eps)}")
    rng = np.random.default_rng(seed)
    n_val = max(1, int(round(len(eps) * val_fraction)))
    return np.isin(episode, rng.choice(eps, size=n_val, replace=False))


def _tensors(arrays: dict, mask: np.ndarray):
    obs = torch.from_numpy(np.ascontiguousarray(arrays["obs"][mask], dtype=np.float32))
    act = arrays["act"][mask]
    off = torch.from_numpy(np.ascontiguousarray(act[..., :3], dtype=np.float32))
    suc = torch.from_numpy((act[..., 3] > 0).astype(np.float32))
    phase = torch.from_numpy(arrays["phase"][mask].astype(np.int64))
    return obs, off, suc, phase


@torch.no_grad()
def evaluate(model: PolicyBase, obs, off, suc, phase, aim: int = -1) -> dict:
    """Offline metrics on held-out rows: the deterministic inference output vs the expert."""
    was = model.training
    model.eval()
    errs, sacc, loss_sum, n = [], [], 0.0, 0
    for i in range(0, len(obs), 4096):
        o = obs[i : i + 4096]
        out = model(o)
        errs.append(torch.linalg.norm(out[:, aim, :3] - off[i : i + 4096, aim], dim=-1))
        sacc.append(((out[:, 0, 3] > 0).float() == suc[i : i + 4096, 0]).float())
        loss, _ = model.loss(o, off[i : i + 4096], suc[i : i + 4096])
        loss_sum += float(loss) * len(o)
        n += len(o)
    err, acc = torch.cat(errs), torch.cat(sacc)
    m = {
        "loss": loss_sum / max(n, 1),
        "aim_err_cm_mean": float(err.mean() * 100),
        "aim_err_cm_median": float(err.median() * 100),
        "suction_acc": float(acc.mean()),
    }
    for p in (1, 2):  # approach, descend: where centimetres matter
        sel = phase == p
        if sel.any():
            m[f"aim_err_cm_median_{PHASE_NAMES[p]}"] = float(err[sel].median() * 100)
    model.train(was)
    return {k: round(v, 5) for k, v in m.items()}


def train(
    model_cfg: PolicyConfigBase,
    train_cfg: TrainConfig,
    arrays: dict,
    init: PolicyBase | None = None,
    progress: bool = True,
    desc: str = "train",
) -> tuple[PolicyBase, dict]:
    """Fit a policy on `arrays` (data.ARRAYS layout). `init`: fine-tune that model (its
    normalisation statistics are kept: DAgger rounds). Returns (model in eval mode, metrics)."""
    torch.manual_seed(train_cfg.seed)
    torch.set_num_threads(train_cfg.threads)
    n_obs = obs_dim(model_cfg.spec_version)
    if arrays["obs"].shape[1] != n_obs or arrays["act"].shape[1] != model_cfg.chunk_size:
        raise ValueError(
            f"dataset shapes obs {arrays['obs'].shape}, act {arrays['act'].shape} do not match spec "
            f"v{model_cfg.spec_version}'s obs_dim {n_obs} and chunk_size {model_cfg.chunk_size}"
        )
    is_val = split_episodes(arrays["episode"], train_cfg.val_fraction, train_cfg.seed)
    o_tr, a_tr, s_tr, p_tr = _tensors(arrays, ~is_val)
    o_va, a_va, s_va, p_va = _tensors(arrays, is_val)
    if init is None:
        model = make_model(model_cfg)
        with torch.no_grad():
            feats = model.prep(o_tr).numpy()
        model.norm.set_stats(compute_stats(feats, a_tr.numpy(), model_cfg.std_floor))
    else:
        model = init
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)
    n = len(o_tr)
    steps_per_epoch = max(1, n // train_cfg.batch_size)
    total = train_cfg.max_steps
    budget = train_cfg.max_minutes * 60.0
    gen = torch.Generator().manual_seed(train_cfg.seed)
    t0, c0, step, history = time.monotonic(), time.process_time(), 0, []
    time_capped = False
    bar = tqdm(total=100, desc=desc, unit="%", disable=not progress, dynamic_ncols=True,
               bar_format="{l_bar}{bar}| {n:.0f}/{total} [{elapsed}<{remaining}{postfix}]")  # fmt: skip
    shown, done, epoch = 0, False, 0
    while not done:
        perm = torch.randperm(n, generator=gen)
        for i in range(steps_per_epoch):
            prog = step / total  # the schedule runs on steps only: a build is reproducible
            if prog >= 1.0 or time.monotonic() - t0 > budget:
                time_capped = step < total  # safety net hit: recorded, result depends on the machine
                done = True
                break
            w = train_cfg.warmup_frac
            scale = prog / w if prog < w else 0.5 * (1 + math.cos(math.pi * (prog - w) / (1 - w)))
            for g in opt.param_groups:
                g["lr"] = train_cfg.lr * scale
            idx = perm[i * train_cfg.batch_size : (i + 1) * train_cfg.batch_size]
            loss, parts = model.loss(o_tr[idx], a_tr[idx], s_tr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), train_cfg.grad_clip)
            opt.step()
            step += 1
            if int(prog * 100) > shown:
                bar.update(int(prog * 100) - shown)
                shown = int(prog * 100)
                bar.set_postfix(loss=f"{loss.item():.4f}", ep=epoch, step=step)
        epoch += 1
        if epoch % 5 == 0 or done:
            history.append(
                {"epoch": epoch, "step": step, "val": evaluate(model, o_va, a_va, s_va, p_va)["loss"]}
            )
    bar.update(100 - shown)
    bar.close()
    model.eval()
    val = evaluate(model, o_va, a_va, s_va, p_va)
    metrics = {
        "val": val,
        "train_rows": int(n),
        "val_rows": int(len(o_va)),
        "train_episodes": int(len(np.unique(arrays["episode"][~is_val]))),
        "val_episodes": int(len(np.unique(arrays["episode"][is_val]))),
        "epochs": epoch,
        "steps": step,
        "stopped_by_time_cap": time_capped,
        "train_seconds": round(time.monotonic() - t0, 1),
        "train_cpu_seconds": round(time.process_time() - c0, 1),
        "history": history,
        "params": int(sum(p.numel() for p in model.parameters())),
    }
    return model, metrics


def stats_of(model: PolicyBase) -> dict[str, np.ndarray]:
    nm = model.norm
    return {k: getattr(nm, k).detach().numpy().copy() for k in ("obs_mean", "obs_std", "act_mean", "act_std")}
