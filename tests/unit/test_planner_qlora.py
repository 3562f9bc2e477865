"""The QLoRA training path on the 4-bit model (CPU): loss decreases, only LoRA weights move, and the
saved adapter is one the planner can hot-swap in."""

import numpy as np
import pytest
import torch

from s1s2 import repo_root

MODEL = repo_root() / "models" / "sim_vlm"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import bitsandbytes as bnb

    from s1s2_training.vlm.qlora import add_lora, encode, load_4bit_for_training, train_steps

    torch.manual_seed(0)
    model, processor = load_4bit_for_training(MODEL)
    peft_model = add_lora(model, seed=0)
    base_layers = {n: m for n, m in peft_model.named_modules() if isinstance(m, bnb.nn.Linear4bit)}
    frozen_before = {n: m.weight.data.clone() for n, m in base_layers.items()}
    image = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    batch = encode(processor, image, "sort the recyclables", "label=pet_bottle u=120 v=45")
    losses = train_steps(peft_model, [batch], steps=8, lr=1e-2)
    saved = tmp_path_factory.mktemp("trained") / "qlora_test"
    peft_model.save_pretrained(str(saved))
    from s1s2.adapters import add_adapter, base_fingerprint

    lib = tmp_path_factory.mktemp("lib")
    cfg = peft_model.peft_config["default"]
    add_adapter(
        lib, saved, base_fingerprint=base_fingerprint(MODEL), strategy="llm+vision", rank=cfg.r,
        alpha=cfg.lora_alpha, target_modules=cfg.target_modules if isinstance(cfg.target_modules, str) else sorted(cfg.target_modules),
        context_tags=["test"], data={"frames": 1}, metrics={}, trained=True,
    )  # fmt: skip
    out = lib / "qlora_test"
    return {
        "model": peft_model,
        "losses": losses,
        "frozen_before": frozen_before,
        "base_layers": base_layers,
        "adapter_dir": out,
        "image": image,
    }


def test_qlora_step_loop_reduces_loss_on_a_tiny_batch(trained):
    losses = trained["losses"]
    assert all(np.isfinite(losses))
    assert min(losses[-3:]) < losses[0] - 0.3, losses


def test_only_lora_weights_train_and_the_4bit_base_stays_frozen(trained):
    model = trained["model"]
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert trained["base_layers"], "no Linear4bit layers in the training model"
    for name, layer in trained["base_layers"].items():
        assert layer.weight.quant_state.quant_type == "nf4" and layer.weight.quant_state.nested
        assert torch.equal(layer.weight.data, trained["frozen_before"][name]), name
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert any(float(p.detach().abs().max()) > 0 for p in lora_b)  # B moved away from its zero init


def test_saved_adapter_hot_swaps_into_the_planner(trained):
    from vlm_planner.config import PlannerConfig
    from vlm_planner.geometry import CameraModel
    from vlm_planner.planner import Planner

    lib = trained["adapter_dir"].parent
    planner = Planner(PlannerConfig(adapter_library=str(lib)))
    cam = CameraModel.from_camera_info([200.0, 0, 160.0, 0, 200.0, 120.0, 0, 0, 1], 320, 240)
    base = planner.plan(trained["image"], "sort the recyclables", 0.0, 0.0, cam)
    res = planner.swap_adapter("qlora_test")
    assert res.success, res.message
    tuned = planner.plan(trained["image"], "sort the recyclables", 0.0, 0.0, cam)
    assert tuned.adapter_id == "qlora_test"
    assert not np.allclose(tuned.latent, base.latent, atol=1e-4)
