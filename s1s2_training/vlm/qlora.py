"""QLoRA fine-tuning of the planner's VLM: frozen 4-bit NF4 base + trainable LoRA adapter (peft).

    model = load_4bit_for_training("models/sim_vlm")
    peft_model = add_lora(model)
    batch = encode(processor, image, "sort the recyclables", "label=pet_bottle u=120 v=45")
    losses = train_steps(peft_model, [batch], steps=20, lr=1e-2)
    peft_model.save_pretrained("models/adapters/<domain>")       # the library format the planner loads

The path is the lecture's QLoRA: base weights stored in NF4 with double quantization, dequantised
to `compute_dtype` in the forward pass, gradients only into the LoRA matrices A and B. It runs on
the CPU here (bitsandbytes >= 0.45 has CPU NF4 kernels), on a GPU unchanged. Paged optimizers are a
CUDA feature and are not used on the CPU.
"""

from __future__ import annotations


def load_4bit_for_training(model_dir, compute_dtype: str = "float32", device: str = "cpu"):
    """(model, processor): the 4-bit NF4 + double-quant base, prepared for k-bit training."""
    import torch
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForImageTextToText

    from vlm_planner import model as vlm_model

    dtype = getattr(torch, compute_dtype)
    model = AutoModelForImageTextToText.from_pretrained(
        str(model_dir),
        local_files_only=True,
        quantization_config=vlm_model.nf4_config(dtype),
        dtype=dtype,
        device_map={"": device},
    )
    vlm_model.pin_4bit_reference_kernel(model)  # evaluation after training must match the planner
    processor = vlm_model.load_processor(str(model_dir))
    # Casts norms to fp32 and enables input gradients; gradient checkpointing is off: tiny model.
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return model, processor


# Attention projections by the names most VLMs use (Idefics3 / SmolVLM's text_model and
# vision_model, Qwen2-VL's language model, ...): the fallback where the library's LLaVA-style
# targets (language_model / vision_tower) name no module of the model.
GENERIC_TARGETS = r".*\.(q_proj|k_proj|v_proj|o_proj|out_proj)$"


def default_targets(model) -> str:
    """The LoRA targets `add_lora` uses when none are given: the library's (LLaVA-style module
    paths) where they name a Linear of `model`, else GENERIC_TARGETS; ValueError when neither does."""
    import re

    import torch.nn as nn

    from .build import LORA_TARGETS

    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    for regex in (LORA_TARGETS, GENERIC_TARGETS):
        if any(re.fullmatch(regex, n) for n in names):
            return regex
    raise ValueError(
        f"{type(model).__name__}: neither the library's LoRA targets nor the generic attention projections "
        f"({GENERIC_TARGETS}) name a Linear layer of this model; pass targets= (a regex over module names)"
    )


def add_lora(
    model, rank: int | None = None, alpha: int | None = None, targets: str | None = None, seed: int = 0
):
    """`model` with LoRA adapters (peft) on `targets` (a regex; default: default_targets(model))."""
    import torch
    from peft import LoraConfig, get_peft_model

    from .build import LORA_ALPHA, LORA_RANK

    torch.manual_seed(seed)
    cfg = LoraConfig(
        r=rank or LORA_RANK,
        lora_alpha=alpha or LORA_ALPHA,
        target_modules=targets or default_targets(model),
        lora_dropout=0.0,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, cfg)


def encode(processor, image_rgb, instruction: str, answer: str, classes=None) -> dict:
    """One supervised example: the planner's exact prompt + answer + EOS; loss only on the answer."""
    from PIL import Image

    from vlm_planner import config, planner

    classes = classes or config.PlannerConfig().classes
    h, w = image_rgb.shape[:2]
    prompt = planner.build_prompt(processor, config.DEFAULT_PROMPT, instruction, classes, w, h)
    eos = processor.tokenizer.eos_token or ""
    pil = Image.fromarray(image_rgb)
    full = processor(images=pil, text=prompt + " " + answer + eos, return_tensors="pt")
    n_prompt = processor(images=pil, text=prompt, return_tensors="pt")["input_ids"].shape[1]
    labels = full["input_ids"].clone()
    labels[:, :n_prompt] = -100
    full["labels"] = labels
    return dict(full)


def train_steps(peft_model, batches: list[dict], steps: int, lr: float = 1e-2) -> list[float]:
    """Plain AdamW over the LoRA parameters; returns the loss of every step."""
    import torch

    params = [p for p in peft_model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr)
    peft_model.train()
    losses = []
    for i in range(steps):
        batch = batches[i % len(batches)]
        out = peft_model(**batch)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(out.loss.detach()))
    peft_model.eval()
    return losses
