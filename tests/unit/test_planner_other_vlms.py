"""A user's own VLM of another architecture, through the same loader, planner and QLoRA path as the
sim VLM: tiny random Idefics3 (SmolVLM's architecture) and PaliGemma models, built here and saved
with save_pretrained, as a hub model would arrive. Their answers are noise, so every plan is a hold
with a reason; what is checked is that they load in NF4, plan, train an adapter and hot-swap it."""

import importlib.util

import numpy as np
import pytest

from s1s2.params import ConfigError

K = [200.0, 0.0, 160.0, 0.0, 200.0, 120.0, 0.0, 0.0, 1.0]


def _tokenizer(specials, cls=None, **tokens):
    """A byte-level tokenizer (no merges) with `specials` first; `cls` a transformers fast class."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(specials)}
    for b in sorted(pre_tokenizers.ByteLevel.alphabet()):  # a set: its order differs per process
        vocab.setdefault(b, len(vocab))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return (cls or PreTrainedTokenizerFast)(tokenizer_object=tok, **tokens)


def _save(model, processor, out, eos, pad, bos):
    import torch

    torch.manual_seed(0)
    gc = model.generation_config
    gc.eos_token_id, gc.pad_token_id, gc.bos_token_id = eos, pad, bos
    model.eval().save_pretrained(out)
    if processor is not None:
        processor.save_pretrained(out)
    return out


def build_idefics3(out):
    import torch
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration, Idefics3Processor
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

    specials = ["<|endoftext|>", "<|im_start|>", "<end_of_utterance>", "<image>", "<fake_token_around_image>",
                "<global-img>"]  # fmt: skip
    tok = _tokenizer(specials, bos_token="<|im_start|>", eos_token="<end_of_utterance>", pad_token="<|endoftext|>",
                     additional_special_tokens=specials[3:])  # fmt: skip
    template = ("<|im_start|>{% for m in messages %}{{ m['role'] | capitalize }}:{% for c in m['content'] %}"
                "{% if c['type'] == 'image' %}<image>{% else %}{{ c['text'] }}{% endif %}{% endfor %}"
                "<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}")  # fmt: skip
    ip = Idefics3ImageProcessorPil(
        do_image_splitting=False, size={"longest_edge": 64}, max_image_size={"longest_edge": 64}
    )
    processor = Idefics3Processor(image_processor=ip, tokenizer=tok, image_seq_len=4, chat_template=template)
    cfg = Idefics3Config(
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=64, patch_size=16),
        text_config=dict(model_type="llama", vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=1024, bos_token_id=1, eos_token_id=2, pad_token_id=0),
        scale_factor=2, image_token_id=3, pad_token_id=0,
    )  # fmt: skip
    torch.manual_seed(0)
    return _save(Idefics3ForConditionalGeneration(cfg), processor, out, eos=2, pad=0, bos=1)


def build_paligemma(out):
    import torch
    from transformers import (
        GemmaTokenizerFast,
        PaliGemmaConfig,
        PaliGemmaForConditionalGeneration,
        PaliGemmaProcessor,
    )
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    tok = _tokenizer(["<pad>", "<bos>", "<eos>", "<image>", "<unk>"], GemmaTokenizerFast, bos_token="<bos>",
                     eos_token="<eos>", pad_token="<pad>", unk_token="<unk>", additional_special_tokens=["<image>"])  # fmt: skip
    ip = SiglipImageProcessorPil(size={"height": 64, "width": 64})
    ip.image_seq_length = 16
    processor = PaliGemmaProcessor(
        image_processor=ip, tokenizer=tok
    )  # no chat template: "<image>\n<question>"
    cfg = PaliGemmaConfig(
        vision_config=dict(model_type="siglip_vision_model", hidden_size=32, intermediate_size=64,
                           num_hidden_layers=1, num_attention_heads=2, image_size=64, patch_size=16,
                           projection_dim=64),
        text_config=dict(model_type="gemma", vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1, head_dim=16,
                         max_position_embeddings=1024, bos_token_id=1, eos_token_id=2, pad_token_id=0),
        image_token_id=3, projection_dim=64, hidden_size=64,
    )  # fmt: skip
    torch.manual_seed(0)
    return _save(PaliGemmaForConditionalGeneration(cfg), processor, out, eos=2, pad=0, bos=1)


def build_qwen2_vl(out):
    """Model, tokenizer and the image processor's config, but no processor object: transformers
    builds Qwen2-VL's processor only with torchvision (its video processor)."""
    import json

    import torch
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                "<|image_pad|>", "<|video_pad|>"]  # fmt: skip
    tok = _tokenizer(
        specials, eos_token="<|im_end|>", pad_token="<|endoftext|>", additional_special_tokens=specials[1:]
    )
    cfg = Qwen2VLConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         bos_token_id=None, eos_token_id=2, pad_token_id=0, rope_scaling={"type": "mrope", "mrope_section": [2, 2, 4]}),
        vision_config=dict(depth=1, embed_dim=32, hidden_size=64, num_heads=2, mlp_ratio=2, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2),
        image_token_id=5, video_token_id=6, vision_start_token_id=3, vision_end_token_id=4, eos_token_id=2,
        pad_token_id=0,
    )  # fmt: skip
    torch.manual_seed(0)
    _save(Qwen2VLForConditionalGeneration(cfg), None, out, eos=2, pad=0, bos=None)
    tok.save_pretrained(out)
    (out / "chat_template.jinja").write_text(
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% for c in m['content'] %}{% if c['type'] == 'image' %}"
        "<|vision_start|><|image_pad|><|vision_end|>{% else %}{{ c['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    (out / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "Qwen2VLImageProcessor", "processor_class": "Qwen2VLProcessor",
        "min_pixels": 3136, "max_pixels": 12544, "patch_size": 14, "merge_size": 2, "temporal_patch_size": 2,
    }))  # fmt: skip
    return out


BUILDERS = {"idefics3": build_idefics3, "paligemma": build_paligemma}
if importlib.util.find_spec("torchvision") is not None:  # Qwen2-VL's processor needs it (not installed here)
    BUILDERS["qwen2_vl"] = build_qwen2_vl


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def user_vlm(request, tmp_path_factory):
    return request.param, BUILDERS[request.param](tmp_path_factory.mktemp(request.param))


def test_another_architecture_loads_in_nf4_and_plans_a_hold_with_its_reason(user_vlm):
    from vlm_planner.config import PlannerConfig
    from vlm_planner.geometry import CameraModel
    from vlm_planner.planner import Planner

    name, folder = user_vlm
    planner = Planner(PlannerConfig(model_id=str(folder), adapter_library="", warm_adapter_slots=False))
    layers = [m for m in planner.vlm.model.modules() if type(m).__name__ == "Linear4bit"]
    assert len(layers) == planner.vlm.linear4bit > 0
    assert all(m.weight.quant_state.quant_type == "nf4" and m.weight.quant_state.nested for m in layers)
    image = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    r = planner.plan(image, "", 1.0, 0.0, CameraModel.from_camera_info(K, 320, 240))
    assert r.target_label == "" and r.reason, (name, r.raw_text)  # noise: never a guessed target
    assert r.latent.shape == (32,) and np.isfinite(r.latent).all()


def test_another_architecture_trains_a_qlora_adapter_that_hot_swaps_in(user_vlm, tmp_path):
    from s1s2.adapters import add_adapter, base_fingerprint
    from s1s2_training.vlm.build import LORA_TARGETS
    from s1s2_training.vlm.qlora import (
        GENERIC_TARGETS,
        add_lora,
        default_targets,
        encode,
        load_4bit_for_training,
        train_steps,
    )
    from vlm_planner.config import PlannerConfig
    from vlm_planner.geometry import CameraModel
    from vlm_planner.planner import Planner

    name, folder = user_vlm
    model, processor = load_4bit_for_training(folder)
    targets = default_targets(model)
    # PaliGemma and Qwen2-VL keep LLaVA's language_model path; Idefics3 does not
    assert targets == {"paligemma": LORA_TARGETS, "qwen2_vl": LORA_TARGETS, "idefics3": GENERIC_TARGETS}[name]
    peft_model = add_lora(model, seed=0)
    assert any("lora_A" in n for n, _ in peft_model.named_parameters()), name
    image = np.random.default_rng(1).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    batch = encode(processor, image, "sort the recyclables", "label=pet_bottle u=120 v=45")
    losses = train_steps(peft_model, [batch], steps=20, lr=1e-2)
    # a random base leaves the LoRA little to move: about 0.4 nats in 20 steps, seen on both models
    assert np.isfinite(losses).all() and min(losses[-3:]) < losses[0] - 0.2, (name, losses)
    peft_model.save_pretrained(str(tmp_path / "mine"))
    cfg = peft_model.peft_config["default"]
    add_adapter(tmp_path / "lib", tmp_path / "mine", base_fingerprint=base_fingerprint(folder), strategy="llm+vision",
                rank=cfg.r, alpha=cfg.lora_alpha, target_modules=targets, context_tags=["test"], data={"frames": 1},
                metrics={}, trained=True)  # fmt: skip
    planner = Planner(
        PlannerConfig(model_id=str(folder), adapter_library=str(tmp_path / "lib"), warm_adapter_slots=False)
    )
    assert not any("another base model" in n for n in planner.model_notes())  # made for this one
    cam = CameraModel.from_camera_info(K, 320, 240)
    base = planner.plan(image, "sort the recyclables", 0.0, 0.0, cam)
    res = planner.swap_adapter("mine")
    assert res.success, res.message
    tuned = planner.plan(image, "sort the recyclables", 0.0, 0.0, cam)
    assert tuned.adapter_id == "mine" and not np.allclose(tuned.latent, base.latent, atol=1e-4)


def test_the_shipped_library_is_named_as_made_for_another_base_and_its_swaps_refused(user_vlm):
    from s1s2 import repo_root
    from vlm_planner.config import PlannerConfig
    from vlm_planner.planner import Planner

    _, folder = user_vlm
    library = repo_root() / "models" / "adapters"  # the sim VLM's adapters, the default library
    planner = Planner(PlannerConfig(model_id=str(folder), adapter_library=str(library)))
    notes = [n for n in planner.model_notes() if "another base model" in n]
    assert len(notes) == 1 and all(a in notes[0] for a in ("daylight", "night_noise", "low_sun_glare"))
    res = planner.swap_adapter("night_noise")
    assert not res.success and "another base model" in res.message
    assert planner.active_adapter == ""  # still the base model


def test_default_lora_targets_name_the_model_when_nothing_matches():
    import torch.nn as nn

    from s1s2_training.vlm.qlora import GENERIC_TARGETS, default_targets

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Sequential(nn.Linear(4, 4))
            self.attn = nn.Module()
            self.attn.q_proj = nn.Linear(4, 4)

    assert default_targets(Tiny()) == GENERIC_TARGETS  # no language_model / vision_tower: the generic names
    bare = nn.Sequential(nn.Linear(4, 4))
    with pytest.raises(ValueError, match="Sequential: neither"):
        default_targets(bare)


def test_a_processor_that_needs_torchvision_is_a_config_error_naming_the_model(tmp_path):
    from vlm_planner.config import PlannerConfig
    from vlm_planner.model import load_vlm

    folder = build_qwen2_vl(tmp_path / "qwen2_vl")
    cfg = PlannerConfig(model_id=str(folder))
    if importlib.util.find_spec("torchvision") is not None:  # an install with torchvision loads it
        assert load_vlm(cfg).linear4bit > 0
        return
    with pytest.raises(ConfigError, match="torchvision") as e:
        load_vlm(cfg)
    assert "parameter 'model_id'" in str(e.value) and str(folder) in str(e.value)
