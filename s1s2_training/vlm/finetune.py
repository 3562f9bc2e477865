"""`s1s2 planner finetune`: QLoRA fine-tuning of the sim VLM for one lighting domain, with the
Hugging Face Trainer (the lecture's LoRA/QLoRA, adapter strategies and data mixing).

    s1s2 planner finetune --domain warm_tungsten --strategy vision --rank 8 --mix 0.1 --steps 300

* Base: the saved model loaded 4-bit NF4 + double quantisation (bitsandbytes), frozen
  (peft.prepare_model_for_kbit_training); compute in fp32 on the CPU, the configured dtype on a
  GPU. LoRA (peft): A ~ Kaiming, B = 0, scale alpha / r, so step 0 is exactly the base model.
* Strategies (lecture): `projector` (LoRA on the MLP projector's two linears), `llm` (LoRA on the
  Llama q/k/v/o), `vision` (LoRA on the CLIP tower's q/k/v/out), or a "+" combination
  (`llm+vision`, `projector+vision`, ... ; all three = `all`). `--targets REGEX` overrides.
* Data mixing: every batch holds round(mix * batch) general daylight frames, the rest domain
  frames (mix = the lecture's lambda), each source reshuffled per pass, seeded. `--modes` picks
  the domain frames' kinds (data.MODES; default "default,dense"; "lazy": items waiting in reach
  with the arm at rest, the closed loop's situation).
* Loss: the pretraining answer loss (cross-entropy on label/format tokens, Gaussian soft labels on
  the numbers) + the goal-latent loss through the base model's FROZEN trained projection P, so
  an adapter keeps the latent's meaning.
* Optimizer (`--optim auto`): bitsandbytes paged 8-bit AdamW (`paged_adamw_8bit`) on CUDA; on the
  CPU bitsandbytes has no paging (it pages through CUDA unified memory), so its 8-bit AdamW
  (`adamw_bnb_8bit`); `--gradient-checkpointing` optional.
* Output: the peft adapter (adapter_config.json + adapter_model.safetensors) registered in the
  adapter library (`s1s2.adapters.add_adapter`: manifest with adapter id, base fingerprint,
  strategy, rank, alpha, targets, context tag, sha256 of the weights, data summary, metrics),
  atomically replacing an adapter of the same id; `s1s2 adapters verify` checks it.
* Evaluation (unless --no-eval): held-out frames of the domain (seeds 930000.., 940000..) with the
  base and with the adapter, and held-out daylight frames with the adapter active (forgetting);
  then its own confidence calibration and min_confidence on calibration frames of its domain
  (daylight included); the metrics go into the manifest.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .data import DOMAIN_TRAIN_MODES

TARGETS = {
    "projector": r".*multi_modal_projector\.(linear_1|linear_2)",
    "llm": r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj)",
    "vision": r".*vision_tower.*\.(q_proj|k_proj|v_proj|out_proj)",
}
ORDER = ("projector", "llm", "vision")


def strategy_parts(strategy: str) -> list[str]:
    parts = ["projector", "llm", "vision"] if strategy == "all" else strategy.split("+")
    bad = [p for p in parts if p not in TARGETS]
    if bad or not parts:
        raise ValueError(
            f"unknown strategy part(s) {bad}; valid: {', '.join(TARGETS)} or a '+' combination, or 'all'"
        )
    return [p for p in ORDER if p in parts]


def strategy_name(strategy: str) -> str:
    """Canonical name (the adapter library's STRATEGIES): parts in projector, llm, vision order."""
    parts = strategy_parts(strategy)
    return "all" if len(parts) == 3 else "+".join(parts)


def target_regex(strategy: str) -> str:
    return "^(" + "|".join(TARGETS[p] for p in strategy_parts(strategy)) + ")$"


@dataclass
class FinetuneConfig:
    strategy: str = "vision"
    rank: int = 8
    alpha: int = 16
    targets: str = ""  # regex; "" = the strategy's
    steps: int = 300
    batch_size: int = 16
    lr: float = 2e-3
    warmup_steps: int = 20
    mix: float = 0.1  # lambda: share of daylight frames in every batch
    sigma_px: float = 1.5
    latent_weight: float = 0.5
    # Paired-render feature distillation (sim only: the same scene rendered in daylight): the
    # adapter's projected image tokens in the domain are pulled toward the base's in daylight
    # (normalised MSE, this weight); daylight mixing frames are pulled toward their own base
    # features (no forgetting). 0 = off. Needs daylight frames paired with the domain frames.
    distill_weight: float = 0.0
    optim: str = "auto"  # auto: paged_adamw_8bit on CUDA, adamw_bnb_8bit on the CPU
    gradient_checkpointing: bool = False
    # train (and later serve) on frames with the base card's input colour constancy
    # (vlm_planner.colour); off for light a per-channel gain cannot undo, such as veiling glare
    colour_constancy: bool = True
    seed: int = 0
    threads: int = 1
    instruction: str = "sort the recyclables"
    progress: bool = True

    def __post_init__(self):
        strategy_parts(self.strategy)
        if not 0.0 <= self.mix < 1.0:
            raise ValueError(f"mix (lambda) {self.mix} outside [0, 1)")
        if self.rank < 1 or self.alpha <= 0 or self.steps < 1 or self.batch_size < 1:
            raise ValueError("rank, alpha, steps and batch_size must be positive")
        if not self.distill_weight >= 0:
            raise ValueError(f"distill_weight {self.distill_weight} must be >= 0")


def pick_optim(cfg: FinetuneConfig, cuda: bool) -> str:
    if cfg.optim != "auto":
        return cfg.optim
    # bitsandbytes pages optimizer state through CUDA unified memory only; on the CPU it warns and
    # falls back ("Paged optimizers are not supported on CPU"), so its plain 8-bit AdamW there.
    return "paged_adamw_8bit" if cuda else "adamw_bnb_8bit"


def make_mixed_dataset(domain, daylight, batch: int, mix: float, steps: int, seed: int):
    import torch

    class MixedDataset(torch.utils.data.Dataset):
        """Index i -> sample i % batch of batch i // batch: the first round(mix * batch) of every
        batch are daylight frames, the rest domain frames (each source reshuffled per pass)."""

        def __init__(self):
            self.n_day = int(round(mix * batch)) if daylight is not None else 0
            rng = np.random.default_rng(seed)
            n_dom = steps * (batch - self.n_day)
            n_day = steps * self.n_day
            self.dom_idx = np.concatenate(
                [rng.permutation(len(domain)) for _ in range(n_dom // len(domain) + 1)]
            )
            self.day_idx = (
                np.concatenate([rng.permutation(len(daylight)) for _ in range(n_day // len(daylight) + 1)])
                if self.n_day
                else np.zeros(0, int)
            )

        def __len__(self):
            return steps * batch

        def __getitem__(self, i):
            b, k = divmod(i, batch)
            if k < self.n_day:
                return daylight[int(self.day_idx[b * self.n_day + k])]
            return domain[int(self.dom_idx[b * (batch - self.n_day) + k - self.n_day])]

    return MixedDataset()


def make_trainer(cfg: FinetuneConfig, base_dir: Path, domain_data: dict, daylight_data: dict | None):
    """The NF4 base with LoRA layers and the HF Trainer over the mixed dataset. Returns
    (trainer, peft_model, trainable parameters, optimizer name, the trainer's scratch folder)."""
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from safetensors.numpy import load_file
    from torch import nn
    from torch.utils.data import SequentialSampler
    from transformers import AutoModelForImageTextToText, Trainer, TrainingArguments

    from vlm_planner import latent as latent_mod
    from vlm_planner.colour import InputNorm
    from vlm_planner.model import load_processor, nf4_config, pin_4bit_reference_kernel

    from .pretrain import Collator, FrameDataset, Prompt, soft_number_targets

    torch.set_num_threads(cfg.threads)
    cuda = torch.cuda.is_available()
    base_dir = Path(base_dir)
    model = AutoModelForImageTextToText.from_pretrained(
        str(base_dir),
        local_files_only=True,
        quantization_config=nf4_config(torch.float32),
        dtype=torch.float32,
        device_map={"": "cuda" if cuda else "cpu"},
    )
    pin_4bit_reference_kernel(model)
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)
    processor = load_processor(str(base_dir))
    torch.manual_seed(cfg.seed)
    targets = cfg.targets or target_regex(cfg.strategy)
    lcfg = LoraConfig(
        r=cfg.rank, lora_alpha=cfg.alpha, target_modules=targets, lora_dropout=0.0, task_type="CAUSAL_LM"
    )
    peft_model = get_peft_model(model, lcfg)
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    if trainable == 0:
        raise ValueError(f"targets {targets!r} match no layer of {base_dir}")
    card = json.loads((base_dir / "s1s2_vlm.json").read_text())
    prompt = Prompt(
        processor, cfg.instruction, norm=InputNorm.from_card(card) if cfg.colour_constancy else None
    )
    proj = torch.from_numpy(load_file(str(base_dir / latent_mod.PROJECTION_FILE))["projection"])

    class FinetuneModule(nn.Module):
        def __init__(self):
            super().__init__()
            self.peft = peft_model
            self.vlm = peft_model.base_model.model  # the LLaVA with LoRA layers injected
            self.n_prompt = len(prompt.ids)
            self.register_buffer("projection", proj, persistent=False)
            self.image_tokens: list = []  # the projector's output of the last forward (distillation)
            if cfg.distill_weight > 0:
                self.vlm.model.multi_modal_projector.register_forward_hook(
                    lambda _m, _i, out: self.image_tokens.append(out)
                )

        def forward(self, **batch):
            out = self.vlm.model(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                pixel_values=batch["pixel_values"],
            )
            h = out.last_hidden_state
            a_len = batch["answer"].shape[1]
            hs = h[:, self.n_prompt - 1 : self.n_prompt - 1 + a_len]
            logp = torch.log_softmax(self.vlm.lm_head(hs).float(), -1)
            kind = batch["kind"]
            hard = kind == 0
            ce = -logp.gather(-1, batch["answer"][..., None]).squeeze(-1)
            loss_tok = (ce * hard).sum() / hard.sum().clamp(min=1)
            num = kind == 1
            loss_num = logp.sum() * 0.0
            if num.any():
                q = soft_number_targets(batch["value"][num].cpu(), cfg.sigma_px).to(logp.device)
                loss_num = -(q * logp[num][:, prompt.number_ids.to(logp.device)]).sum(-1).mean()
            loss = loss_tok + loss_num
            if cfg.distill_weight > 0:
                s, t = self.image_tokens[-1].float(), batch["teacher"].float()
                self.image_tokens.clear()
                loss = loss + cfg.distill_weight * ((s - t) ** 2).sum(-1).mean() / (t**2).sum(-1).mean()
            if cfg.latent_weight > 0:
                z = h[:, : self.n_prompt].float().mean(1) @ self.projection
                loss = loss + cfg.latent_weight * ((z - batch["latent_target"]) ** 2).sum(-1).mean()
            return loss

    module = FinetuneModule()
    dom = FrameDataset(domain_data, prompt)
    day = FrameDataset(daylight_data, prompt) if daylight_data is not None and cfg.mix > 0 else None
    collator = Collator(prompt)
    if cfg.distill_weight > 0:
        teacher = teacher_features(module.vlm, peft_model, daylight_data, domain_data, prompt, collator)
        dom = _WithTeacher(dom, teacher)
        day = _WithTeacher(day, teacher) if day is not None else None
        collator = _teacher_collator(prompt)
    ds = make_mixed_dataset(dom, day, cfg.batch_size, cfg.mix, cfg.steps, cfg.seed)

    class QLoRATrainer(Trainer):
        def _get_train_sampler(self, *a, **k):
            return SequentialSampler(self.train_dataset)  # batches are composed by the mixed dataset

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss = model(**inputs)
            return (loss, {"loss": loss}) if return_outputs else loss

    optim = pick_optim(cfg, cuda)
    work = Path(tempfile.mkdtemp(prefix="finetune-"))
    args = TrainingArguments(
        output_dir=str(work),
        per_device_train_batch_size=cfg.batch_size,
        max_steps=cfg.steps,
        learning_rate=cfg.lr,
        warmup_steps=min(cfg.warmup_steps, max(0, cfg.steps - 1)),
        lr_scheduler_type="cosine",
        weight_decay=0.0,
        logging_steps=max(1, min(25, cfg.steps // 4)),
        save_strategy="no",
        report_to=[],
        dataloader_num_workers=0,
        seed=cfg.seed,
        data_seed=cfg.seed,
        use_cpu=not cuda,
        remove_unused_columns=False,
        optim=optim,
        disable_tqdm=not cfg.progress,
    )
    trainer = QLoRATrainer(model=module, args=args, train_dataset=ds, data_collator=collator)
    return trainer, peft_model, trainable, optim, work


PAIRED_KEYS = ("seed", "time", "label", "pick")


def teacher_features(vlm, peft_model, daylight_data, domain_data, prompt, collator, batch: int = 64):
    """The base's projected image tokens (adapter disabled) of each daylight frame, float32
    (N, tokens, hidden): the distillation targets of the paired domain frames. Refuses daylight
    frames that are not the domain frames' scenes (same seeds, times, labels, pick points)."""
    import torch

    from .pretrain import FrameDataset

    if daylight_data is None:
        raise ValueError("distill_weight > 0 needs daylight frames paired with the domain frames")
    for k in PAIRED_KEYS:
        a, b = np.asarray(domain_data[k]), np.asarray(daylight_data[k])
        if a.shape != b.shape or not np.array_equal(a, b):
            raise ValueError(f"distillation: daylight and domain frames differ in {k!r}: not the same scenes")
    rows = FrameDataset(daylight_data, prompt)
    out = []
    captured: list = []
    hook = vlm.model.multi_modal_projector.register_forward_hook(lambda _m, _i, o: captured.append(o))
    try:
        with peft_model.disable_adapter(), torch.no_grad():
            for i in range(0, len(rows), batch):
                pix = collator([rows[j] for j in range(i, min(i + batch, len(rows)))])["pixel_values"]
                captured.clear()
                vlm.model.get_image_features(pixel_values=pix)
                out.append(captured[-1].float().cpu())
    finally:
        hook.remove()
    return torch.cat(out)


class _WithTeacher:
    """A FrameDataset whose rows also carry the distillation target of their (paired) scene."""

    def __init__(self, rows, teacher):
        self.rows, self.teacher = rows, teacher

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return {**self.rows[i], "teacher": self.teacher[i]}


def _teacher_collator(prompt):
    import torch

    from .pretrain import Collator

    class TeacherCollator(Collator):
        def __call__(self, rows):
            return {**super().__call__(rows), "teacher": torch.stack([r["teacher"] for r in rows])}

    return TeacherCollator(prompt)


def train_adapter(cfg: FinetuneConfig, base_dir: Path, domain_data: dict, daylight_data: dict | None,
                  out_dir: Path) -> dict:  # fmt: skip
    """Train a LoRA adapter on the NF4 base; save it (peft save_pretrained) into out_dir."""
    trainer, peft_model, trainable, optim, work = make_trainer(cfg, base_dir, domain_data, daylight_data)
    t0 = time.time()
    result = trainer.train()
    train_s = time.time() - t0
    shutil.rmtree(work, ignore_errors=True)
    peft_model.eval()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(str(out_dir))
    ac = json.loads((out_dir / "adapter_config.json").read_text())
    ac["base_model_name_or_path"] = "models/sim_vlm"  # relative: the checkout may move
    (out_dir / "adapter_config.json").write_text(json.dumps(ac, indent=2, sort_keys=True) + "\n")
    (out_dir / "README.md").unlink(missing_ok=True)  # peft's template card says nothing true here
    losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
    return {
        "targets": ac["target_modules"],
        "trainable_parameters": int(trainable),
        "adapter_bytes": int((out_dir / "adapter_model.safetensors").stat().st_size),
        "optimizer": optim,
        "train_s": round(train_s, 1),
        "train_loss": round(float(result.training_loss), 4),
        "loss_first_last": [round(float(losses[0]), 4), round(float(losses[-1]), 4)] if losses else [],
        "device": trainer.args.device.type,
    }


def _latent(pooled: np.ndarray, projection: np.ndarray) -> np.ndarray:
    z = pooled.astype(np.float64) @ projection.astype(np.float64)
    return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)


KEEP = ("class_acc", "item_acc", "hold_acc", "pick_err_median_cm", "pick_err_p90_cm", "parse_fail",
        "confident_wrong_pick_rate", "confident_wrong_per_pick", "acted_picks", "min_confidence",
        "target_frames", "hold_frames", "frames", "class_acc_2plus_candidates")  # fmt: skip


OWN_GATE_KEEP = ("min_confidence", "confident_wrong_pick_rate", "acted_picks", "item_acc_acted")


def measure(base_dir: Path, adapter_dir: Path | None, domain_test: dict, daylight_test: dict | None,
            base_cache: dict | None = None, colour_constancy: bool | None = None,
            results: dict | None = None) -> dict:  # fmt: skip
    """Base vs adapter on held-out domain frames, daylight with the adapter (forgetting), and the
    latent agreement (base in daylight vs adapter in the domain, same scenes). `results`, when
    given, receives the adapter's evaluate() results by "domain" / "daylight", to be scored again
    at another gate (evaluate.rescore) without generating again."""
    import torch
    from safetensors.numpy import load_file

    from vlm_planner import latent as latent_mod

    from .evaluate import evaluate, load_model

    torch.set_num_threads(max(1, torch.get_num_threads()))
    out: dict = {}
    base_cache = base_cache if base_cache is not None else {}
    base, _ = load_model(base_dir, "nf4")
    for key, d in (("domain", domain_test), ("daylight", daylight_test)):
        if d is None:
            continue
        if key not in base_cache:  # a daylight adapter's domain frames are the daylight frames
            same = key == "daylight" and d is domain_test
            base_cache[key] = base_cache["domain"] if same else evaluate(base_dir, d, model=base)
        out[f"base_{key}"] = {k: _r(base_cache[key].get(k)) for k in KEEP}
    if adapter_dir is None:
        return out
    tuned, _ = load_model(base_dir, "nf4", adapter_dir)
    res = results if results is not None else {}
    for key, d in (("domain", domain_test), ("daylight", daylight_test)):
        if d is None:
            continue
        res[key] = (
            res["domain"]
            if key == "daylight" and d is domain_test
            else evaluate(base_dir, d, model=tuned, colour_constancy=colour_constancy)
        )
        out[f"adapter_{key}"] = {k: _r(res[key].get(k)) for k in KEEP}
    if daylight_test is not None and len(daylight_test["label"]) == len(domain_test["label"]):
        same = (daylight_test["label"] == domain_test["label"]) & np.all(
            np.abs(daylight_test["pick"] - domain_test["pick"]) < 1e-4, axis=1
        )
        proj = load_file(str(Path(base_dir) / latent_mod.PROJECTION_FILE))["projection"]
        a = _latent(base_cache["daylight"]["_pooled"], proj)
        b = _latent(res["domain"]["_pooled"], proj)
        c0 = _latent(base_cache["domain"]["_pooled"], proj)
        cos = (a * b).sum(1)[same]
        cos_base = (a * c0).sum(1)[same]
        if len(cos):
            out["latent_cosine"] = {
                "scenes": int(same.sum()),
                "adapter_in_domain_vs_base_in_daylight_median": _r(float(np.median(cos))),
                "adapter_in_domain_vs_base_in_daylight_frac_ge_0.9": _r(float((cos >= 0.9).mean())),
                "base_in_domain_vs_base_in_daylight_median": _r(float(np.median(cos_base))),
                "base_in_domain_vs_base_in_daylight_frac_ge_0.9": _r(float((cos_base >= 0.9).mean())),
            }
    return out


def manifest_fields(cfg: FinetuneConfig, base_dir: Path, info: dict, lighting: str, **fields) -> dict:
    """The library manifest fields of an adapter `train_adapter` made (`info`) for a lighting
    context; `fields` adds what differs by who trained it: base_model, data, metrics, notes."""
    from s1s2.adapters import LIGHTING_TAG, base_fingerprint

    return dict(
        base_fingerprint=base_fingerprint(base_dir),
        strategy=strategy_name(cfg.strategy),
        rank=cfg.rank,
        alpha=cfg.alpha,
        target_modules=info["targets"],
        context_tags=[f"{LIGHTING_TAG}{lighting}"],
        trained=True,
        input_normalisation=cfg.colour_constancy,
        **fields,
    )


def _r(v):
    if isinstance(v, float):
        return round(v, 4) if np.isfinite(v) else None
    return v


def finetune(cfg: FinetuneConfig, domain: str, base_dir="models/sim_vlm", library="models/adapters",
             adapter_id: str = "", work_dir="runs/vlm_data", train_episodes: int = 8,
             test_episodes: tuple[int, int] = (14, 8), evaluate_after: bool = True, workers: int = 1,
             register: bool = True, out_dir=None, episode_s: float = 40.0,
             modes: tuple[str, ...] = DOMAIN_TRAIN_MODES) -> dict:  # fmt: skip
    """Generate (or read cached) frames, train, evaluate, register the adapter. Returns the manifest
    fields + metrics. `modes`: the frame modes of the domain's training episodes (data.MODES, e.g.
    "lazy": items waiting in reach with the arm at rest)."""
    from s1s2 import resolve_path
    from s1s2.adapters import add_adapter

    from . import data as dm

    base_dir = resolve_path(str(base_dir))
    card = json.loads((base_dir / "s1s2_vlm.json").read_text())
    size = int(card.get("image_size", 128))
    work_dir = resolve_path(str(work_dir)) if work_dir else None
    adapter_id = adapter_id or domain
    t0 = time.time()
    dom_train = dm.frames_of(
        dm.domain_train_specs(domain, train_episodes, episode_s=episode_s, modes=tuple(modes)),
        size,
        work_dir,
        workers,
    )
    day_train = (
        dm.frames_of(
            dm.domain_train_specs("daylight", train_episodes, episode_s=episode_s), size, work_dir, workers
        )
        if cfg.mix > 0 or cfg.distill_weight > 0
        else None
    )
    data_s = time.time() - t0
    with tempfile.TemporaryDirectory() as tmp:
        adir = Path(out_dir) if out_dir else Path(tmp) / adapter_id
        info = train_adapter(cfg, base_dir, dom_train, day_train, adir)
        metrics: dict = {k: info[k] for k in ("train_s", "train_loss", "loss_first_last", "trainable_parameters",
                                              "adapter_bytes", "optimizer", "device")}  # fmt: skip
        if evaluate_after:
            t1 = time.time()
            dom_test = dm.frames_of(
                dm.domain_test_specs(domain, *test_episodes, episode_s=episode_s), size, work_dir, workers
            )
            day_test = (
                dom_test
                if domain == "daylight"
                else dm.frames_of(
                    dm.domain_test_specs("daylight", *test_episodes, episode_s=episode_s),
                    size,
                    work_dir,
                    workers,
                )
            )
            scored: dict = {}
            metrics.update(
                measure(
                    base_dir, adir, dom_test, day_test, colour_constancy=cfg.colour_constancy, results=scored
                )
            )
            # The adapter's own calibration and min_confidence, on its domain's calibration frames.
            from .calibrate import adapter_calibration, calibration_note, calibration_specs

            cal = dm.frames_of(calibration_specs(domain, episode_s=episode_s), size, work_dir, workers)
            own, metrics["min_confidence"], metrics["confidence_threshold"] = adapter_calibration(
                base_dir, adir, cal, colour_constancy=cfg.colour_constancy
            )
            if own is not None:
                metrics["confidence_calibration"] = own
            # measure() scored the adapter at the card's gate; the planner serves it at its own
            # (as `python -m s1s2_training.vlm.calibrate --check` measures a shipped adapter): the
            # same answers, scored again
            from .evaluate import rescore

            gate = rescore(scored["domain"], dom_test, base_dir, own, metrics["min_confidence"])
            metrics["adapter_domain_own_gate"] = {k: _r(gate.get(k)) for k in OWN_GATE_KEEP}
            metrics["confidence_threshold"]["data"] = calibration_note(domain)
            metrics["eval_s"] = round(time.time() - t1, 1)
        fields = manifest_fields(
            cfg,
            base_dir,
            info,
            domain,
            base_model="models/sim_vlm",
            data={
                "domain": domain,
                "domain_frames": int(len(dom_train["label"])),
                "domain_modes": list(modes),
                "domain_summary": dm.summary(dom_train),
                # mixed into batches only when mix > 0 (distillation alone reads them as paired teachers)
                "daylight_frames": int(len(day_train["label"]))
                if day_train is not None and cfg.mix > 0
                else 0,
                "distill_pair_frames": int(len(day_train["label"]))
                if day_train is not None and cfg.distill_weight > 0
                else 0,
                "mix_lambda": cfg.mix,
                "seeds": f"train default {dm.DOMAIN_TRAIN_DEFAULT_SEED0}.., dense {dm.DOMAIN_TRAIN_DENSE_SEED0}..; "
                f"held-out test default {dm.DOMAIN_TEST_DEFAULT_SEED0}.., dense {dm.DOMAIN_TEST_DENSE_SEED0}..",
                "data_s": round(data_s, 1),
            },
            metrics=metrics,
            notes=(
                f"QLoRA on the NF4 base ({strategy_name(cfg.strategy)}, r={cfg.rank}, alpha={cfg.alpha}, "
                f"lambda={cfg.mix}, {cfg.steps} steps x {cfg.batch_size}, {info['optimizer']}) by "
                f"`s1s2 planner finetune --domain {domain} --modes {','.join(modes)}`; config {json.dumps(asdict(cfg), sort_keys=True)}"
            ),
        )
        if register:
            add_adapter(
                resolve_path(str(library)),
                adir,
                adapter_id=adapter_id,
                expected_base=fields["base_fingerprint"],
                replace=True,
                **fields,
            )
        elif out_dir:
            from s1s2.adapters import write_manifest

            write_manifest(adir, adapter_id=adapter_id, **fields)
    return {"adapter_id": adapter_id, **fields}


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = FinetuneConfig()
    p.add_argument(
        "--domain", required=True, help="lighting domain of the training frames (conveyor_sim.lighting)"
    )
    p.add_argument("--strategy", default=d.strategy, help="projector | llm | vision | a+b combination | all")
    p.add_argument("--rank", type=int, default=d.rank)
    p.add_argument("--alpha", type=int, default=d.alpha)
    p.add_argument("--targets", default="", help="LoRA target regex (default: the strategy's)")
    p.add_argument("--mix", type=float, default=d.mix, help="lambda: share of daylight frames in every batch")
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument(
        "--optim", default=d.optim, help="auto | paged_adamw_8bit | adamw_bnb_8bit | adamw_torch ..."
    )
    p.add_argument(
        "--distill",
        type=float,
        default=d.distill_weight,
        help="paired-render feature distillation weight (sim: the same scenes in daylight; 0 = off)",
    )
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument(
        "--no-colour-constancy",
        dest="colour_constancy",
        action="store_false",
        help="train (and serve) this adapter on raw frames, not the base card's normalised ones",
    )
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--threads", type=int, default=d.threads)
    p.add_argument("--base", default="models/sim_vlm")
    p.add_argument("--library", default="models/adapters")
    p.add_argument("--adapter-id", default="", help="default: the domain name")
    p.add_argument("--work-dir", default="runs/vlm_data", help="frame cache (never committed)")
    p.add_argument("--train-episodes", type=int, default=8)
    p.add_argument("--modes", default=",".join(DOMAIN_TRAIN_MODES),
                   help="frame modes of the domain's training episodes, split evenly: default, dense, "
                   "dense_hold, lazy (items waiting in reach with the arm at rest)")  # fmt: skip
    p.add_argument("--test-episodes", type=int, nargs=2, default=(14, 8), metavar=("DEFAULT", "DENSE"))
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--episode-s", type=float, default=40.0, help="simulated seconds per episode")
    p.add_argument("--no-eval", action="store_true")
    p.add_argument("--out", default="", help="write the adapter here instead of registering it in --library")


def run(args) -> int:
    cfg = FinetuneConfig(
        strategy=args.strategy, rank=args.rank, alpha=args.alpha, targets=args.targets, steps=args.steps,
        batch_size=args.batch_size, lr=args.lr, mix=args.mix, optim=args.optim,
        gradient_checkpointing=args.gradient_checkpointing, seed=args.seed, threads=args.threads,
        distill_weight=args.distill, colour_constancy=args.colour_constancy,
    )  # fmt: skip
    res = finetune(
        cfg, args.domain, args.base, args.library, args.adapter_id, args.work_dir, args.train_episodes,
        tuple(args.test_episodes), not args.no_eval, args.workers, register=not args.out, out_dir=args.out or None, episode_s=args.episode_s,
        modes=tuple(m.strip() for m in args.modes.split(",") if m.strip()),
    )  # fmt: skip
    print(
        json.dumps(
            {"adapter_id": res["adapter_id"], "strategy": res["strategy"], "metrics": res["metrics"]},
            indent=1,
        )
    )
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="s1s2 planner finetune", description=__doc__.splitlines()[0])
    add_arguments(ap)
    return run(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
