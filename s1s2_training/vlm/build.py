"""The project's sim VLM: tokenizer, processor, model, and `s1s2 models sim_vlm`.

    s1s2 models sim_vlm          (or: python -m s1s2_training.vlm.build models/sim_vlm)

`build(out_dir, seed)` (the models/ builder, see s1s2/models.py) runs the whole recipe:

  1. data       daylight sim frames with the scripted expert picking: default spawn density and
                dense scenes (2..4 items on the belt before each frame), seeded
                (s1s2_training.vlm.data), into a temporary folder, never the repo;
  2. pretrain   a LLaVA (CLIP vision tower -> MLP projector -> Llama) with the Hugging Face
                Trainer: optional vision stage (tower + projector + per-patch head), then the
                whole model on the planner's exact prompt and answer (s1s2_training.vlm.pretrain);
                the goal-latent projection is trained with it;
  3. calibrate  the confidence calibration (and its min_confidence) on held-out frames through
                the planner's own decoding (s1s2_training.vlm.calibrate): the card's on the token
                features alone, the daylight context's (step 6) with the previous plan's agreement;
  4. save       save_pretrained (model, processor, tokenizer, chat template) + latent projection +
                model card s1s2_vlm.json, so the planner's generic loader
                (AutoModelForImageTextToText + AutoProcessor, 4-bit NF4) serves it like a hub model;
  5. evaluate   on held-out seeds (default density and dense), the model loaded 4-bit NF4 + double
                quantisation (s1s2_training.vlm.evaluate), and a latency check through the Planner;
  6. adapters   starter LoRA adapters (B = 0, untrained) for every lighting domain are written for
                the new base, so the library verifies; `s1s2 planner finetune` replaces them. The
                daylight starter stays B = 0 and carries the daylight context's calibration.

Tokenizer. Pre-tokenisation isolates digit runs, so a number never merges with text; digit runs
are byte-level BPE merged up to one token per integer 0..MAX_NUMBER (checked). Text chunks are not
split at spaces ("superword" BPE): the BPE learns the planner's fixed prompt and the answer
prefixes as a few long tokens, e.g. " label=pet_bottle u=" and " label=none" are single tokens;
any other text still encodes losslessly (byte-level alphabet) in smaller pieces.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from conveyor_sim.lighting import DOMAINS as LIGHTING_DOMAINS
from s1s2.cell import DEFAULT_CELL

DOMAINS = tuple(LIGHTING_DOMAINS)
# Starter adapters (B = 0): the lecture's LLM + vision LoRA targets.
LORA_TARGETS = (
    r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj)$|.*vision_tower.*\.(q_proj|k_proj|v_proj|out_proj)$"
)
LORA_RANK = 8
LORA_ALPHA = 16

CLASSES = tuple(DEFAULT_CELL.class_names)
BINS = tuple(DEFAULT_CELL.bin_ids)
SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>", "<image>")
MAX_NUMBER = 999  # 0..999 are single tokens (pixel coordinates, norm1000 coordinates)

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{{ message['role'] | upper }}: "
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}<image>\n"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)

# Instructions the tokenizer sees (the planner's default first). Only the default is trained on.
INSTRUCTIONS = (
    "sort the recyclables",
    "pick the nearest item",
    "pick the next bottle",
    "put cans in the metal bin",
    "only glass",
    "ignore paper",
    "stop",
    "hold",
)


@dataclass(frozen=True)
class Arch:
    """Model size. Defaults: the shipped sim VLM (docs/sim_vlm.md)."""

    image_size: int = 128
    patch_size: int = 16
    vision_hidden: int = 128
    vision_layers: int = 4
    vision_heads: int = 4
    vision_mlp: int = 512
    text_hidden: int = 128
    text_layers: int = 4
    text_heads: int = 4
    text_kv_heads: int = 2
    text_mlp: int = 512
    merge_words: bool = True  # superword BPE (see module docstring); False: split at spaces
    pos_init: float = (
        0.3  # std of the 2-D sinusoidal init of the CLIP position embeddings (0: CLIP's random init)
    )
    vocab_size: int = 2048

    def as_dict(self) -> dict:
        return asdict(self)


def _bpe(texts, vocab_size: int, merge_words: bool):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(r"\d+"), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=not merge_words),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
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


def _prompts(processor) -> list[str]:
    from vlm_planner import config, planner

    w, h = DEFAULT_CELL.camera.width, DEFAULT_CELL.camera.height
    return [
        planner.build_prompt(processor, config.DEFAULT_PROMPT, instr, CLASSES, w, h) for instr in INSTRUCTIONS
    ]


def build_tokenizer(arch: Arch = Arch()):
    """Byte-level BPE trained on the planner's prompts, answers and the integers 0..MAX_NUMBER."""
    # The prompt text is rendered by the real chat template, so merges match what the planner sends.
    provisional = _bpe(["label=none"], 300, arch.merge_words)
    prompts = _prompts(build_processor(provisional, arch))
    texts = []
    for p in prompts:
        texts += [p] * 20
    for c in CLASSES:
        texts += [f" label={c} u=1 v=1"] * 50
    texts += [" label=none"] * 50
    # every integer often enough that BPE merges each into one token
    texts += [f" u={n} v={n}" for n in range(MAX_NUMBER + 1) for _ in range(4)]
    tok = _bpe(texts, arch.vocab_size, arch.merge_words)
    ids = number_token_ids(tok)  # raises if an integer is not a single token
    assert len(ids) == MAX_NUMBER + 1
    return tok


def number_token_ids(tokenizer, max_number: int = MAX_NUMBER) -> list[int]:
    """Token id of each integer 0..max_number; ValueError if one is not a single token."""
    out = []
    for n in range(max_number + 1):
        ids = tokenizer(str(n), add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise ValueError(f"integer {n} is {len(ids)} tokens, expected 1")
        out.append(ids[0])
    return out


def build_processor(tokenizer, arch: Arch = Arch()):
    from transformers import LlavaProcessor
    from transformers.models.clip import CLIPImageProcessorPil

    # Slow (PIL) image processor, no centre crop: the whole frame, squashed to a square.
    image_processor = CLIPImageProcessorPil(
        size={"height": arch.image_size, "width": arch.image_size},
        do_center_crop=False,
        crop_size={"height": arch.image_size, "width": arch.image_size},
    )
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=arch.patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
    )


def sinusoid_table(n: int, dim: int, min_period: float = 3.0, max_period: float = 2000.0):
    """(n, dim) table: row k = [sin(2 pi k / T_j), cos(2 pi k / T_j)] for dim/2 geometric periods."""
    import torch

    half = dim // 2
    periods = torch.logspace(math.log10(min_period), math.log10(max_period), half)
    k = torch.arange(n, dtype=torch.float32)[:, None]
    ang = 2 * math.pi * k / periods[None, :]
    table = torch.zeros(n, dim)
    table[:, 0 : 2 * half : 2] = torch.sin(ang)
    table[:, 1 : 2 * half : 2] = torch.cos(ang)
    return table


def init_number_embeddings(model, number_ids, scale: float = 0.05) -> None:
    """Input and output embeddings of the number tokens := scale * sinusoids of their value, so
    neighbouring numbers start close (the soft-label number loss then has structure to use)."""
    import torch

    ids = torch.tensor(number_ids)
    with torch.no_grad():
        for emb in (model.get_input_embeddings().weight, model.get_output_embeddings().weight):
            emb[ids] = scale * sinusoid_table(len(number_ids), emb.shape[1]).to(emb.dtype)


def init_vision_positions(model, std: float) -> None:
    """CLIP position embeddings := 2-D sinusoids of the camera-frame position of each patch centre,
    scaled to `std` (CLS row: 0). At init the patch embeddings have std ~0.4 and CLIP's random
    position embeddings 0.02, so the tower starts almost blind to where a patch is; this makes
    position as salient as content from step 0 (it stays trainable)."""
    import torch

    emb = model.model.vision_tower.embeddings.position_embedding.weight
    n, dim = emb.shape
    grid = int(round((n - 1) ** 0.5))
    half = dim // 2
    quarter = half // 2
    periods = torch.logspace(math.log10(1.5), math.log10(4.0 * grid), quarter)  # in patches
    idx = torch.arange(grid * grid)
    col = (idx % grid).float() + 0.5
    row = (idx // grid).float() + 0.5
    table = torch.zeros(grid * grid, dim)
    for k, coord in enumerate((col, row)):
        ang = 2 * math.pi * coord[:, None] / periods[None, :]
        table[:, k * half : k * half + 2 * quarter : 2] = torch.sin(ang)
        table[:, k * half + 1 : k * half + 2 * quarter : 2] = torch.cos(ang)
    table = table / table.std() * std
    with torch.no_grad():
        emb[0].zero_()
        emb[1:] = table.to(emb.dtype)


def build_model(tokenizer, arch: Arch = Arch(), seed: int = 0, sinusoid_numbers: bool = True):
    import torch
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    vision = CLIPVisionConfig(
        hidden_size=arch.vision_hidden,
        intermediate_size=arch.vision_mlp,
        num_hidden_layers=arch.vision_layers,
        num_attention_heads=arch.vision_heads,
        image_size=arch.image_size,
        patch_size=arch.patch_size,
        projection_dim=arch.vision_hidden,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=arch.text_hidden,
        intermediate_size=arch.text_mlp,
        num_hidden_layers=arch.text_layers,
        num_attention_heads=arch.text_heads,
        num_key_value_heads=arch.text_kv_heads,
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
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
        projector_hidden_act="gelu",
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    if sinusoid_numbers:
        init_number_embeddings(model, number_token_ids(tokenizer))
    if arch.pos_init > 0:
        init_vision_positions(model, arch.pos_init)
    gc = model.generation_config
    gc.bos_token_id, gc.eos_token_id, gc.pad_token_id = (
        tokenizer.bos_token_id,
        tokenizer.eos_token_id,
        tokenizer.pad_token_id,
    )
    gc.do_sample = False
    return model.eval()


def build_adapters(model_dir: Path, out_dir: Path, seed: int) -> dict:
    """One untrained LoRA adapter (B = 0) per lighting domain, peft save_pretrained format."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    from s1s2.adapters import LIGHTING_TAG, base_fingerprint, write_manifest

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
            context_tags=[f"{LIGHTING_TAG}{domain}"],
            data={"frames": 0, "notes": "none: untrained starter"},
            metrics={},
            trained=False,
            notes=f"untrained starter adapter (seed {seed + 1 + i}): LoRA B = 0, so outputs equal the base model's",
        )
        (target / "README.md").unlink(missing_ok=True)  # peft's template card says nothing true here
        sizes[domain] = sum(f.stat().st_size for f in target.iterdir())
    return sizes


@dataclass
class Recipe:
    """Everything `s1s2 models sim_vlm` does, sized. `full()` is the shipped recipe; tests use a
    tiny one. Episodes are 40 simulated seconds of the scripted expert picking."""

    pretrain: dict = field(default_factory=dict)  # PretrainConfig overrides (arch: Arch fields)
    # 120 + 180 since 2026-12-05 (60 + 90 before): twice the scenes at the same steps narrowed the
    # held-out gap (held-out class 84.4 -> 86.2 %, dense 89.2 -> 91.2 %; docs/sim_vlm.md)
    train_default_episodes: int = 120
    train_dense_episodes: int = 180
    frame_every_s: float = 0.5  # training frames: one per 0.5 s (+-30 %) of each episode
    calib_default_episodes: int = 12
    calib_dense_episodes: int = 6
    test_default_episodes: int = 20
    test_dense_episodes: int = 12
    episode_s: float = 40.0
    workers: int = 2  # sim processes generating frames
    # torch threads for training. 2 on an otherwise idle 2-core machine: 1.63x the steps per second
    # of 1 thread (2.89 vs 1.78 whole-model steps/s, same losses). Never share the machine with it:
    # while another job held the other core, 2 threads were 18x SLOWER per step than 1
    # (oversubscribed OpenMP spin-waits); pass threads=1 then (the weights may then differ in the last bits).
    threads: int = 2
    latency_plans: int = 300  # Planner.plan calls timed on one thread (0: skip)

    @classmethod
    def full(cls) -> Recipe:
        """The shipped recipe: 21,500 training frames of 300 episodes, vision stage 1000 steps, then
        the whole model 3500 steps, batch 32, 2 threads (about 32 min from an empty frame cache on
        an idle 2-core machine; the 2000-step, 1-thread recipe before 2026-12-05 was underfitting:
        docs/sim_vlm.md)."""
        return cls(
            pretrain=dict(
                vision_steps=1000, steps=3500, batch_size=32, lr=2e-3, label_weight=3.0, bg_weight=0.2
            )
        )


def _spec(mode, seed0, n, episode_s, every, keep_full=False):
    from .data import FrameSpec, seeds

    return FrameSpec(
        mode, "daylight", seeds(seed0, n), episode_s=episode_s, frame_every_s=every, keep_full=keep_full
    )


def train_specs(r: Recipe) -> list:
    """The daylight training frames: default density + dense (2..4 items), one per frame_every_s."""
    from . import data as dm

    return [
        _spec("default", dm.TRAIN_DEFAULT_SEED0, r.train_default_episodes, r.episode_s, r.frame_every_s),
        _spec("dense", dm.TRAIN_DENSE_SEED0, r.train_dense_episodes, r.episode_s, r.frame_every_s),
    ]


def calibration_specs(r: Recipe) -> list:
    """Daylight frames the confidence calibration is fitted on (1 Hz, as the planner plans)."""
    from . import data as dm

    return [
        _spec("default", dm.CALIB_DEFAULT_SEED0, r.calib_default_episodes, r.episode_s, 1.0),
        _spec("dense", dm.CALIB_DENSE_SEED0, r.calib_dense_episodes, r.episode_s, 1.0),
    ]


def held_out_specs(r: Recipe) -> dict:
    """The held-out daylight test sets (1 Hz): default density and dense."""
    from . import data as dm

    return {
        "default": _spec("default", dm.TEST_DEFAULT_SEED0, r.test_default_episodes, r.episode_s, 1.0),
        "dense": _spec("dense", dm.TEST_DENSE_SEED0, r.test_dense_episodes, r.episode_s, 1.0, keep_full=True),
    }


def build(out_dir: Path, seed: int = 0, recipe: Recipe | None = None, adapters_dir: Path | None = None,
          work_dir: Path | None = None) -> dict:  # fmt: skip
    """`s1s2 models sim_vlm`: data -> pretrain -> calibrate -> save -> evaluate -> starter adapters.
    Frames are cached in work_dir (default runs/vlm_data, ignored by git), never in models/."""
    import torch

    from s1s2 import repo_root
    from vlm_planner.model import nf4_config

    from . import calibrate as calib
    from . import data as dm
    from . import evaluate as ev
    from .pretrain import PretrainConfig, apply_overrides, train

    recipe = recipe or Recipe.full()
    out_dir = Path(out_dir)
    adapters_dir = Path(adapters_dir) if adapters_dir else out_dir.parent / "adapters"
    work_dir = Path(work_dir) if work_dir else repo_root() / "runs" / "vlm_data"
    cfg = apply_overrides(
        PretrainConfig(seed=seed, threads=recipe.threads),
        [f"{k}={v}" for k, v in recipe.pretrain.items()],
    )
    size = cfg.arch.image_size
    r = recipe
    t0 = time.time()
    calib_specs = calibration_specs(r)
    test_specs = held_out_specs(r)
    print("[sim_vlm] 1/6 data: daylight frames, default density + dense (2..4 items)", flush=True)
    data = dm.concat(
        [dm.cached(s, size, work_dir, r.workers, desc=f"train frames {s.mode}") for s in train_specs(r)]
    )
    calib_data = dm.concat(
        [dm.cached(s, size, work_dir, r.workers, desc=f"calibration frames {s.mode}") for s in calib_specs]
    )
    tests = {
        k: dm.cached(s, size, work_dir, r.workers, desc=f"test frames {k}") for k, s in test_specs.items()
    }
    data_s = time.time() - t0
    torch.set_num_threads(r.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print(f"[sim_vlm] 2/6 pretrain on {len(data['label'])} frames (HF Trainer)", flush=True)
        res = train(cfg, data, tmp)
        print("[sim_vlm] 3/6 calibrate confidence on held-out frames", flush=True)
        t_cal = time.time()
        # The card takes the token features alone (calib.CARD_LAYOUTS), thresholded in each scene
        # type apart (by_scene); the daylight starter adapter the better of both layouts,
        # thresholded over the calibration mix like every context (step 6), for the rate's upper bound.
        cal = calib.fit_on(tmp, calib_data, confidence=calib.BOUND_CONFIDENCE)
        card_cal = calib.fit_on(tmp, calib_data, layouts=calib.CARD_LAYOUTS, by_scene=True)
        cal_s = time.time() - t_cal
        card_path = tmp / "s1s2_vlm.json"
        card = json.loads(card_path.read_text())
        if card_cal["params"] is not None:
            card["confidence_calibration"] = card_cal["params"]
        card["data"] = {"train": dm.summary(data), "calibration": dm.summary(calib_data)}
        card["notes"] = "trained on daylight sim frames by `s1s2 models sim_vlm` (docs/sim_vlm.md)"
        card_path.write_text(json.dumps(card, indent=2, default=str) + "\n")
        (tmp / "README.md").write_text(_model_readme(cfg, data, seed))
        print("[sim_vlm] 4/6 save", flush=True)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        shutil.copytree(tmp, out_dir)
    print("[sim_vlm] 5/6 evaluate on held-out seeds (NF4 + double quant)", flush=True)
    t_ev = time.time()
    metrics_test = {}
    for k, d in tests.items():
        metrics_test[k] = ev.public(ev.evaluate(out_dir, dm.scored(k, d), "nf4", progress=True))
        print(f"[sim_vlm]   {k}: {json.dumps(metrics_test[k])}", flush=True)
    latency = {}
    if r.latency_plans:
        dense = tests["dense"]
        lat = ev.eval_planner(out_dir, dense, limit=r.latency_plans)
        latency = {k: lat[k] for k in ("plan_ms_p50", "plan_ms_p99", "plan_ms_max", "threads")}
        latency["plans"] = int(lat["frames"])
        latency["class_acc_through_planner"] = round(lat["class_acc"], 4)
    eval_s = time.time() - t_ev
    print("[sim_vlm] 6/6 starter adapters (B = 0) for the new base", flush=True)
    adapter_sizes = build_adapters(out_dir, adapters_dir, seed)
    if cal["params"] is not None:
        # The daylight context's own calibration: B = 0, so its answers are the base's, on which
        # `cal` was fitted (the same daylight calibration frames `python -m
        # s1s2_training.vlm.calibrate daylight` uses).
        own, t, info = calib.own_calibration(cal)
        info["data"] = calib.calibration_note("daylight")
        calib.set_adapter_calibration(adapters_dir / "daylight", own, t, info)
    from transformers import AutoModelForImageTextToText

    fp32 = AutoModelForImageTextToText.from_pretrained(str(out_dir), local_files_only=True)
    nf4 = AutoModelForImageTextToText.from_pretrained(
        str(out_dir),
        local_files_only=True,
        quantization_config=nf4_config(torch.float32),
        device_map={"": "cpu"},
    )
    size_b = sum(f.stat().st_size for f in out_dir.iterdir())
    total_s = time.time() - t0
    test_desc = {k: f"seeds {s.seeds[0]}..{s.seeds[-1]}" for k, s in test_specs.items()}
    return {
        "name": "sim_vlm",
        "path": str(out_dir),
        "command": "s1s2 models sim_vlm",
        "data": (
            f"{len(data['label'])} daylight sim frames with the scripted expert picking: "
            f"{r.train_default_episodes} default-density episodes (seeds {dm.TRAIN_DEFAULT_SEED0}..) + "
            f"{r.train_dense_episodes} dense 2..4-item episodes (seeds {dm.TRAIN_DENSE_SEED0}..), one frame per "
            f"{r.frame_every_s} s; calibration {len(calib_data['label'])} frames (seeds {dm.CALIB_DEFAULT_SEED0}.., "
            f"{dm.CALIB_DENSE_SEED0}..); held-out test default {test_desc['default']}, dense {test_desc['dense']}"
        ),
        "seed": seed,
        "trained": True,
        "notes": (
            "LLaVA (CLIP 4x128 @128 px, patch 16 -> Llama 4x128) pretrained on daylight sim frames with the HF "
            "Trainer; calibrated confidence and a trained goal-latent projection in the model card; "
            f"adapters in {adapters_dir.name}/ are B = 0 starters until `s1s2 models adapters` trains them"
        ),
        "recipe": {"pretrain": asdict(cfg), **{k: v for k, v in asdict(r).items() if k != "pretrain"}},
        "metrics": {
            "test_nf4": metrics_test,
            "latency_nf4_1thread": latency,
            "calibration": card_cal["metrics"],
            "calibration_daylight_adapter": cal["metrics"] if cal["params"] is not None else None,
            "parameters": int(sum(p.numel() for p in fp32.parameters())),
            "footprint_fp32_bytes": int(fp32.get_memory_footprint()),
            "footprint_nf4_bytes": int(nf4.get_memory_footprint()),
            "model_dir_bytes": size_b,
            "adapter_bytes": adapter_sizes,
            "adapters_trained": False,
            "train_frames": int(len(data["label"])),
            "times_s": {
                "data": round(data_s, 1),
                "train": round(res["train_s"], 1),
                "calibrate": round(cal_s, 1),
                "evaluate": round(eval_s, 1),
                "total": round(total_s, 1),
            },
            "train_loss": round(float(res["train_loss"]), 4),
            "torch_threads": r.threads,
            "data_workers": r.workers,
        },
        "adapters_path": str(adapters_dir),
    }


def _model_readme(cfg, data, seed) -> str:
    a = cfg.arch
    return (
        "# sim_vlm (trained)\n\n"
        f"LLaVA: CLIP ViT {a.vision_layers}x{a.vision_hidden} at {a.image_size} px, patch {a.patch_size} "
        f"({(a.image_size // a.patch_size) ** 2} image tokens) -> MLP projector -> Llama {a.text_layers}x{a.text_hidden}; "
        f"byte-level superword BPE, every integer 0..{MAX_NUMBER} one token.\n"
        f"Pretrained by `s1s2 models sim_vlm` (s1s2_training/vlm/build.py, seed {seed}) on "
        f"{len(data['label'])} daylight sim frames. Answers `label=<class> u=<col> v=<row>` or `label=none` "
        "(u, v: the target's pick point projected at belt height, pixels of the 320x240 frame).\n"
        "s1s2_vlm.json holds the confidence calibration and the training record; "
        "latent_projection.safetensors the trained goal-latent projection. See docs/sim_vlm.md.\n"
    )


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("models/sim_vlm")
    print(json.dumps(build(target, int(sys.argv[2]) if len(sys.argv) > 2 else 0), indent=2, default=str))
