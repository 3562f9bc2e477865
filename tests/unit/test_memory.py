"""`s1s2 memory` reproduces the lecture's worked examples exactly and says whether a job fits."""

import json
import subprocess
import sys

import pytest

from s1s2 import repo_root
from s1s2.memory import GB, NF4_DQ_BITS, ModelShape, estimate, llama_like, lora_params, shape_from_config


def test_lecture_7b_full_fine_tuning_in_fp32():
    e = estimate(ModelShape(7e9), "full", "fp32", "adamw32")
    assert e.weights == 28 * GB and e.optimizer == 56 * GB and e.gradients == 28 * GB


def test_lecture_14b_weights_and_adam_states():
    e = estimate(ModelShape(14e9), "full", "fp32", "adamw32")
    assert e.weights == 56 * GB and e.optimizer == 112 * GB
    assert e.weights + e.optimizer == 168 * GB  # "before gradients and activations"
    assert e.weights + e.optimizer + e.gradients == 224 * GB
    assert not e.fits(80.0)  # "exceeding the memory of even an 80GB A100"


def test_lecture_lora_example_4096_square_at_rank_16():
    shape = ModelShape(16_777_216, linear={"q_proj": (4096, 4096, 1)})
    assert lora_params(shape, 16, ("q_proj",)) == 131_072
    assert 16_777_216 // 131_072 == 128


def test_qlora_nf4_double_quant_is_4_127_bits_and_fits_where_full_does_not():
    assert pytest.approx(4.127, abs=5e-4) == NF4_DQ_BITS
    shape = ModelShape(1e9, hidden=2048, layers=16, heads=16, linear={"q_proj": (2048, 2048, 16)})
    shape.params = shape.linear_params  # all linear: weights = params * 4.127 / 8
    q = estimate(shape, "qlora", "bf16", "paged_adamw8", rank=8, targets=("q_proj",))
    assert q.weights == pytest.approx(shape.params * NF4_DQ_BITS / 8 + 8 * 4096 * 16 * 2)
    assert q.trainable == 8 * 4096 * 16
    # bitsandbytes pages only tensors >= 100,000 elements: A is 8 x 2048, B 2048 x 8 (16,384 each)
    assert not q.optimizer_pageable and q.optimizer_pageable_bytes == 0 and "100,000" in " ".join(q.notes)
    q64 = estimate(shape, "qlora", "bf16", "paged_adamw8", rank=64, targets=("q_proj",))
    assert q64.optimizer_pageable and q64.optimizer_pageable_bytes == pytest.approx(q64.optimizer)
    full = estimate(shape, "full", "bf16", "adamw32")
    states = lambda e: e.weights + e.gradients + e.optimizer  # noqa: E731 - activations are the same
    assert states(q) < states(full) / 10 and q.activations == full.activations


def test_config_shapes_match_the_real_model():
    torch = pytest.importorskip("torch")  # noqa: F841
    from transformers import AutoModelForImageTextToText

    cfg = repo_root() / "models" / "sim_vlm" / "config.json"
    shape = shape_from_config(cfg)
    model = AutoModelForImageTextToText.from_pretrained(str(cfg.parent), local_files_only=True)
    real = sum(p.numel() for p in model.parameters())
    assert shape.params == pytest.approx(real, rel=0.02)
    # LoRA on the LLM's q/k/v/o: sum of r * (d_in + d_out), as peft counts it
    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(
        model, LoraConfig(r=8, target_modules=r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj)$")
    )
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    assert lora_params(shape, 8) == trainable


def test_cli_json_and_bad_input():
    run = [sys.executable, "-m", "s1s2.cli", "memory"]
    out = subprocess.run(
        run + ["--params", "7e9", "--device", "h100", "--json"], capture_output=True, text=True
    )
    d = json.loads(out.stdout)
    assert d["weights_gb"] == 28.0 and d["optimizer_gb"] == 56.0 and d["fits"] is False
    bad = subprocess.run(run + ["--params", "7e9", "--device", "tpu-9000"], capture_output=True, text=True)
    assert bad.returncode == 2 and "tpu-9000" in bad.stderr
    bad = subprocess.run(run + ["--params", "7e9", "--method", "lora"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--hidden" in bad.stderr


def test_bnb_8bit_adam_keeps_32bit_states_for_small_lora_tensors():
    # r = 8 on 128-wide layers: A and B have 1024 elements, below bitsandbytes' min_8bit_size
    small = ModelShape(1e6, hidden=128, layers=4, heads=4, linear={"q_proj": (128, 128, 4)})
    e = estimate(small, "qlora", "fp32", "adamw8", rank=8, targets=("q_proj",))
    assert e.optimizer == 8 * e.trainable  # two fp32 moments per parameter
    big = ModelShape(1e9, hidden=4096, layers=2, heads=32, linear={"q_proj": (4096, 4096, 2)})
    e = estimate(big, "qlora", "bf16", "adamw8", rank=16, targets=("q_proj",))
    assert e.optimizer < 2.01 * e.trainable  # 8-bit states for 65,536-element tensors


def test_a_frozen_vision_tower_adds_no_activations():
    shape = shape_from_config(repo_root() / "models" / "sim_vlm" / "config.json")
    assert shape.vision is not None
    llm = estimate(shape, "qlora", "fp32", "adamw8", rank=8, batch=16, seq=82, compute_dtype="fp32")
    vis = estimate(shape, "qlora", "fp32", "adamw8", rank=8, batch=16, seq=82, compute_dtype="fp32",
                   targets=("vision_q_proj",))  # fmt: skip
    assert vis.activations > llm.activations
    bf16 = estimate(shape, "qlora", "fp32", "adamw8", rank=8, batch=16, seq=82)
    head = 3 * 16 * 82 * shape.vocab * 4  # the loss head stays fp32
    assert bf16.activations - head == pytest.approx((llm.activations - head) / 2)  # 16-bit: half the bytes


def test_the_loss_head_and_kbit_preparation_are_counted():
    """Measured on a 1.1B Llama QLoRA step (scripts/gpu_memory_check.py, H200): the fp32 logits,
    log-probabilities and their gradient (b x tokens x vocab each) and peft's fp32 copy of the
    embeddings and lm_head are real memory."""
    shape = llama_like(0.0, 2048, 22, 32, 5632, 4)
    shape.params = shape.linear_params + 2 * 32000 * 2048 + 22 * 2 * 2048
    no_vocab = estimate(shape, "qlora", "fp32", "paged_adamw8", 64, batch=4, seq=512)
    shape.vocab = 32000
    e = estimate(shape, "qlora", "fp32", "paged_adamw8", 64, batch=4, seq=512)
    assert e.activations - no_vocab.activations == pytest.approx(3 * 4 * 512 * 32000 * 4)
    few = estimate(shape, "qlora", "fp32", "paged_adamw8", 64, batch=4, seq=512, loss_tokens=5)
    assert e.activations - few.activations == pytest.approx(3 * 4 * 507 * 32000 * 4)
    rest = shape.params - shape.linear_params
    assert e.weights - shape.linear_params * NF4_DQ_BITS / 8 - e.trainable * 4 == pytest.approx(rest * 4)
    inf = estimate(shape, "inference_nf4", "bf16", "none", batch=1, seq=512)
    assert inf.weights == pytest.approx(shape.linear_params * NF4_DQ_BITS / 8 + rest * 2)


@pytest.mark.slow
def test_estimate_matches_the_measured_qlora_fine_tune():
    """The project's own QLoRA fine-tune (its Trainer, NF4 base, 8-bit AdamW), measured tensor by
    tensor: weights, gradients and optimizer states within 5 % of `s1s2 memory`, activations within
    a factor 2 (an estimate: Korthikanti et al.'s formula, no dropout here)."""
    pytest.importorskip("torch")
    from s1s2_training.vlm.memcheck import run

    res = run("llm", rank=8, batch_size=4, steps=2, episode_s=10.0)
    rows = res["comparison"]["rows"]
    for part in ("weights", "gradients", "optimizer"):
        assert rows[part]["measured_over_estimate"] == pytest.approx(1.0, abs=0.05), (part, rows[part])
    assert 0.5 <= rows["activations"]["measured_over_estimate"] <= 2.0, rows["activations"]
    assert res["measured"]["trainable_parameters"] == res["comparison"]["estimate_trainable"]


def test_unknown_compute_dtype_is_named():
    with pytest.raises(ValueError, match="fp64"):
        estimate(ModelShape(1e6, hidden=128, layers=2), "qlora", "fp32", compute_dtype="fp64")
