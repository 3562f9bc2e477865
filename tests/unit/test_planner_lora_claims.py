"""The lecture's LoRA / QLoRA claims, checked on the project's own VLM (models/sim_vlm)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from s1s2 import repo_root

MODEL = repo_root() / "models" / "sim_vlm"


def _inputs():
    from PIL import Image
    from transformers import AutoProcessor

    from vlm_planner.config import DEFAULT_PROMPT, PlannerConfig
    from vlm_planner.planner import build_prompt

    proc = AutoProcessor.from_pretrained(str(MODEL), local_files_only=True, backend="pil")
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8))
    text = build_prompt(proc, DEFAULT_PROMPT, "sort the recyclables", PlannerConfig().classes, 320, 240)
    return dict(proc(images=img, text=text, return_tensors="pt"))


def _lora(model, targets, r=8, seed=0):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    return get_peft_model(model, LoraConfig(r=r, lora_alpha=16, target_modules=targets, lora_dropout=0.0))


TARGETS = (
    r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj)$|.*vision_tower.*\.(q_proj|k_proj|v_proj|out_proj)$"
)


def test_b_zero_gives_exactly_the_base_output_on_the_nf4_base():
    from transformers import AutoModelForImageTextToText

    from vlm_planner.model import nf4_config, pin_4bit_reference_kernel

    base = AutoModelForImageTextToText.from_pretrained(
        str(MODEL),
        local_files_only=True,
        quantization_config=nf4_config(torch.float32),
        device_map={"": "cpu"},
    ).eval()
    pin_4bit_reference_kernel(base)
    x = _inputs()
    with torch.inference_mode():
        ref = base(**x).logits.clone()
    peft_model = _lora(base, TARGETS).eval()
    assert all(float(p.abs().max()) == 0 for n, p in peft_model.named_parameters() if "lora_B" in n)
    with torch.inference_mode():
        out = peft_model(**x).logits
    assert torch.equal(out, ref)  # exactly, not approximately: B = 0 adds +0.0


def test_merged_equals_unmerged_on_a_full_precision_base():
    from transformers import AutoModelForImageTextToText

    base = AutoModelForImageTextToText.from_pretrained(str(MODEL), local_files_only=True).eval()
    peft_model = _lora(base, TARGETS)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    peft_model.eval()
    x = _inputs()
    with torch.inference_mode():
        unmerged = peft_model(**x).logits.clone()
        merged_model = peft_model.merge_and_unload().eval()
        merged = merged_model(**x).logits
    assert not any("lora" in n for n, _ in merged_model.named_parameters())  # no extra layers at inference
    torch.testing.assert_close(merged, unmerged, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("r", [1, 8])
def test_trainable_parameters_are_r_times_din_plus_dout(r):
    from transformers import AutoModelForImageTextToText

    base = AutoModelForImageTextToText.from_pretrained(str(MODEL), local_files_only=True)
    rx = re.compile(TARGETS)
    expect = sum(
        r * (m.in_features + m.out_features)
        for n, m in base.named_modules()
        if isinstance(m, torch.nn.Linear) and rx.fullmatch(n)
    )
    peft_model = _lora(base, TARGETS, r=r)
    got = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    assert got == expect > 0


def test_nf4_double_quant_stores_linears_in_at_most_0_30_of_bf16():
    from transformers import AutoModelForImageTextToText

    from vlm_planner.model import linear4bit_bytes, nf4_config

    m = AutoModelForImageTextToText.from_pretrained(
        str(MODEL),
        local_files_only=True,
        quantization_config=nf4_config(torch.float32),
        device_map={"": "cpu"},
    )
    packed, fp32 = linear4bit_bytes(m)
    bf16 = fp32 / 2
    assert packed / bf16 <= 0.30, (packed, bf16)
