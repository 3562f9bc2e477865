"""QLoRA on a CUDA GPU: the checks a CPU-only machine cannot make, in one short run.

    python scripts/gpu_qlora_check.py prepare DIR          # here: render the frames it uses (npz)
    python scripts/gpu_qlora_check.py gpu DIR OUT          # on the GPU machine (bitsandbytes CUDA)
    python scripts/gpu_qlora_check.py compare DIR OUT      # here: the GPU's results against this CPU

On the GPU (`gpu`), with the project's own code paths (finetune.make_trainer, memcheck.measure):
1. the memory of the fine-tune (LLM q/k/v/o LoRA r = 8, batch 16) measured tensor by tensor AND as
   torch.cuda.max_memory_allocated, against `s1s2 memory`'s estimate, with and without gradient
   checkpointing;
2. a full fine-tune with the shipped warm_tungsten adapter's recipe (projector+vision, r = 8,
   lambda = 0.1, 600 steps x 16) with `--optim auto`, which picks bitsandbytes' paged 8-bit AdamW on
   CUDA: the optimizer class, whether its states are paged, time per step; the adapter is saved;
3. LoRA with B = 0 on the CUDA NF4 base gives exactly the base output;
4. the NF4 base's logits on CUDA (bitsandbytes' CUDA kernels) for 64 held-out frames, saved.
`compare` evaluates the GPU-trained adapter here through the CPU planner path (held-out frames,
the same measure() the shipped adapters' manifests come from) and compares the CUDA logits with
this CPU's NF4 reference path.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "src" / "vlm_planner", ROOT / "src" / "conveyor_sim", ROOT / "src" / "fast_policy"):
    sys.path.insert(0, str(p))

DOMAIN = "warm_tungsten"
BASE = ROOT / "models" / "sim_vlm"
N_LOGIT_FRAMES = 64


def prepare(data_dir: Path) -> None:
    """Training frames (4 episodes of the domain and of daylight, half dense) and a held-out
    daylight episode for the logits comparison, as compressed npz."""
    import numpy as np

    from s1s2_training.vlm import data as dm

    size = int(json.loads((BASE / "s1s2_vlm.json").read_text()).get("image_size", 128))
    data_dir.mkdir(parents=True, exist_ok=True)
    sets = {
        "domain_train": dm.domain_train_specs(DOMAIN, 4),
        "daylight_train": dm.domain_train_specs("daylight", 4),
        "logit_frames": dm.domain_test_specs("daylight", 2, 0)[:1],
    }
    for name, specs in sets.items():
        d = dm.frames_of(specs, size, ROOT / "runs" / "vlm_data")
        if name == "logit_frames":
            d = dm.subset(d, slice(0, N_LOGIT_FRAMES))
        np.savez_compressed(data_dir / f"{name}.npz", **d)
        print(name, len(d["label"]), "frames", (data_dir / f"{name}.npz").stat().st_size // 1024, "KiB")


def _logits(model, processor, frames: dict):
    """Teacher-forced logits over the answer positions and the prompt-pooled hidden state."""
    import torch

    from s1s2_training.vlm.finetune import FinetuneConfig
    from s1s2_training.vlm.pretrain import Collator, FrameDataset, Prompt

    prompt = Prompt(processor, FinetuneConfig().instruction)
    ds = FrameDataset(frames, prompt)
    batch = Collator(prompt)([ds[i] for i in range(len(ds))])
    dev = next(model.parameters()).device
    with torch.no_grad():
        out = model.model(
            input_ids=batch["input_ids"].to(dev),
            attention_mask=batch["attention_mask"].to(dev),
            pixel_values=batch["pixel_values"].to(dev),
        )
        h = out.last_hidden_state
        n = len(prompt.ids)
        logits = model.lm_head(h[:, n - 1 :]).float()
        pooled = h[:, :n].float().mean(1)
    return logits.cpu().numpy(), pooled.cpu().numpy(), batch["attention_mask"][:, n - 1 :].numpy()


def _load_nf4(device: str):
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from vlm_planner.model import nf4_config, pin_4bit_reference_kernel

    model = AutoModelForImageTextToText.from_pretrained(
        str(BASE), local_files_only=True, quantization_config=nf4_config(torch.float32),
        dtype=torch.float32, device_map={"": device},
    ).eval()  # fmt: skip
    pin_4bit_reference_kernel(model)
    return model, AutoProcessor.from_pretrained(str(BASE), local_files_only=True, backend="pil")


def gpu(data_dir: Path, out: Path) -> None:
    import bitsandbytes as bnb
    import numpy as np
    import peft
    import torch
    import transformers

    from s1s2_training.vlm import data as dm
    from s1s2_training.vlm import memcheck
    from s1s2_training.vlm.finetune import FinetuneConfig, make_trainer

    dry = os.environ.get("GPU_CHECK_DRY_RUN") == "1"  # exercise the code paths on a CPU, 2 steps
    if not dry:
        assert torch.cuda.is_available(), "no CUDA device"
    cuda = torch.cuda.is_available()
    out.mkdir(parents=True, exist_ok=True)
    res: dict = {
        "env": {
            "gpu": torch.cuda.get_device_name(0) if cuda else "none (dry run)",
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "bitsandbytes": bnb.__version__,
            "transformers": transformers.__version__,
            "peft": peft.__version__,
        }  # fmt: skip
    }
    print(json.dumps(res["env"]), flush=True)
    dom, day = dm.load(data_dir / "domain_train.npz"), dm.load(data_dir / "daylight_train.npz")

    # 1. memory, measured both ways, against the estimate
    res["memory"] = {}
    for ckpt in (False, True):
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        base_alloc = torch.cuda.memory_allocated() if cuda else 0
        cfg = FinetuneConfig(strategy="llm", rank=8, batch_size=16, steps=3, warmup_steps=0, progress=False,
                             gradient_checkpointing=ckpt)  # fmt: skip
        m = memcheck.measure(cfg, BASE, dom, day)
        m["cuda_peak_allocated_bytes"] = int(torch.cuda.max_memory_allocated() - base_alloc) if cuda else None
        cmp = memcheck.compare(m, cfg, BASE)
        res["memory"]["checkpointing" if ckpt else "plain"] = {"measured": m, "comparison": cmp}
        print("memory", "checkpointing" if ckpt else "plain", "cuda peak", m["cuda_peak_allocated_bytes"],
              "\n".join(memcheck.table({"comparison": cmp})), flush=True)  # fmt: skip

    # 2. the shipped warm_tungsten recipe on CUDA, --optim auto
    cfg = FinetuneConfig(strategy="projector+vision", rank=8, alpha=16, steps=2 if dry else 600, batch_size=16,
                         mix=0.1, progress=False)  # fmt: skip
    trainer, peft_model, trainable, optim, work = make_trainer(cfg, BASE, dom, day)
    t0 = time.time()
    result = trainer.train()
    if cuda:
        torch.cuda.synchronize()
    train_s = time.time() - t0
    opt = trainer.optimizer
    inner = getattr(opt, "optimizer", opt)
    states = [t for st in inner.state.values() for t in st.values() if torch.is_tensor(t) and t.numel() > 1]
    peft_model.save_pretrained(str(out / "adapter_gpu"))
    losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
    res["finetune"] = {
        "recipe": "projector+vision r=8 alpha=16 lambda=0.1 600 steps x 16 (the shipped warm_tungsten's)",
        "frames": {"domain": int(len(dom["label"])), "daylight": int(len(day["label"]))},
        "optim_arg": optim,
        "optimizer_class": f"{type(inner).__module__}.{type(inner).__name__}",
        # HF maps paged_adamw_8bit to bnb AdamW(optim_bits=8, is_paged=True); bnb pages a state
        # buffer only from 1e5 elements (Optimizer8bit.get_state_buffer): the sim model's LoRA
        # matrices (1,024 elements) stay in plain device memory.
        "optimizer_is_paged": bool(getattr(inner, "is_paged", False)),
        "state_tensors": len(states),
        "state_tensors_paged": sum(bool(getattr(t, "is_paged", False)) for t in states),
        "train_s": round(train_s, 2),
        "s_per_step": round(train_s / cfg.steps, 4),
        "train_loss": round(float(result.training_loss), 4),
        "loss_first_last": [round(float(losses[0]), 4), round(float(losses[-1]), 4)] if losses else [],
        "trainable_parameters": int(trainable),
        "device": trainer.args.device.type,
    }
    print(json.dumps(res["finetune"]), flush=True)
    del trainer, peft_model, opt, inner, states
    if cuda:
        torch.cuda.empty_cache()

    # 3. B = 0 on the CUDA NF4 base is exactly the base; 4. the CUDA logits for the comparison
    frames = dm.load(data_dir / "logit_frames.npz")
    model, proc = _load_nf4("cuda" if cuda else "cpu")
    logits, pooled, mask = _logits(model, proc, frames)
    np.savez_compressed(out / "logits_cuda.npz", logits=logits, pooled=pooled, mask=mask)
    from peft import LoraConfig, get_peft_model

    from s1s2_training.vlm.finetune import target_regex

    pm = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=target_regex("all")))
    l0, p0, _ = _logits(pm.base_model.model, proc, frames)
    res["b_zero_cuda"] = {
        "max_abs_logit_diff": float(np.abs(l0 - logits).max()),
        "max_abs_pooled_diff": float(np.abs(p0 - pooled).max()),
        "bit_identical": bool(np.array_equal(l0, logits) and np.array_equal(p0, pooled)),
    }
    print(json.dumps(res["b_zero_cuda"]), flush=True)
    (out / "gpu_results.json").write_text(json.dumps(res, indent=1, default=str) + "\n")


def compare(data_dir: Path, out: Path) -> None:
    import numpy as np
    import torch

    from s1s2_training.vlm import data as dm
    from s1s2_training.vlm.finetune import measure

    torch.set_num_threads(1)
    res = json.loads((out / "gpu_results.json").read_text())
    frames = dm.load(data_dir / "logit_frames.npz")
    model, proc = _load_nf4("cpu")
    logits, pooled, mask = _logits(model, proc, frames)
    g = np.load(out / "logits_cuda.npz")
    valid = mask.astype(bool)
    d = np.abs(g["logits"] - logits)[valid]
    res["cuda_vs_cpu_nf4"] = {
        "frames": int(len(logits)),
        "answer_positions": int(valid.sum()),
        "max_abs_logit_diff": float(d.max()),
        "median_abs_logit_diff": float(np.median(d)),
        "logit_scale_p99": float(np.percentile(np.abs(logits[valid]), 99)),
        "argmax_agreement": float((g["logits"].argmax(-1) == logits.argmax(-1))[valid].mean()),
        "pooled_max_abs_diff": float(np.abs(g["pooled"] - pooled).max()),
        "pooled_cosine_min": float(
            (
                (g["pooled"] * pooled).sum(1)
                / np.linalg.norm(g["pooled"], axis=1)
                / np.linalg.norm(pooled, axis=1)
            ).min()
        ),
    }
    print(json.dumps(res["cuda_vs_cpu_nf4"], indent=1), flush=True)
    size = int(json.loads((BASE / "s1s2_vlm.json").read_text()).get("image_size", 128))
    wd = ROOT / "runs" / "vlm_data"
    dom_test = dm.frames_of(dm.domain_test_specs(DOMAIN), size, wd)
    day_test = dm.frames_of(dm.domain_test_specs("daylight"), size, wd)
    res["gpu_adapter_on_cpu"] = measure(BASE, out / "adapter_gpu", dom_test, day_test)
    keep = ("class_acc", "hold_acc", "pick_err_median_cm", "pick_err_p90_cm", "target_frames")
    for k in ("base_domain", "adapter_domain", "base_daylight", "adapter_daylight"):
        print(k, {x: res["gpu_adapter_on_cpu"][k][x] for x in keep})
    dst = ROOT / "results" / "gpu_qlora_check.json"
    dst.write_text(json.dumps(res, indent=1, default=str) + "\n")
    print("wrote", dst)


def main(argv=None) -> int:
    a = list(sys.argv[1:] if argv is None else argv)
    if not a or a[0] not in ("prepare", "gpu", "compare"):
        print(__doc__)
        return 2
    if a[0] == "prepare":
        prepare(Path(a[1]))
    elif a[0] == "gpu":
        gpu(Path(a[1]), Path(a[2]))
    else:
        compare(Path(a[1]), Path(a[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
