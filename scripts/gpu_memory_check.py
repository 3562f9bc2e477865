"""`s1s2 memory` against a real QLoRA training step at LLM scale, on a CUDA GPU.

    python scripts/gpu_memory_check.py OUT_DIR            # on a machine with CUDA (bitsandbytes)
    python scripts/gpu_memory_check.py OUT_DIR --tiny     # a smoke test of the code path on a CPU
    python scripts/gpu_memory_check.py RUN.json --compare # here: that run against the current estimator

A Llama with TinyLlama-1.1B's shape (hidden 2048, 22 layers, 32 heads, 4 KV heads, MLP 5632, vocab
32000) and random weights (no model hub here: the memory depends on shapes, not values) is saved
in bf16, loaded 4-bit NF4 + double quantisation (compute bf16), prepared for k-bit training, given
LoRA r = 64 on q/k/v/o and trained one step with bitsandbytes' paged 8-bit AdamW on batch x seq
random tokens, with and without gradient checkpointing. Measured with torch.cuda.memory_allocated /
max_memory_allocated and the optimizer's own tensors; compared with `s1s2 memory` for the same
job (config.json, method qlora, bf16, paged_adamw8, rank, targets, batch, seq). Writes
OUT_DIR/gpu_memory_check.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


def run(out: Path, tiny: bool, batch: int, seq: int, rank: int) -> dict:
    import bitsandbytes as bnb
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig, LlamaConfig, LlamaForCausalLM

    from s1s2.memory import estimate, shape_from_config

    cuda = torch.cuda.is_available()
    dev = "cuda" if cuda else "cpu"
    if tiny:
        cfg = LlamaConfig(hidden_size=256, intermediate_size=704, num_hidden_layers=2, num_attention_heads=4,
                          num_key_value_heads=2, vocab_size=1000, tie_word_embeddings=False)  # fmt: skip
    else:
        cfg = LlamaConfig(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
                          num_key_value_heads=4, vocab_size=32000, tie_word_embeddings=False)  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix="llama-"))
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).to(torch.bfloat16).save_pretrained(str(tmp))
    shape = shape_from_config(tmp / "config.json")
    alloc = (lambda: torch.cuda.memory_allocated()) if cuda else (lambda: 0)  # noqa: E731
    res: dict = {"model": cfg.to_dict() | {"params_config": shape.params}, "batch": batch, "seq": seq,
                 "rank": rank, "targets": list(TARGETS), "device": torch.cuda.get_device_name(0) if cuda else "cpu"}  # fmt: skip
    for ckpt in (False, True):
        if cuda:
            torch.cuda.empty_cache()
        a0 = alloc()
        q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=torch.bfloat16)  # fmt: skip
        model = AutoModelForCausalLM.from_pretrained(str(tmp), quantization_config=q, dtype=torch.bfloat16,
                                                     device_map={"": dev})  # fmt: skip
        loaded = alloc() - a0
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=ckpt)
        prepared = alloc() - a0  # peft casts the non-quantised parameters to fp32 here
        pm = get_peft_model(model, LoraConfig(r=rank, lora_alpha=16, target_modules=list(TARGETS),
                                              lora_dropout=0.0, task_type="CAUSAL_LM"))  # fmt: skip
        with_lora = alloc() - a0
        pm.train()  # from_pretrained returns eval mode, where transformers skips gradient checkpointing
        params = [p for p in pm.parameters() if p.requires_grad]
        opt = bnb.optim.PagedAdamW8bit(params, lr=1e-4)
        x = torch.randint(0, cfg.vocab_size, (batch, seq), device=dev, generator=None)
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        before = alloc()
        t0 = time.perf_counter()
        loss = pm(input_ids=x, labels=x).loss
        loss.backward()
        if cuda:
            torch.cuda.synchronize()
        peak_fwd_bwd = (torch.cuda.max_memory_allocated() - before) if cuda else 0
        grads = sum(p.grad.numel() * p.grad.element_size() for p in params if p.grad is not None)
        opt.step()
        if cuda:
            torch.cuda.synchronize()
        step_s = time.perf_counter() - t0
        states = [t for st in opt.state.values() for t in st.values() if torch.is_tensor(t) and t.numel() > 1]
        paged = [t for t in states if getattr(t, "is_paged", False)]
        # peft keeps LoRA matrices (so their gradients) in fp32 (autocast_adapter_dtype); compute in bf16
        e = estimate(
            shape, "qlora", "fp32", "paged_adamw8", rank, TARGETS, batch, seq, ckpt, compute_dtype="bf16"
        )
        res["checkpointing" if ckpt else "plain"] = {
            "measured": {
                "weights_loaded_bytes": int(loaded),
                "weights_after_prepare_bytes": int(prepared),
                "weights_with_lora_bytes": int(with_lora),
                "trainable_parameters": int(sum(p.numel() for p in params)),
                "gradients_bytes": int(grads),
                "optimizer_state_bytes": int(sum(t.numel() * t.element_size() for t in states)),
                "optimizer_state_tensors": len(states),
                "optimizer_paged_tensors": len(paged),
                "optimizer_paged_bytes": int(sum(t.numel() * t.element_size() for t in paged)),
                "peak_fwd_bwd_minus_before_bytes": int(peak_fwd_bwd),
                "step_s": round(step_s, 3),
                "loss": float(loss.detach()),
            },
            "estimate": e.as_dict()
            | {
                "weights_bytes": e.weights,
                "gradients_bytes": e.gradients,
                "optimizer_bytes": e.optimizer,
                "activations_bytes": e.activations,
                "optimizer_pageable_bytes": e.optimizer_pageable_bytes,
            },  # fmt: skip
        }
        print(json.dumps(res["checkpointing" if ckpt else "plain"], default=str), flush=True)
        del pm, model, opt, loss, params, states, paged
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_memory_check.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
    return res


def compare(measured_json: Path) -> dict:
    """The GPU's measurements against the estimator as it is now (it changed after the run:
    results/gpu_memory_check.json records both)."""
    from s1s2.memory import ModelShape, estimate, llama_like

    m = json.loads(Path(measured_json).read_text())
    c = m["model"]
    shape = llama_like(0.0, c["hidden_size"], c["num_hidden_layers"], c["num_attention_heads"],
                       c["intermediate_size"], c["num_key_value_heads"])  # fmt: skip
    shape = ModelShape(m["model"]["params_config"], shape.hidden, shape.layers, shape.heads, shape.linear,
                       vocab=c["vocab_size"])  # fmt: skip
    rows = {}
    for mode in ("plain", "checkpointing"):
        r = m[mode]["measured"]
        e = estimate(shape, "qlora", "fp32", "paged_adamw8", m["rank"], tuple(m["targets"]), m["batch"], m["seq"],
                     mode == "checkpointing", compute_dtype="bf16")  # fmt: skip
        lora = e.trainable * 4
        pairs = {
            "weights (after peft's k-bit preparation)": (e.weights - lora, r["weights_after_prepare_bytes"]),
            "LoRA matrices": (lora, r["weights_with_lora_bytes"] - r["weights_after_prepare_bytes"]),
            "gradients": (e.gradients, r["gradients_bytes"]),
            "optimizer states": (e.optimizer, r["optimizer_state_bytes"]),
            "of which paged": (e.optimizer_pageable_bytes, r["optimizer_paged_bytes"]),
            "activations (peak of forward + backward)": (e.activations, r["peak_fwd_bwd_minus_before_bytes"]),
        }
        rows[mode] = {k: {"estimate": est, "measured": mea, "ratio": mea / est if est else None}
                      for k, (est, mea) in pairs.items()}  # fmt: skip
    out = {"measured": m, "comparison": rows}
    for mode, rs in rows.items():
        print(f"{mode}:")
        for k, v in rs.items():
            print(f"  {k:45s} est {v['estimate'] / 1e6:10.1f} MB  measured {v['measured'] / 1e6:10.1f} MB  "
                  f"ratio {v['ratio']:.2f}")  # fmt: skip
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="scripts/gpu_memory_check.py", description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="output folder (with --compare: the GPU run's JSON)")
    ap.add_argument(
        "--compare", action="store_true", help="compare a GPU run's JSON with the current estimator"
    )
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--rank", type=int, default=64)
    a = ap.parse_args(argv)
    if a.compare:
        res = compare(a.out)
        (ROOT / "results" / "gpu_memory_check.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
        return 0
    run(a.out, a.tiny, a.batch, a.seq, a.rank)
    return 0


if __name__ == "__main__":
    sys.exit(main())
