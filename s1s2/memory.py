"""`s1s2 memory`: how much accelerator memory a fine-tuning or inference job needs, and whether it
fits a device. Pure Python (no torch): numbers from parameter counts and shapes.

    s1s2 memory --params 7e9 --method full --dtype fp32                 the lecture's 7B example
    s1s2 memory --params 14e9 --method full --dtype fp32 --device a100-80
    s1s2 memory --config models/sim_vlm/config.json --method qlora --rank 16 --device orin-8
    s1s2 memory --params 7e9 --hidden 4096 --layers 32 --method qlora --optimizer paged_adamw8

Bytes, with GB = 1e9 bytes (the lecture's unit: 7B x 4 bytes = 28 GB):
- weights: full / LoRA: every parameter in `dtype`; QLoRA: the linear layers in NF4 with double
  quantisation (4 + 8/64 + 32/(64*256) = 4.127 bits per parameter, the QLoRA paper's figure), the
  rest (embeddings, norms, lm_head) in fp32, as peft's prepare_model_for_kbit_training leaves them
  (NF4 inference: in the compute dtype); LoRA matrices in the trainable dtype.
- gradients: one value per trainable parameter in the trainable dtype.
- optimizer: AdamW keeps two moments per trainable parameter: 2 x 4 bytes (32-bit), 2 x 1 byte plus
  small block scales (8-bit, bitsandbytes), SGD with momentum 4 bytes; "paged" variants can move
  their states to CPU RAM when the device is full (counted here, flagged as pageable).
- activations: an ESTIMATE for a decoder transformer (Korthikanti et al. 2022, 16-bit): per layer
  s*b*h*(34 + 5*a*s/h) bytes without recomputation; with gradient checkpointing 2*s*b*h per layer
  plus one layer recomputed during backward; needs --hidden/--layers/--heads (or --config). With
  the vocabulary known (--config, --vocab), training adds the loss head: 3 fp32 copies of
  b x loss_tokens x vocab (logits, the log-probabilities kept for backward, their gradient).
  Inference: the KV cache, 2*layers*s*b*h*bytes.
Measured against real fine-tunes: the project's own (s1s2_training.vlm.memcheck, CPU and CUDA) and
a 1.1B Llama QLoRA step on an H200 (scripts/gpu_memory_check.py; docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

GB = 1e9
NF4_DQ_BITS = 4 + 8 / 64 + 32 / (64 * 256)  # = 4.127: NF4 + 8-bit absmax per 64 + fp32 per 256 absmax
DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2, "int8": 1}
# bitsandbytes' 8-bit optimizers keep 32-bit states for tensors smaller than this (min_8bit_size)
BNB_MIN_8BIT_SIZE = 4096
# bitsandbytes pages a state buffer through CUDA unified memory only for tensors of at least this
# many elements (Optimizer8bit.get_state_buffer); smaller ones stay in device memory. Measured on an
# H200 (scripts/gpu_qlora_check.py): none of the sim model's 72 LoRA state tensors was paged.
BNB_PAGED_MIN_SIZE = 100_000
OPTIMIZERS = {
    # bytes of optimizer state per trainable parameter, pageable to CPU
    "adamw32": (8.0, False),
    "adamw8": (2.0 + 2 * 4 / 2048, False),  # bitsandbytes 8-bit: 2 states, fp32 scale per 2048-block
    "paged_adamw32": (8.0, True),
    "paged_adamw8": (2.0 + 2 * 4 / 2048, True),
    "sgd": (4.0, False),  # momentum
    "none": (0.0, False),  # inference
}
METHODS = ("full", "lora", "qlora", "inference", "inference_nf4")
# Devices: memory in GB (1e9 bytes) as sold. Jetson Orin shares it with the CPU: the whole module's
# memory is listed; the OS and other processes take their part of it.
DEVICES = {
    "a100-40": 40.0,
    "a100-80": 80.0,
    "h100": 80.0,
    "h200": 141.0,
    "orin-64": 64.0,
    "orin-32": 32.0,
    "orin-16": 16.0,
    "orin-8": 8.0,
}
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


@dataclass
class ModelShape:
    """What the estimate needs to know of a model. `linear` lists the (d_in, d_out, count) of the
    linear layers (count = how many such layers in the whole model); without shapes only the
    parameter count is known and LoRA/activation figures need --hidden/--layers."""

    params: float
    hidden: int | None = None
    layers: int | None = None
    heads: int | None = None
    linear: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # name -> (d_in, d_out, count)
    # a VLM's vision encoder for the activation estimate: (hidden, layers, heads, tokens per image)
    vision: tuple[int, int, int, int] | None = None
    vocab: int | None = None  # for the loss head's activations

    @property
    def linear_params(self) -> float:
        return float(sum(i * o * n for i, o, n in self.linear.values()))


def llama_like(params: float, hidden: int, layers: int, heads: int | None = None,
               intermediate: int | None = None, kv_heads: int | None = None) -> ModelShape:  # fmt: skip
    """Shapes of a LLaMA-style decoder (q, k, v, o, gate, up, down per layer)."""
    heads = heads or max(1, hidden // 128)
    kv = (kv_heads or heads) * (hidden // heads)
    inter = intermediate or int(round(hidden * 8 / 3 / 256)) * 256
    lin = {
        "q_proj": (hidden, hidden, layers),
        "k_proj": (hidden, kv, layers),
        "v_proj": (hidden, kv, layers),
        "o_proj": (hidden, hidden, layers),
        "gate_proj": (hidden, inter, layers),
        "up_proj": (hidden, inter, layers),
        "down_proj": (inter, hidden, layers),
    }
    return ModelShape(params, hidden, layers, heads, lin)


def shape_from_config(path: str | Path) -> ModelShape:
    """From a transformers config.json (a VLM's text_config, or a plain LLM config). Counts the
    language model's linears; a vision tower's (vision_config) are added as `vision_*`."""
    cfg = json.loads(Path(path).read_text())
    text = cfg.get("text_config", cfg)
    h, n = int(text["hidden_size"]), int(text["num_hidden_layers"])
    heads = int(text.get("num_attention_heads", max(1, h // 64)))
    kv = int(text.get("num_key_value_heads", heads))
    inter = int(text.get("intermediate_size", 4 * h))
    vocab = int(text.get("vocab_size", 32000))
    shape = llama_like(0.0, h, n, heads, inter, kv)
    shape.vocab = vocab
    params = shape.linear_params + vocab * h * (1 if text.get("tie_word_embeddings") else 2) + n * 2 * h
    vis = cfg.get("vision_config")
    if vis:
        vh, vn, vi = (
            int(vis["hidden_size"]),
            int(vis["num_hidden_layers"]),
            int(vis.get("intermediate_size", 4 * vis["hidden_size"])),
        )
        for name, d in (("q_proj", (vh, vh)), ("k_proj", (vh, vh)), ("v_proj", (vh, vh)), ("out_proj", (vh, vh)),
                        ("fc1", (vh, vi)), ("fc2", (vi, vh))):  # fmt: skip
            shape.linear[f"vision_{name}"] = (*d, vn)
        patch, img = int(vis.get("patch_size", 16)), int(vis.get("image_size", 224))
        vheads = int(vis.get("num_attention_heads", max(1, vh // 64)))
        shape.vision = (vh, vn, vheads, (img // patch) ** 2 + 1)
        params += vn * (4 * vh * vh + 2 * vh * vi) + 3 * patch * patch * vh + ((img // patch) ** 2 + 1) * vh
        proj = vh * h + h * h  # LLaVA's 2-layer projector
        shape.linear["projector"] = (vh, h, 1)
        shape.linear["projector_2"] = (h, h, 1)
        params += proj
    shape.params = float(params)
    return shape


def lora_params(shape: ModelShape, rank: int, targets=DEFAULT_TARGETS) -> int:
    """Trainable LoRA parameters: sum over targeted layers of r * (d_in + d_out) (A and B)."""
    missing = [t for t in targets if t not in shape.linear]
    if missing:
        raise ValueError(
            f"LoRA target(s) {missing} not among the model's linear layers {sorted(shape.linear)}"
        )
    return int(sum(n * k for n, k in lora_tensors(shape, rank, targets)))


def lora_tensors(shape: ModelShape, rank: int, targets) -> list[tuple[int, int]]:
    """(how many, elements) of each LoRA tensor: A (r x d_in) and B (d_out x r) per targeted layer.
    bitsandbytes decides per tensor whether its optimizer state is 8-bit and whether it is paged."""
    return [(n, k) for t in targets for i, o, n in [shape.linear[t]] for k in (rank * i, rank * o)]


@dataclass
class Estimate:
    method: str
    params: float
    trainable: float
    weights: float  # bytes
    gradients: float
    optimizer: float
    activations: float | None  # None: shapes unknown
    optimizer_pageable: bool  # some optimizer state can be paged to CPU RAM
    notes: list[str] = field(default_factory=list)
    optimizer_pageable_bytes: float = 0.0

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + (self.activations or 0.0)

    def fits(self, device_gb: float) -> bool:
        return self.total <= device_gb * GB

    def as_dict(self) -> dict:
        return {
            "method": self.method,
            "params": self.params,
            "trainable_params": self.trainable,
            "weights_gb": self.weights / GB,
            "gradients_gb": self.gradients / GB,
            "optimizer_gb": self.optimizer / GB,
            "activations_gb": None if self.activations is None else self.activations / GB,
            "total_gb": self.total / GB,
            "optimizer_pageable": self.optimizer_pageable,
            "optimizer_pageable_gb": self.optimizer_pageable_bytes / GB,
            "notes": self.notes,
        }


def estimate(
    shape: ModelShape,
    method: str = "full",
    dtype: str = "fp32",
    optimizer: str = "adamw32",
    rank: int = 16,
    targets=DEFAULT_TARGETS,
    batch: int = 1,
    seq: int = 512,
    checkpointing: bool = False,
    compute_dtype: str | None = None,
    loss_tokens: int | None = None,
) -> Estimate:
    """`dtype`: the trainable parameters (and, for full / LoRA, the whole model). `compute_dtype`:
    activations and, for NF4 inference, the layers that are not quantised (default: bf16 for the
    NF4 methods, else `dtype`). `loss_tokens`: positions per sequence the loss is computed on
    (default `seq`: every token, as a causal LM's training does)."""
    if method not in METHODS:
        raise ValueError(f"method {method!r}; valid: {', '.join(METHODS)}")
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"dtype {dtype!r}; valid: {', '.join(DTYPE_BYTES)}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer {optimizer!r}; valid: {', '.join(OPTIMIZERS)}")
    b = DTYPE_BYTES[dtype]
    nf4 = method in ("qlora", "inference_nf4")
    compute_dtype = compute_dtype or ("bf16" if nf4 else dtype)
    if compute_dtype not in DTYPE_BYTES:
        raise ValueError(f"compute dtype {compute_dtype!r}; valid: {', '.join(DTYPE_BYTES)}")
    cb = DTYPE_BYTES[compute_dtype]
    notes = []
    inference = method.startswith("inference")
    if method in ("lora", "qlora"):
        trainable = float(lora_params(shape, rank, targets)) if shape.linear else None
        if trainable is None:
            raise ValueError("LoRA needs the model's shapes: give --hidden and --layers, or --config")
    else:
        trainable = 0.0 if inference else shape.params
    if method in ("qlora", "inference_nf4"):
        if not shape.linear:
            raise ValueError("NF4 needs the model's shapes: give --hidden and --layers, or --config")
        lin = shape.linear_params
        # QLoRA training: peft's prepare_model_for_kbit_training casts what is not quantised to fp32
        rest_dtype = "fp32" if method == "qlora" else compute_dtype
        weights = lin * NF4_DQ_BITS / 8 + (shape.params - lin) * DTYPE_BYTES[rest_dtype]
        notes.append(
            f"linear layers in NF4 + double quantisation: {NF4_DQ_BITS:.3f} bits/parameter, the rest in {rest_dtype}"
            + (" (peft's prepare_model_for_kbit_training)" if method == "qlora" else "")
        )
    else:
        weights = shape.params * b
    if method in ("lora", "qlora"):
        weights += trainable * b  # the LoRA matrices themselves
    grads = trainable * b
    per, pageable = OPTIMIZERS["none" if inference else optimizer]
    opt = trainable * per
    if optimizer.endswith("adamw8") and method in ("lora", "qlora"):
        # LoRA's A (r x d_in) and B (d_out x r) are separate tensors; small ones keep 32-bit states
        small = sum(n * k for n, k in lora_tensors(shape, rank, targets) if k < BNB_MIN_8BIT_SIZE)
        if small:
            opt += small * (OPTIMIZERS["adamw32"][0] - per)
            notes.append(f"{small:.4g} LoRA parameters in tensors < {BNB_MIN_8BIT_SIZE} elements: 32-bit Adam "
                         "states (bitsandbytes min_8bit_size)")  # fmt: skip
    acts = None
    if shape.hidden and shape.layers:
        h, n, a = shape.hidden, shape.layers, shape.heads or max(1, shape.hidden // 128)
        scale = cb / 2  # the formulas count 16-bit values
        if inference:
            acts = 2.0 * n * seq * batch * h * cb  # KV cache
            notes.append("activations = KV cache for the sequence (estimate)")
        elif checkpointing:
            # the layers' inputs, plus one layer's full activations while it is recomputed
            acts = 2.0 * seq * batch * h * n * scale + seq * batch * h * (34 + 5 * a * seq / h) * scale
            notes.append(
                f"activations with gradient checkpointing: 2*s*b*h per layer + one layer recomputed, in {compute_dtype} (estimate)"
            )
        else:
            acts = seq * batch * h * (34 + 5 * a * seq / h) * n * scale
            notes.append(
                f"activations without recomputation: s*b*h*(34+5as/h) per layer in {compute_dtype} (estimate)"
            )
            # The vision encoder stores activations only when something in it is trained: a frozen
            # tower's outputs need no gradient, so autograd saves nothing there (measured:
            # s1s2_training.vlm.memcheck).
            vision_trained = method == "full" or (
                method in ("lora", "qlora") and any(t.startswith("vision_") for t in targets)
            )
            if shape.vision and vision_trained:  # its layers over the image tokens, same formula
                vh, vn, va, vs = shape.vision
                acts += vs * batch * vh * (34 + 5 * va * vs / vh) * vn * scale
                notes.append(f"+ the vision encoder: {vn} layers over {vs} image tokens")
        if not inference and shape.vocab:
            head = 3.0 * batch * (loss_tokens or seq) * shape.vocab * 4
            acts += head
            notes.append(f"+ the loss head: 3 fp32 copies of batch x {loss_tokens or seq} tokens x {shape.vocab} "
                         f"vocabulary ({head / GB:.3g} GB)")  # fmt: skip
    else:
        notes.append("activations not estimated: give --hidden, --layers (and --heads) or --config")
    paged_bytes = 0.0
    if pageable:
        if method in ("lora", "qlora"):
            big = sum(n * k for n, k in lora_tensors(shape, rank, targets) if k >= BNB_PAGED_MIN_SIZE)
            paged_bytes = big * per
        else:
            paged_bytes = opt
        notes.append(
            f"paged optimizer: bitsandbytes pages only the states of tensors >= {BNB_PAGED_MIN_SIZE:,} elements "
            f"({paged_bytes / GB:.3g} of {opt / GB:.3g} GB here); paged states move to CPU RAM when the device is full"
        )
    return Estimate(
        method, shape.params, trainable, weights, grads, opt, acts, paged_bytes > 0, notes, paged_bytes
    )


def device_gb(name: str) -> float:
    if name in DEVICES:
        return DEVICES[name]
    try:
        v = float(name)
    except ValueError:
        raise ValueError(f"device {name!r}; valid: {', '.join(DEVICES)} or a number of GB") from None
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"device memory must be > 0 GB, got {name!r}")
    return v


def format_estimate(e: Estimate, device: str | None = None) -> str:
    def gb(x):
        return "n/a" if x is None else f"{x / GB:.3f} GB"

    lines = [
        f"method {e.method}: {e.params:.4g} parameters, {e.trainable:.4g} trainable"
        + (f" ({e.params / e.trainable:.0f}x fewer)" if 0 < e.trainable < e.params else ""),
        f"  weights      {gb(e.weights)}",
        f"  gradients    {gb(e.gradients)}",
        f"  optimizer    {gb(e.optimizer)}"
        + (f"  ({gb(e.optimizer_pageable_bytes)} of it pageable to CPU)" if e.optimizer_pageable else ""),
        f"  activations  {gb(e.activations)}" + ("" if e.activations is None else "  (estimate)"),
        f"  total        {gb(e.total)}" + ("" if e.activations is not None else " + activations"),
    ]
    if device:
        cap = device_gb(device)
        verdict = "fits" if e.fits(cap) else "does NOT fit"
        lines.append(f"  {verdict} {device} ({cap:g} GB): {e.total / GB:.2f} of {cap:g} GB")
    lines += [f"  note: {n}" for n in e.notes]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="s1s2 memory", description=__doc__.splitlines()[0])
    ap.add_argument("--params", type=float, help="parameter count, e.g. 7e9")
    ap.add_argument("--config", help="a transformers config.json (e.g. models/sim_vlm/config.json)")
    ap.add_argument("--hidden", type=int)
    ap.add_argument("--layers", type=int)
    ap.add_argument("--heads", type=int)
    ap.add_argument("--method", default="full", choices=METHODS)
    ap.add_argument("--dtype", default="fp32", choices=sorted(DTYPE_BYTES))
    ap.add_argument("--optimizer", default="adamw32", choices=sorted(OPTIMIZERS))
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--targets", default=",".join(DEFAULT_TARGETS))
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--checkpointing", action="store_true")
    ap.add_argument("--vocab", type=int, default=None, help="vocabulary size (from --config if given)")
    ap.add_argument("--loss-tokens", type=int, default=None, help="positions the loss covers (default --seq)")
    ap.add_argument("--compute-dtype", choices=sorted(DTYPE_BYTES), default=None,
                    help="activations (and QLoRA's unquantised layers); default bf16 for NF4 methods, else --dtype")  # fmt: skip
    ap.add_argument("--device", help=f"{', '.join(DEVICES)} or a number of GB")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    try:
        if args.config:
            shape = shape_from_config(args.config)
        elif args.params and args.hidden and args.layers:
            shape = llama_like(args.params, args.hidden, args.layers, args.heads)
        elif args.params:
            shape = ModelShape(args.params)
        else:
            raise ValueError("give --params N (and --hidden/--layers for LoRA/activations) or --config FILE")
        if args.vocab:
            shape.vocab = args.vocab
        e = estimate(shape, args.method, args.dtype, args.optimizer, args.rank,
                     tuple(t for t in args.targets.split(",") if t), args.batch, args.seq, args.checkpointing,
                     args.compute_dtype, args.loss_tokens)  # fmt: skip
        if args.device:
            device_gb(args.device)
    except (ValueError, OSError, KeyError) as exc:
        print(f"s1s2 memory: {exc}", file=sys.stderr)
        return 2
    if args.json:
        out = e.as_dict()
        if args.device:
            out |= {
                "device": args.device,
                "device_gb": device_gb(args.device),
                "fits": e.fits(device_gb(args.device)),
            }
        print(json.dumps(out, indent=1))
    else:
        print(format_estimate(e, args.device))
    return 0
