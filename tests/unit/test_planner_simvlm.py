"""The project's sim VLM, end to end on a tiny recipe (seconds): labelled frames, tokenizer,
pretraining with the HF Trainer, save_pretrained, the generic 4-bit loader, calibrated confidence,
and `s1s2 planner finetune` producing an adapter the library verifies."""

from __future__ import annotations

import json

import numpy as np
import pytest

from s1s2.cell import DEFAULT_CELL

TINY_ARCH = dict(
    image_size=32, patch_size=16, vision_hidden=32, vision_layers=1, vision_heads=2, vision_mlp=64,
    text_hidden=32, text_layers=1, text_heads=2, text_kv_heads=1, text_mlp=64,
)  # fmt: skip


def tiny_recipe():
    from s1s2_training.vlm.build import Recipe

    return Recipe(
        pretrain=dict(vision_steps=2, steps=4, batch_size=4, warmup_steps=1, log_every=1, progress=False, **TINY_ARCH),
        train_default_episodes=1, train_dense_episodes=1, calib_default_episodes=1, calib_dense_episodes=1,
        test_default_episodes=1, test_dense_episodes=1, episode_s=6.0, workers=1, threads=1, latency_plans=2,
    )  # fmt: skip


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from s1s2_training.vlm.build import build

    root = tmp_path_factory.mktemp("simvlm")
    record = build(root / "sim_vlm", seed=0, recipe=tiny_recipe(), work_dir=root / "data")
    return root, record


# ------------------------------------------------------------------------------------ data
@pytest.fixture(scope="module")
def frames():
    from s1s2_training.vlm.data import FrameSpec, concat, generate

    return concat(
        [
            generate(FrameSpec("default", seeds=(3,), episode_s=12.0, frame_every_s=0.5), 32, progress=False),
            generate(
                FrameSpec("dense", seeds=(4,), episode_s=8.0, frame_every_s=0.5, keep_full=True),
                32,
                progress=False,
            ),
        ]
    )


def test_pick_pixel_is_the_pick_point_projected_at_belt_height(frames):
    from conveyor_sim.cell import CellSim, SimConfig

    sim = CellSim(SimConfig(seed=0, render_enabled=False))
    cam = sim.camera_info()
    sim.close()
    tgt = frames["label"] >= 0
    assert tgt.sum() >= 5
    z = DEFAULT_CELL.belt.surface_height
    for i in np.nonzero(tgt)[0]:
        px, py, pz = frames["pick"][i]
        assert pz > z  # the pick point is the item's top ...
        expect = cam.project(np.array([[px, py, z]]))[0]  # ... but the label is at belt height
        np.testing.assert_allclose(frames["uv"][i], expect, atol=1e-3)
        # and the item table agrees: the target row has the same pixel and class
        k = frames["target_index"][i]
        assert frames["item_cls"][i, k] == frames["label"][i]
        np.testing.assert_allclose(frames["item_uv"][i, k], frames["uv"][i], atol=1e-3)


def test_held_item_is_never_the_target(frames):
    tgt = frames["label"] >= 0
    states = frames["item_state"][np.nonzero(tgt)[0], frames["target_index"][tgt]]
    assert np.all(states == 1)  # on the belt, never 2 (on the suction cup) or 3 (falling)
    assert frames["holding"].any()  # the expert really picks during the episodes
    holding_with_target = tgt & (frames["holding"] == 1)
    for i in np.nonzero(holding_with_target)[0]:
        held = np.nonzero(frames["item_state"][i] == 2)[0]
        assert frames["target_index"][i] not in held


def test_dense_frames_have_two_to_four_items(frames):
    dense = frames["mode"] == "dense"
    assert dense.any()
    n = frames["n_on_belt"][dense]
    assert np.mean(n >= 2) > 0.8  # 2..4 injected; the normal spawner may add one more


def test_a_dense_set_is_scored_on_its_frames_with_two_to_four_items(frames):
    from s1s2_training.vlm.data import scored

    n = frames["n_on_belt"]
    assert ((n < 2) | (n > 4)).any()  # else the check below could not fail
    dense = scored("dense", frames)
    assert len(dense["label"]) == int(((n >= 2) & (n <= 4)).sum())
    assert dense["n_on_belt"].min() >= 2 and dense["n_on_belt"].max() <= 4
    assert scored("default", frames) is frames


def test_visibility_is_the_share_of_the_target_the_arm_leaves_in_view():
    """An item right under the tool is mostly hidden, one far from the arm fully in view; frames of a
    FrameSpec(visibility=True) carry the share (NaN on hold frames)."""
    from conveyor_sim.cell import CellSim, SimConfig
    from s1s2 import kinematics as kin
    from s1s2_training.vlm.data import FrameSpec, _Segmenter, generate

    sim = CellSim(SimConfig(seed=0, spawn_interval_s=0.0))
    seg = _Segmenter(sim)
    try:
        tip = kin.forward(sim.desc.arm, sim.joint_positions())
        under = sim.spawn_item("aluminium_can", x=float(tip[0]), y=float(tip[1]))
        far = sim.spawn_item("cardboard", x=float(tip[0]) + 0.5, y=0.0)
        assert seg.visible_share(sim, under) < 0.5
        assert seg.visible_share(sim, far) == pytest.approx(1.0)
        assert np.isnan(seg.visible_share(sim, None))
    finally:
        seg.close()
        sim.close()
    d = generate(
        FrameSpec("default", seeds=(3,), episode_s=8.0, frame_every_s=0.5, visibility=True),
        32,
        progress=False,
    )
    tgt = d["label"] >= 0
    assert tgt.any() and np.all(np.isnan(d["target_visible"][~tgt]))
    assert np.all((d["target_visible"][tgt] >= 0) & (d["target_visible"][tgt] <= 1))


# ------------------------------------------------------------------------------- tokenizer
@pytest.fixture(scope="module")
def tokenizer():
    from s1s2_training.vlm.build import build_tokenizer

    return build_tokenizer()


def test_every_number_is_one_token_and_answers_are_lossless(tokenizer):
    from s1s2_training.vlm.build import MAX_NUMBER, number_token_ids

    ids = number_token_ids(tokenizer)
    assert len(ids) == MAX_NUMBER + 1 and len(set(ids)) == len(ids)
    for n in (0, 7, 42, 319, 999):
        assert tokenizer(str(n), add_special_tokens=False)["input_ids"] == [ids[n]]
    for c in DEFAULT_CELL.class_names:
        ans = f" label={c} u=123 v=45"
        enc = tokenizer(ans, add_special_tokens=False)["input_ids"]
        assert tokenizer.decode(enc) == ans and len(enc) <= 5  # label prefix, 123, " v=", 45
    assert len(tokenizer(" label=none", add_special_tokens=False)["input_ids"]) == 1
    text = "anything else: Grüße 1234.5"
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text


# ------------------------------------------------------------------------- build + loader
def test_build_record_is_complete_and_honest(built):
    root, record = built
    assert record["trained"] is True and record["command"] == "s1s2 models sim_vlm"
    assert {"name", "path", "data", "seed", "notes", "metrics", "recipe"} <= set(record)
    m = record["metrics"]
    assert set(m["test_nf4"]) == {"default", "dense"}
    for k in ("class_acc", "hold_acc", "pick_err_median_cm", "pick_err_p90_cm", "frames"):
        assert k in m["test_nf4"]["default"]
    assert {"data", "train", "calibrate", "evaluate", "total"} <= set(m["times_s"])
    assert m["model_dir_bytes"] <= 20e6 and m["footprint_nf4_bytes"] < m["footprint_fp32_bytes"]
    assert m["latency_nf4_1thread"]["plans"] == 2
    json.dumps(record, allow_nan=False)  # strict JSON: the manifest stays readable
    assert not list((root / "sim_vlm").glob("*.npz")) and not (root / "sim_vlm" / "trainer").exists()


def test_saved_model_loads_through_the_generic_4bit_loader(built):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from vlm_planner.config import PlannerConfig
    from vlm_planner.geometry import CameraModel
    from vlm_planner.planner import Planner

    root, _ = built
    d = root / "sim_vlm"
    proc = AutoProcessor.from_pretrained(str(d), local_files_only=True, backend="pil")
    model = AutoModelForImageTextToText.from_pretrained(str(d), local_files_only=True)
    assert type(model).__name__ == "LlavaForConditionalGeneration"
    assert type(proc.image_processor).__name__.endswith("Pil")
    card = json.loads((d / "s1s2_vlm.json").read_text())
    assert card["trained"] is True and card["latent"]["trained"] is True
    planner = Planner(PlannerConfig(model_id=str(d), adapter_library=str(root / "adapters")))
    info = planner.info()
    assert info["quantization"] == "nf4" and info["double_quant"] and info["linear4bit_layers"] > 0
    assert info["latent_projection"].endswith("latent_projection.safetensors")
    img = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    r = planner.plan(img, "sort the recyclables", 1.0, 0.0, CameraModel.from_cell())
    assert r.latent.shape == (32,) and np.isfinite(r.latent).all()
    assert 0.0 <= r.confidence <= 1.0


def test_planner_and_training_feed_the_model_the_same_normalised_pixels(built):
    """The card records the training light; the planner (processor path) and training / evaluation
    (Prompt.pixel_values) apply the same colour constancy, so a tinted frame reaches the model as the
    same tensor either way."""
    import torch
    from PIL import Image
    from transformers import AutoProcessor

    from s1s2_training.vlm.pretrain import Prompt
    from vlm_planner.config import PlannerConfig
    from vlm_planner.planner import Planner

    root, _ = built
    d = root / "sim_vlm"
    card = json.loads((d / "s1s2_vlm.json").read_text())
    spec = card["input_normalisation"]
    assert spec["method"] == "channel_median" and all(1 <= v <= 255 for v in spec["reference_rgb"])
    planner = Planner(PlannerConfig(model_id=str(d), adapter_library=str(root / "adapters")))
    assert planner.info()["input_normalisation"] == spec
    proc = AutoProcessor.from_pretrained(str(d), local_files_only=True, backend="pil")
    size = card["image_size"]
    rng = np.random.default_rng(2)
    frame = np.clip(rng.normal(spec["reference_rgb"], 20, (size, size, 3)) * [1.3, 1.0, 0.6], 0, 255)
    frame = frame.astype(np.uint8)
    prompt = Prompt(proc, "sort the recyclables", norm=planner.input_norm)
    ours = prompt.pixel_values(frame[None])
    theirs = proc(
        images=Image.fromarray(planner.input_norm.apply(frame)), text=prompt.text, return_tensors="pt"
    )
    torch.testing.assert_close(ours, theirs["pixel_values"], atol=1e-5, rtol=0)
    raw = Prompt(proc, "sort the recyclables").pixel_values(frame[None])
    assert (ours - raw).abs().max() > 0.1  # the tint was taken out, not passed through


def test_latent_target_layout_round_trips():
    from vlm_planner.latent import decode_latent, latent_target

    names = DEFAULT_CELL.class_names
    for k, name in enumerate(names):
        z = latent_target(k, (0.42, -0.08, 0.35))
        d = decode_latent(z / np.linalg.norm(z))
        assert d["label"] == name and d["bin"] == DEFAULT_CELL.item_class(name).bin_id
        np.testing.assert_allclose(d["xy"], [0.42, -0.08], atol=1e-6)
    assert decode_latent(latent_target(-1, None))["label"] == ""


# ------------------------------------------------------------------------------ finetune
def test_finetune_produces_an_adapter_the_library_verifies(built):
    from s1s2.adapters import base_fingerprint, verify_adapter
    from s1s2_training.vlm.finetune import FinetuneConfig, finetune

    root, _ = built
    base = root / "sim_vlm"
    lib = root / "adapters"
    cfg = FinetuneConfig(
        strategy="llm+vision", rank=4, alpha=8, steps=3, batch_size=4, mix=0.25, progress=False
    )
    res = finetune(
        cfg,
        "warm_tungsten",
        base,
        lib,
        work_dir=root / "data",
        train_episodes=2,
        test_episodes=(1, 1),
        episode_s=6.0,
    )
    m = verify_adapter(lib / "warm_tungsten", expected_base=base_fingerprint(base))
    assert m.trained and m.strategy == "llm+vision" and m.rank == 4 and m.alpha == 8
    assert m.context_tags == ["lighting:warm_tungsten"]
    assert res["data"]["mix_lambda"] == 0.25 and res["data"]["daylight_frames"] > 0
    assert res["data"]["distill_pair_frames"] == 0  # no distillation asked for
    met = m.metrics
    assert met["optimizer"] in ("adamw_bnb_8bit", "paged_adamw_8bit")
    assert {"base_domain", "adapter_domain", "adapter_daylight", "base_daylight"} <= set(met)
    # the held-out check at the adapter's own gate (test_evaluate_own_gate.py checks the scoring)
    assert met["adapter_domain_own_gate"]["min_confidence"] == pytest.approx(met["min_confidence"], abs=1e-4)
    # trainable parameters = sum over targeted layers of r * (d_in + d_out) (the lecture's count)
    from transformers import AutoModelForImageTextToText

    from s1s2_training.vlm.finetune import target_regex

    model = AutoModelForImageTextToText.from_pretrained(str(base), local_files_only=True)
    import re

    import torch

    rx = re.compile(target_regex("llm+vision"))
    expect = sum(
        4 * (mod.in_features + mod.out_features)
        for name, mod in model.named_modules()
        if isinstance(mod, torch.nn.Linear) and rx.fullmatch(name)
    )
    assert met["trainable_parameters"] == expect > 0
    # The planner swaps it in
    from vlm_planner.config import PlannerConfig
    from vlm_planner.planner import Planner

    planner = Planner(PlannerConfig(model_id=str(base), adapter_library=str(lib)))
    assert planner.swap_adapter("warm_tungsten").success
    assert m.input_normalisation and planner.norm_for("warm_tungsten") is planner.input_norm is not None


def test_an_adapter_trained_on_raw_frames_is_served_raw_frames(built):
    """--no-colour-constancy: trained, evaluated, calibrated and served on unnormalised frames; the
    base and the other adapters keep the card's normalisation."""
    from s1s2.adapters import read_manifest
    from s1s2_training.vlm.finetune import FinetuneConfig, finetune
    from vlm_planner.config import PlannerConfig
    from vlm_planner.planner import Planner

    root, _ = built
    base, lib = root / "sim_vlm", root / "adapters"
    cfg = FinetuneConfig(strategy="vision", rank=2, alpha=4, steps=2, batch_size=4, colour_constancy=False,
                         progress=False)  # fmt: skip
    finetune(cfg, "low_sun_glare", base, lib, work_dir=root / "data", train_episodes=2, test_episodes=(1, 1),
             episode_s=6.0)  # fmt: skip
    assert read_manifest(lib / "low_sun_glare").input_normalisation is False
    planner = Planner(PlannerConfig(model_id=str(base), adapter_library=str(lib)))
    assert planner.input_norm is not None and planner.info()["active_input_normalisation"] is True
    assert planner.swap_adapter("low_sun_glare").success
    assert planner.norm_for("low_sun_glare") is None and planner.info()["active_input_normalisation"] is False
    seen = []
    orig = planner.vlm.processor.__class__.__call__

    def spy(self, images=None, **kw):
        seen.append(np.asarray(images))
        return orig(self, images=images, **kw)

    import unittest.mock

    frame = np.full((240, 320, 3), (200, 120, 60), np.uint8)  # far from the reference light
    with unittest.mock.patch.object(planner.vlm.processor.__class__, "__call__", spy):
        from vlm_planner.geometry import CameraModel

        planner.plan(frame, "sort the recyclables", 1.0, 0.0, CameraModel.from_cell())
        assert np.array_equal(seen[-1], frame)  # raw frame for the raw-trained adapter
        assert planner.swap_adapter("").success  # the base model
        planner.plan(frame, "sort the recyclables", 2.0, 0.0, CameraModel.from_cell())
        assert not np.array_equal(seen[-1], frame)  # the base gets the normalised frame


@pytest.mark.parametrize(
    "strategy, hits, misses",
    [
        ("projector", ["model.multi_modal_projector.linear_1"], ["model.language_model.layers.0.self_attn.q_proj"]),
        ("llm", ["model.language_model.layers.0.self_attn.o_proj"], ["model.vision_tower.vision_model.encoder.layers.0.self_attn.q_proj"]),
        ("vision", ["model.vision_tower.vision_model.encoder.layers.0.self_attn.out_proj"], ["model.multi_modal_projector.linear_2"]),
    ],
)  # fmt: skip
def test_strategy_targets(strategy, hits, misses):
    import re

    from s1s2_training.vlm.finetune import strategy_name, target_regex

    rx = re.compile(target_regex(strategy))
    assert all(rx.fullmatch(h) for h in hits) and not any(rx.fullmatch(m) for m in misses)
    assert strategy_name("vision+projector") == "projector+vision"
    assert strategy_name("vision+llm+projector") == "all"
    with pytest.raises(ValueError, match="unknown strategy"):
        target_regex("lm_head")


def test_domain_training_episodes_split_over_the_frame_modes():
    from s1s2_training.vlm import data as dm

    two = dm.domain_train_specs("night_noise", 7)
    assert [s.mode for s in two] == ["default", "dense"] and [len(s.seeds) for s in two] == [3, 4]
    assert two[0].seeds[0] == dm.DOMAIN_TRAIN_DEFAULT_SEED0 and two[1].seeds[0] == dm.DOMAIN_TRAIN_DENSE_SEED0
    (lazy,) = dm.domain_train_specs("daylight", 16, modes=("lazy",))
    assert lazy.mode == "lazy" and lazy.seeds == dm.seeds(dm.DOMAIN_TRAIN_DEFAULT_SEED0, 16)
    with pytest.raises(ValueError, match="'sleepy'"):
        dm.domain_train_specs("daylight", 4, modes=("sleepy",))
    for modes, n in (((), 4), (("lazy", "lazy"), 4), (("default", "dense"), 1)):
        with pytest.raises(ValueError, match="at least one episode each"):
            dm.domain_train_specs("daylight", n, modes=modes)


def test_lazy_frames_show_items_waiting_in_reach_with_the_arm_at_rest():
    """The closed loop's situation the expert's own frames rarely show: in lazy mode the idle
    expert waits, so the same scene has more frames with an item to pick and fewer items sorted."""
    from s1s2_training.vlm.data import FrameSpec, generate

    runs = {
        mode: generate(FrameSpec(mode, seeds=(5, 6), episode_s=30.0, frame_every_s=0.5), 32, progress=False)
        for mode in ("default", "lazy")
    }
    targets = {m: int((d["label"] >= 0).sum()) for m, d in runs.items()}
    assert targets["lazy"] > 1.2 * targets["default"]  # 56 vs 39 frames here


def test_distillation_targets_are_the_base_in_daylight_of_the_same_scenes(built):
    """Paired-render distillation: the teacher of a domain frame is the base's image tokens of the
    same scene in daylight; at step 0 (LoRA B = 0) the daylight rows already match their teacher
    exactly and the tinted rows do not; unpaired daylight frames are refused, naming the field."""
    import torch

    from s1s2_training.vlm import data as dm
    from s1s2_training.vlm.finetune import FinetuneConfig, make_trainer, teacher_features

    root, _ = built
    base = root / "sim_vlm"
    size = json.loads((base / "s1s2_vlm.json").read_text())["image_size"]
    specs = dict(episodes=2, episode_s=6.0)
    dom = dm.frames_of(dm.domain_train_specs("warm_tungsten", **specs), size, root / "data", 1)
    day = dm.frames_of(dm.domain_train_specs("daylight", **specs), size, root / "data", 1)
    # raw frames: the card's colour constancy would take most of the tint out before the teacher
    cfg = FinetuneConfig(strategy="projector+vision", rank=4, alpha=8, steps=2, batch_size=4, mix=0.5,
                         distill_weight=1.0, colour_constancy=False, progress=False)  # fmt: skip
    trainer, peft_model, *_ = make_trainer(cfg, base, dom, day)
    module = trainer.model
    ds = trainer.train_dataset
    batch = trainer.data_collator([ds[i] for i in range(4)])  # rows 0, 1 daylight; 2, 3 warm_tungsten
    seen = []
    hook = module.vlm.model.multi_modal_projector.register_forward_hook(lambda _m, _i, o: seen.append(o))
    with torch.no_grad():
        loss = module(**batch)
    hook.remove()
    tokens = seen[-1]
    assert torch.isfinite(loss) and not module.image_tokens  # the loss took its tokens
    err = ((tokens - batch["teacher"]) ** 2).sum(-1).mean(-1)
    assert torch.all(err[:2] == 0.0) and torch.all(err[2:] > 1e-3), err
    with pytest.raises(ValueError, match="'seed'"):
        other = dm.frames_of([dm.FrameSpec("default", "daylight", (77,), 6.0)], size, root / "data", 1)
        teacher_features(module.vlm, peft_model, other, dom, None, None)
