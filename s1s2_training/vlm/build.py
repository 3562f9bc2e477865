"""Build the planner's stand-in VLM and its starter LoRA adapter library, all from scratch, offline.

    s1s2 models sim_vlm          (or: python -m s1s2_training.vlm.build models/sim_vlm)

Writes, with `save_pretrained`, a tiny RANDOMLY INITIALISED model of a standard transformers VLM
architecture, LLaVA (`LlavaForConditionalGeneration`: CLIP vision tower -> MLP projector -> Llama),
so the planner's loader (`AutoModelForImageTextToText` + `AutoProcessor`) serves it exactly as it
would serve a hub model (e.g. llava-hf/llava-interleave-qwen-0.5b-hf or, another architecture,
HuggingFaceTB/SmolVLM-256M-Instruct):

    models/sim_vlm/      config.json, model.safetensors, generation_config.json,
                         tokenizer.json (byte-level BPE trained here on the project's words),
                         processor_config.json (slow PIL CLIP image processor: no torchvision),
                         chat_template.jinja, latent_projection.safetensors, s1s2_vlm.json, README.md
    models/adapters/<domain>/   one peft LoRA adapter per lighting domain (adapter_config.json +
                         adapter_model.safetensors + s1s2_adapter.json)

Nothing here is trained: the model answers noise (the planner then holds), and every adapter has
B = 0 (peft's LoRA init), so each is identical to the base model until a real fine-tune replaces it.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from conveyor_sim.lighting import DOMAINS as LIGHTING_DOMAINS
from s1s2.cell import DEFAULT_CELL

# The cell description is the one source of class, bin and lighting-domain names.
CLASSES = tuple(DEFAULT_CELL.class_names)
BINS = tuple(DEFAULT_CELL.bin_ids)
DOMAINS = tuple(LIGHTING_DOMAINS)
SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>", "<image>")
IMAGE_SIZE = 64
PATCH_SIZE = 8
VOCAB_SIZE = 1024
# LoRA targets: the language model's attention projections and the CLIP tower's (vision LoRA for
# visual domain shift, the lecture's point: a text-only LoRA cannot fix corrupted visual features).
LORA_TARGETS = (
    r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj)$|.*vision_tower.*\.(q_proj|k_proj|v_proj|out_proj)$"
)
LORA_RANK = 8
LORA_ALPHA = 16

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{{ message['role'] | upper }}: "
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}<image>\n"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


def _corpus() -> list[str]:
    """Text the tokenizer's merges are learnt from: prompts, answers, numbers, instruction words."""
    from vlm_planner.config import DEFAULT_PROMPT

    words = [
        "sort the recyclables",
        "pick the nearest item",
        "pick the next bottle",
        "put cans in the metal bin",
        "only glass",
        "ignore paper",
        "stop",
        "hold",
        "first leftmost rightmost closest largest smallest",
        "USER: ASSISTANT:",
    ]
    texts = []
    for instr in words:
        texts.append(
            DEFAULT_PROMPT.format(instruction=instr, classes=", ".join(CLASSES), width=320, height=240)
        )
    for i in range(1001):
        cls = CLASSES[i % len(CLASSES)]
        texts.append(f"label={cls} u={i} v={(i * 7) % 480}")
    texts += ["label=none"] * 20 + [" ".join(BINS)] * 20 + [" ".join(CLASSES)] * 20
    return texts


def build_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # any text encodes: no <unk> in practice
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer)
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        extra_special_tokens={"image_token": "<image>"},
        model_max_length=512,
    )


def build_model(tokenizer, seed: int):
    import torch
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    vision = CLIPVisionConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
        projection_dim=64,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default",  # drop CLS: (64/8)^2 = 64 image tokens
        vision_feature_layer=-1,
        projector_hidden_act="gelu",
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config).eval()
    gc = model.generation_config
    gc.bos_token_id, gc.eos_token_id, gc.pad_token_id = (
        tokenizer.bos_token_id,
        tokenizer.eos_token_id,
        tokenizer.pad_token_id,
    )
    gc.do_sample = False
    return model


def build_processor(tokenizer):
    from transformers import LlavaProcessor
    from transformers.models.clip import CLIPImageProcessorPil

    # Slow (PIL) image processor. No centre crop: the whole camera image is seen, squashed to
    # 64x64, so the model's u, v refer to the full frame.
    image_processor = CLIPImageProcessorPil(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        do_center_crop=False,
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
    )
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=PATCH_SIZE,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # the CLS token the tower adds and "default" drops
        chat_template=CHAT_TEMPLATE,
    )


def build_adapters(model_dir: Path, out_dir: Path, seed: int) -> dict:
    """One untrained LoRA adapter (B = 0) per lighting domain, peft save_pretrained format."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    from s1s2.adapters import base_fingerprint, write_manifest

    out_dir.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for i, domain in enumerate(DOMAINS):
        base = AutoModelForImageTextToText.from_pretrained(str(model_dir), local_files_only=True)
        torch.manual_seed(seed + 1 + i)  # A differs per adapter; B = 0 makes them all no-ops
        cfg = LoraConfig(
            r=LORA_RANK,
            lora_alpha=LORA_ALPHA,
            target_modules=LORA_TARGETS,
            lora_dropout=0.05,
            task_type="CAUSAL_LM",
        )
        peft_model = get_peft_model(base, cfg)
        target = out_dir / domain
        if target.exists():
            shutil.rmtree(target)
        peft_model.save_pretrained(str(target))
        ac = json.loads((target / "adapter_config.json").read_text())
        ac["base_model_name_or_path"] = "models/sim_vlm"  # relative: the checkout may move
        (target / "adapter_config.json").write_text(json.dumps(ac, indent=2, sort_keys=True) + "\n")
        write_manifest(
            target,
            adapter_id=domain,
            base_fingerprint=base_fingerprint(model_dir),
            base_model="models/sim_vlm",
            strategy="starter",
            rank=LORA_RANK,
            alpha=LORA_ALPHA,
            target_modules=LORA_TARGETS,
            context_tags=[f"lighting:{domain}"],
            data={"frames": 0, "notes": "none: untrained starter"},
            metrics={},
            trained=False,
            notes=f"untrained starter adapter (seed {seed + 1 + i}): LoRA B = 0, so outputs equal the base model's",
        )
        (target / "README.md").unlink(missing_ok=True)  # peft's template card says nothing true here
        sizes[domain] = sum(f.stat().st_size for f in target.iterdir())
    return sizes


def build(out_dir: Path, seed: int, adapters_dir: Path | None = None) -> dict:
    import torch
    from transformers import AutoModelForImageTextToText

    from vlm_planner import latent
    from vlm_planner.model import nf4_config

    out_dir = Path(out_dir)
    adapters_dir = Path(adapters_dir) if adapters_dir else out_dir.parent / "adapters"
    tokenizer = build_tokenizer()
    model = build_model(tokenizer, seed)
    processor = build_processor(tokenizer)
    with tempfile.TemporaryDirectory() as tmp:
        # Write to a temp folder, then replace: a failed build never leaves a half model behind.
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        hidden = model.config.text_config.hidden_size
        latent.save_projection(Path(tmp) / latent.PROJECTION_FILE, latent.make_projection(hidden, seed), seed)
        card = {
            "architecture": "LlavaForConditionalGeneration",
            "trained": False,
            "notes": f"random init (seed {seed}); answers are noise, so the planner holds",
            "classes": list(CLASSES),
            "answer_format": "label=<class> u=<pixel column> v=<pixel row> | label=none",
            "image_size": IMAGE_SIZE,
            "seed": seed,
        }
        (Path(tmp) / "s1s2_vlm.json").write_text(json.dumps(card, indent=2) + "\n")
        (Path(tmp) / "README.md").write_text(
            "# sim_vlm (UNTRAINED)\n\nA tiny randomly initialised LLaVA (CLIP ViT 2x64 + Llama 4x128, "
            f"byte-level BPE vocab {len(tokenizer)}) built by `s1s2_training/vlm/build.py` (seed {seed}).\n"
            "It exists so the planner's real loading path (4-bit NF4 + double quantization, peft LoRA) "
            "runs end to end; its answers are noise. Replace `model_id` with a trained model.\n"
        )
        if out_dir.exists():
            shutil.rmtree(out_dir)
        shutil.copytree(tmp, out_dir)
    n_params = sum(p.numel() for p in model.parameters())
    adapter_sizes = build_adapters(out_dir, adapters_dir, seed)

    # Measure what the planner will hold: fp32 vs 4-bit NF4 + double quant.
    fp32 = AutoModelForImageTextToText.from_pretrained(str(out_dir), local_files_only=True)
    nf4 = AutoModelForImageTextToText.from_pretrained(
        str(out_dir),
        local_files_only=True,
        quantization_config=nf4_config(torch.float32),
        device_map={"": "cpu"},
    )
    size = sum(f.stat().st_size for f in out_dir.iterdir())
    return {
        "name": "sim_vlm",
        "path": str(out_dir),
        "command": "s1s2 models sim_vlm",
        "data": "none (random initialisation; tokenizer merges learnt from the project's prompt/answer words)",
        "seed": seed,
        "trained": False,
        "notes": (
            "UNTRAINED tiny LLaVA stand-in (random weights): the planner loads it through the real "
            "QLoRA path but its answers are noise, so plans are holds. Adapters in "
            f"{adapters_dir.name}/ ({', '.join(DOMAINS)}) are untrained (LoRA B = 0 = base model)."
        ),
        "metrics": {
            "parameters": n_params,
            "vocab_size": len(tokenizer),
            "footprint_fp32_bytes": int(fp32.get_memory_footprint()),
            "footprint_nf4_bytes": int(nf4.get_memory_footprint()),
            "model_dir_bytes": size,
            "adapter_bytes": adapter_sizes,
            "adapters_trained": False,
        },
        "adapters_path": str(adapters_dir),
    }


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("models/sim_vlm")
    print(json.dumps(build(target, int(sys.argv[2]) if len(sys.argv) > 2 else 0), indent=2))
