"""The memory of the project's own QLoRA fine-tune, measured tensor by tensor, against `s1s2 memory`'s
estimate for the same job.

    python -m s1s2_training.vlm.memcheck [--strategy llm] [--rank 8] [--batch-size 16] [--steps 3]

Runs a few steps of `s1s2 planner finetune`'s own Trainer (make_trainer: NF4 base, peft LoRA, the
8-bit AdamW the CPU run uses) and measures, from the live tensors:
- weights: the 4-bit linears (packed weights + quantisation state), the rest of the base, the LoRA
  matrices;
- gradients: the trainable parameters' .grad just before the optimizer step;
- optimizer states: every tensor in the optimizer's state after a step;
- activations: the tensors autograd saves for the backward pass during one forward (unique
  storages, parameters excluded; torch.autograd.graph.saved_tensors_hooks), the largest of the steps.
Also the process's peak RSS growth, which adds the allocator's and the libraries' own overhead.

No GPU here: these are CPU tensors in the fine-tune's compute dtype (fp32), the same byte counts a
GPU run in fp32 would allocate for them (a CUDA run would read torch.cuda.max_memory_allocated).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

# `s1s2 memory` names of the sim model's linear layers that each strategy's LoRA targets.
ESTIMATE_TARGETS = {
    "llm": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "vision": ("vision_q_proj", "vision_k_proj", "vision_v_proj", "vision_out_proj"),
    "projector": ("projector", "projector_2"),
}


def _storage_bytes(tensors) -> int:
    seen, total = set(), 0
    for t in tensors:
        if t is None:
            continue
        s = t.untyped_storage()
        if s.data_ptr() not in seen:
            seen.add(s.data_ptr())
            total += s.nbytes()
    return total


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def measure(cfg, base_dir, domain_data: dict, daylight_data: dict | None) -> dict:
    """Run cfg.steps steps of the fine-tune and measure its tensors (see the module doc)."""
    import torch
    from transformers import TrainerCallback

    from .finetune import make_trainer

    rss0 = _rss_mb()
    trainer, peft_model, trainable, optim, work = make_trainer(
        cfg, Path(base_dir), domain_data, daylight_data
    )
    train_params = [p for p in peft_model.parameters() if p.requires_grad]
    train_ptrs = {p.untyped_storage().data_ptr() for p in train_params}

    quant, other = [], []
    for mod in peft_model.modules():
        w = getattr(mod, "weight", None)
        qs = getattr(w, "quant_state", None)
        if qs is not None:  # a bitsandbytes Linear4bit: packed weight + absmax (+ double-quant state)
            s2 = getattr(qs, "state2", None)
            quant += [w, qs.absmax, getattr(qs, "code", None), getattr(s2, "absmax", None),
                      getattr(s2, "code", None)]  # fmt: skip
    quant_ptrs = {t.untyped_storage().data_ptr() for t in quant if t is not None}
    for t in [*peft_model.parameters(), *peft_model.buffers()]:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in quant_ptrs and ptr not in train_ptrs:
            other.append(t)
    param_ptrs = quant_ptrs | train_ptrs | {t.untyped_storage().data_ptr() for t in other}
    out = {
        "weights_4bit_linears_bytes": _storage_bytes(quant),
        "weights_rest_bytes": _storage_bytes(other),
        "weights_lora_bytes": _storage_bytes(train_params),
        "trainable_parameters": int(trainable),
        "optimizer": optim,
    }

    acts: list[int] = []
    step_saved: dict[int, int] = {}

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in param_ptrs:
            step_saved[s.data_ptr()] = s.nbytes()
        return t

    orig = trainer.compute_loss

    def compute_loss(model, inputs, **kw):
        step_saved.clear()
        out.setdefault("batch_shapes", {k: list(v.shape) for k, v in inputs.items() if hasattr(v, "shape")})
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = orig(model, inputs, **kw)
        acts.append(sum(step_saved.values()))
        return loss

    trainer.compute_loss = compute_loss
    grads: list[int] = []
    states: list[int] = []

    class Probe(TrainerCallback):
        def on_pre_optimizer_step(self, args, state, control, **kw):
            grads.append(_storage_bytes(p.grad for p in train_params))

        def on_step_end(self, args, state, control, **kw):
            opt = trainer.optimizer
            st = getattr(opt, "state", None) or getattr(getattr(opt, "optimizer", None), "state", {})
            states.append(_storage_bytes(t for s in st.values() for t in s.values() if torch.is_tensor(t)))

    trainer.add_callback(Probe())
    t0 = time.time()
    trainer.train()
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    out.update({
        "gradients_bytes": max(grads) if grads else None,
        "optimizer_state_bytes": max(states) if states else None,
        "activations_bytes": max(acts) if acts else None,
        "activations_per_step_bytes": acts,
        "steps": cfg.steps,
        "seconds": round(time.time() - t0, 1),
        "process_peak_rss_growth_mb": round(_rss_mb() - rss0, 1),
    })  # fmt: skip
    return out


def compare(measured: dict, cfg, base_dir) -> dict:
    """`s1s2 memory`'s estimate for the same job: the model's config, the strategy's targets, the
    batch, the language model's sequence length and the 8-bit AdamW."""
    from s1s2.memory import estimate, shape_from_config

    from .finetune import strategy_parts

    targets = tuple(t for p in strategy_parts(cfg.strategy) for t in ESTIMATE_TARGETS[p])
    shape = shape_from_config(Path(base_dir) / "config.json")
    seq = int(measured["batch_shapes"]["input_ids"][1])
    opt = "adamw8" if "8bit" in measured["optimizer"] else "adamw32"
    # the CPU fine-tune computes in fp32 (nf4_config(torch.float32)); LoRA matrices are fp32 too
    # the finetune's loss covers the answer tokens only (log-probabilities at those positions)
    answer = int(measured["batch_shapes"]["answer"][1])
    e = estimate(shape, "qlora", "fp32", opt, cfg.rank, targets, cfg.batch_size, seq,
                 cfg.gradient_checkpointing, compute_dtype="fp32", loss_tokens=answer)  # fmt: skip
    m_weights = (
        measured["weights_4bit_linears_bytes"]
        + measured["weights_rest_bytes"]
        + measured["weights_lora_bytes"]
    )
    rows = {
        "weights": (e.weights, m_weights),
        "gradients": (e.gradients, measured["gradients_bytes"]),
        "optimizer": (e.optimizer, measured["optimizer_state_bytes"]),
        "activations": (e.activations, measured["activations_bytes"]),
    }
    rows["total"] = (e.total, sum(m for _, m in rows.values() if m))
    return {
        "estimate_command": (
            f"s1s2 memory --config {base_dir}/config.json --method qlora --dtype fp32 --compute-dtype fp32 --optimizer {opt} "
            f"--rank {cfg.rank} --targets {','.join(targets)} --batch {cfg.batch_size} --seq {seq} --loss-tokens {answer}"
            + (" --checkpointing" if cfg.gradient_checkpointing else "")
        ),
        "rows": {
            k: {
                "estimate_bytes": est,
                "measured_bytes": m,
                "measured_over_estimate": (m / est if est and m else None),
            }
            for k, (est, m) in rows.items()
        },  # fmt: skip
        "estimate_trainable": e.trainable,
        "notes": e.notes,
    }


def table(res: dict) -> list[str]:
    lines = ["| part | estimate (bytes) | measured (bytes) | measured / estimate |", "|---|---|---|---|"]
    for k, r in res["comparison"]["rows"].items():
        ratio = r["measured_over_estimate"]
        est = "n/a" if r["estimate_bytes"] is None else f"{r['estimate_bytes']:,.0f}"
        lines.append(
            f"| {k} | {est} | {r['measured_bytes']:,} | {'n/a' if ratio is None else f'{ratio:.2f}'} |"
        )
    return lines


def run(strategy="llm", rank=8, batch_size=16, steps=3, domain="warm_tungsten", base="models/sim_vlm",
        work_dir="runs/vlm_data", checkpointing=False, episode_s=40.0) -> dict:  # fmt: skip
    from s1s2 import resolve_path

    from . import data as dm
    from .finetune import FinetuneConfig

    cfg = FinetuneConfig(strategy=strategy, rank=rank, batch_size=batch_size, steps=steps, warmup_steps=0,
                         progress=False, gradient_checkpointing=checkpointing)  # fmt: skip
    base_dir = resolve_path(base)
    size = int(json.loads((base_dir / "s1s2_vlm.json").read_text()).get("image_size", 128))
    wd = resolve_path(work_dir)
    dom = dm.frames_of(dm.domain_train_specs(domain, 2, episode_s=episode_s), size, wd, 1, progress=False)
    day = dm.frames_of(dm.domain_train_specs("daylight", 2, episode_s=episode_s), size, wd, 1, progress=False)
    measured = measure(cfg, base_dir, dom, day)
    res = {
        "config": {
            "strategy": strategy,
            "rank": rank,
            "batch_size": batch_size,
            "steps": steps,
            "domain": domain,
            "base": base,
        },  # fmt: skip
        "measured": measured,
    }
    res["comparison"] = compare(measured, cfg, base)
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m s1s2_training.vlm.memcheck", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--strategy", default="llm", help="llm | vision | projector | a+b (the finetune's)")
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--gradient-checkpointing", action="store_true")
    ap.add_argument("--episode-s", type=float, default=40.0, help="simulated seconds per data episode")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", default="", help="also write the result as JSON to this file")
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    res = run(
        a.strategy,
        a.rank,
        a.batch_size,
        a.steps,
        checkpointing=a.gradient_checkpointing,
        episode_s=a.episode_s,
    )
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=1, default=str) + "\n")
    if a.json:
        print(json.dumps(res, indent=1, default=str))
    else:
        print(f"estimate: {res['comparison']['estimate_command']}")
        print("\n".join(table(res)))
        print(f"process peak RSS growth: {res['measured']['process_peak_rss_growth_mb']} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
