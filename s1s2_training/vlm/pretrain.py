"""Pretrain the project's sim VLM on labelled sim frames with the Hugging Face Trainer.

    res = train(PretrainConfig(steps=1500), frames, out_dir)     # frames: s1s2_training.vlm.data
    python -m s1s2_training.vlm.pretrain --train a.npz [b.npz] --out runs/vlm_x --set steps=200

The model is a plain LlavaForConditionalGeneration; everything below is training-only and is
not saved with it (except the latent projection, which the planner reads):

  answer loss    the planner's exact prompt (token ids of the prompt, then of " " + answer, then
                 EOS: tokenised separately, as generation sees them) and
                 - cross-entropy on the label token (" label=<class> u=" / " label=none"),
                   " v=" and EOS,
                 - a Gaussian soft-label cross-entropy on the two number tokens: the target
                   distribution over the integer tokens 0..999 is N(value, sigma^2) around the
                   exact (sub-pixel) belt-height pixel, so being 1 px off costs little and the
                   number embeddings learn their order.
  patch head     (auxiliary, training-only) a linear head on the projected image tokens predicts
                 per patch: which patch holds the target's pick pixel (softmax over the 64
                 patches + "none"), the class of an on-belt item whose pick pixel falls in the
                 patch (7 classes + background), and that pixel's offset inside the patch.
                 Dense supervision: the vision tower learns to find and rank items early.
  latent head    the goal latent the planner publishes: z = mean over the prompt tokens of the
                 last-layer hidden state @ P (P: hidden x 32, no bias), trained (MSE) to equal
                 vlm_planner.latent.latent_target(...) (class one-hot, hold, bin one-hot, pick point).
                 P is saved as latent_projection.safetensors (the planner's existing format).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vlm_planner import latent as latent_mod
from vlm_planner.colour import CARD_KEY, InputNorm, reference_of

from .build import CLASSES, MAX_NUMBER, Arch, build_model, build_processor, build_tokenizer, number_token_ids

WIDTH, HEIGHT = 320, 240  # camera frame the labels' pixels refer to


@dataclass
class PretrainConfig:
    arch: Arch = field(default_factory=Arch)
    seed: int = 0
    steps: int = 4000
    batch_size: int = 32
    lr: float = 2e-3
    min_lr_ratio: float = 0.0
    weight_decay: float = 0.05
    warmup_steps: int = 200
    schedule: str = "cosine"
    sigma_px: float = 1.5  # std of the soft number labels (pixels)
    number_weight: float = 1.0
    label_weight: float = 1.0  # extra weight of the first answer token (the class / none decision)
    bg_weight: float = 1.0  # patch class loss: weight of background patches vs item patches
    aux_weight: float = 1.0
    latent_weight: float = 0.5
    sinusoid_numbers: bool = True
    threads: int = 1
    max_grad_norm: float = 1.0
    log_every: int = 50
    instruction: str = "sort the recyclables"
    vision_steps: int = 0  # stage 1: vision tower + projector + patch head only (no LLM), then `steps`
    vision_lr: float = 0.0  # stage 1 learning rate (0: lr)
    progress: bool = True  # tqdm bars of the Trainer
    # input colour constancy (vlm_planner.colour): frames are normalised to the training set's
    # median RGB, recorded in the model card; the planner and the adapters' finetune apply the same
    colour_constancy: bool = True


# --------------------------------------------------------------------------------------- data
class Prompt:
    """Token ids of the planner's prompt for one instruction (identical for every frame)."""

    def __init__(self, processor, instruction: str, width: int = WIDTH, height: int = HEIGHT, norm=None):
        from PIL import Image

        from vlm_planner.config import DEFAULT_PROMPT
        from vlm_planner.planner import build_prompt

        text = build_prompt(processor, DEFAULT_PROMPT, instruction, CLASSES, width, height)
        enc = processor(images=Image.new("RGB", (width, height)), text=text, return_tensors="pt")
        self.ids = enc["input_ids"][0]
        self.text = text
        tok = processor.tokenizer
        self.eos = tok.eos_token_id
        self.pad = tok.pad_token_id
        self.label_ids = [tok(f" label={c} u=", add_special_tokens=False)["input_ids"] for c in CLASSES]
        self.none_ids = tok(" label=none", add_special_tokens=False)["input_ids"]
        self.v_ids = tok(" v=", add_special_tokens=False)["input_ids"]
        ip = processor.image_processor
        self.mean = torch.tensor(ip.image_mean).view(3, 1, 1)
        self.std = torch.tensor(ip.image_std).view(3, 1, 1)
        self.number_ids = torch.tensor(number_token_ids(tok))
        self.tokenizer = tok
        self.norm = norm  # vlm_planner.colour.InputNorm of the model card, or None

    def pixel_values(self, pixels) -> torch.Tensor:
        """uint8 frames (N, S, S, 3), numpy or torch -> the model's normalised pixel_values, the
        same transformation as the planner's (input colour constancy, then the processor's mean/std)."""
        px = pixels.numpy() if isinstance(pixels, torch.Tensor) else np.asarray(pixels)
        if self.norm is not None:
            px = self.norm.apply(px)
        pix = torch.from_numpy(np.ascontiguousarray(px)).permute(0, 3, 1, 2).float() / 255.0
        return (pix - self.mean) / self.std

    def decode(self, ids) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)


def answer_text(label: int, uv) -> str:
    """The answer the planner should generate (parse.py format), integer pixels."""
    if label < 0:
        return "label=none"
    u, v = (int(round(float(x))) for x in uv)
    return f"label={CLASSES[label]} u={u} v={v}"


class FrameDataset(torch.utils.data.Dataset):
    """Frames (s1s2_training.vlm.data arrays) -> model inputs + targets. Images stay uint8 until batching."""

    def __init__(self, data: dict, prompt: Prompt):
        self.d = data
        self.p = prompt
        self.key = "pixels"

    def __len__(self):
        return len(self.d["label"])

    def __getitem__(self, i):
        d, p = self.d, self.p
        label = int(d["label"][i])
        uv = d["uv"][i].astype(np.float64)
        # answer token ids + per-token kind: 0 hard, 1 number (value in num_val)
        if label < 0:
            ids, kind, val = p.none_ids + [p.eos], [0] * (len(p.none_ids) + 1), [0.0] * (len(p.none_ids) + 1)
        else:
            u = min(max(uv[0], 0.0), WIDTH - 1)
            v = min(max(uv[1], 0.0), HEIGHT - 1)
            lab = p.label_ids[label]
            ids = (
                lab + [int(p.number_ids[int(round(u))])] + p.v_ids + [int(p.number_ids[int(round(v))]), p.eos]
            )
            kind = [0] * len(lab) + [1] + [0] * len(p.v_ids) + [1, 0]
            val = [0.0] * len(lab) + [u] + [0.0] * len(p.v_ids) + [v, 0.0]
        return {
            "pixels": torch.from_numpy(np.ascontiguousarray(d[self.key][i])),
            "answer": torch.tensor(ids),
            "kind": torch.tensor(kind),
            "value": torch.tensor(val, dtype=torch.float32),
            "label": label,
            "uv": torch.tensor(uv, dtype=torch.float32),
            "item_cls": torch.from_numpy(d["item_cls"][i].astype(np.int64)),
            "item_uv": torch.from_numpy(d["item_uv"][i]),
            "item_state": torch.from_numpy(d["item_state"][i].astype(np.int64)),
            "latent_target": torch.from_numpy(
                latent_mod.latent_target(label, d["pick"][i] if label >= 0 else None)
            ),
        }


class Collator:
    def __init__(self, prompt: Prompt):
        self.p = prompt

    def __call__(self, rows):
        p = self.p
        pix = p.pixel_values(torch.stack([r["pixels"] for r in rows]))
        a_len = max(len(r["answer"]) for r in rows)
        n = len(rows)
        answer = torch.full((n, a_len), p.pad, dtype=torch.long)
        kind = torch.full((n, a_len), -1, dtype=torch.long)  # -1: padding (no loss)
        value = torch.zeros(n, a_len)
        for k, r in enumerate(rows):
            m = len(r["answer"])
            answer[k, :m], kind[k, :m], value[k, :m] = r["answer"], r["kind"], r["value"]
        prompt = p.ids[None].expand(n, -1)
        input_ids = torch.cat([prompt, answer], 1)
        attn = torch.cat([torch.ones_like(prompt), (kind >= 0).long()], 1)
        return {
            "input_ids": input_ids,
            "attention_mask": attn,
            "pixel_values": pix,
            "answer": answer,
            "kind": kind,
            "value": value,
            "label": torch.tensor([r["label"] for r in rows]),
            "uv": torch.stack([r["uv"] for r in rows]),
            "item_cls": torch.stack([r["item_cls"] for r in rows]),
            "item_uv": torch.stack([r["item_uv"] for r in rows]),
            "item_state": torch.stack([r["item_state"] for r in rows]),
            "latent_target": torch.stack([r["latent_target"] for r in rows]),
        }


# ------------------------------------------------------------------------------------ losses
def soft_number_targets(value: torch.Tensor, sigma: float, n_numbers: int = MAX_NUMBER + 1) -> torch.Tensor:
    """(N,) float pixel values -> (N, n_numbers) Gaussian target distributions over the integers."""
    grid = torch.arange(n_numbers, dtype=torch.float32)[None]
    if sigma <= 0:
        q = torch.zeros(len(value), n_numbers)
        q[torch.arange(len(value)), value.round().long().clamp(0, n_numbers - 1)] = 1.0
        return q
    q = torch.exp(-0.5 * ((grid - value[:, None]) / sigma) ** 2)
    return q / q.sum(1, keepdim=True)


class PatchHead(nn.Module):
    """Training-only per-patch head on the projected image tokens (see module docstring)."""

    def __init__(self, dim: int, n_classes: int = len(CLASSES)):
        super().__init__()
        self.heat = nn.Linear(dim, 1)
        self.none = nn.Linear(dim, 1)
        self.cls = nn.Linear(dim, n_classes + 1)
        self.off = nn.Linear(dim, 2)

    def forward(self, img):  # (B, P, D)
        heat = self.heat(img).squeeze(-1)  # (B, P)
        none = self.none(img.mean(1))  # (B, 1)
        return torch.cat([heat, none], 1), self.cls(img), self.off(img)


def patch_targets(batch, grid: int):
    """Targets of the patch head from the item table: (target distribution over P+1,
    per-patch class (background = n_classes), per-patch offsets + mask)."""
    b = batch["label"].shape[0]
    n_p = grid * grid
    n_cls = len(CLASSES)
    heat = torch.zeros(b, n_p + 1)
    cls = torch.full((b, n_p), n_cls, dtype=torch.long)
    off = torch.zeros(b, n_p, 2)
    off_mask = torch.zeros(b, n_p)
    gu = batch["item_uv"][..., 0] / WIDTH * grid
    gv = batch["item_uv"][..., 1] / HEIGHT * grid
    tx = batch["uv"][:, 0].numpy() / WIDTH
    ty = batch["uv"][:, 1].numpy() / HEIGHT
    for k in range(b):
        if batch["label"][k] < 0 or not (0 <= tx[k] < 1 and 0 <= ty[k] < 1):
            heat[k, n_p] = 1.0
        else:
            u, v = float(tx[k]) * grid, float(ty[k]) * grid
            c, r = min(max(int(u), 0), grid - 1), min(max(int(v), 0), grid - 1)
            heat[k, r * grid + c] = 1.0
        for j in range(batch["item_cls"].shape[1]):
            if batch["item_cls"][k, j] < 0 or batch["item_state"][k, j] != 1:
                continue
            u, v = float(gu[k, j]), float(gv[k, j])
            if not (0 <= u < grid and 0 <= v < grid):
                continue
            c, r = int(u), int(v)
            cls[k, r * grid + c] = batch["item_cls"][k, j]
            off[k, r * grid + c] = torch.tensor([u - c - 0.5, v - r - 0.5])
            off_mask[k, r * grid + c] = 1.0
    return heat, cls, off, off_mask


class PretrainModule(nn.Module):
    """The VLM plus its training-only heads; forward returns the total loss and its parts."""

    def __init__(self, vlm, prompt: Prompt, cfg: PretrainConfig):
        super().__init__()
        self.vlm = vlm
        dim = vlm.config.text_config.hidden_size
        self.patch_head = PatchHead(dim)
        self.latent_proj = nn.Linear(dim, latent_mod.LATENT_DIM, bias=False)
        self.prompt = prompt
        self.cfg = cfg
        self.n_prompt = len(prompt.ids)
        self.grid = cfg.arch.image_size // cfg.arch.patch_size
        self.vision_only = False

    def vision_forward(self, batch):
        """Stage 1: tower + projector + patch head only (no language model)."""
        m = self.vlm.model
        feats = m.get_image_features(
            pixel_values=batch["pixel_values"],
            vision_feature_layer=self.vlm.config.vision_feature_layer,
            vision_feature_select_strategy=self.vlm.config.vision_feature_select_strategy,
        ).pooler_output
        img = torch.stack(list(feats)) if isinstance(feats, (list, tuple)) else feats
        return self.patch_losses(img, batch)

    def patch_losses(self, img, batch):
        cfg = self.cfg
        heat_l, cls_l, off_p = self.patch_head(img)
        heat_t, cls_t, off_t, off_m = patch_targets(batch, self.grid)
        l_heat = -(heat_t * torch.log_softmax(heat_l, -1)).sum(-1).mean()
        ce_cls = nn.functional.cross_entropy(
            cls_l.reshape(-1, cls_l.shape[-1]), cls_t.reshape(-1), reduction="none"
        )
        is_item = (cls_t.reshape(-1) < len(CLASSES)).float()
        # items and background balanced: the ~5 % item patches are what matters
        l_cls = (ce_cls * is_item).sum() / is_item.sum().clamp(min=1) + cfg.bg_weight * (
            ce_cls * (1 - is_item)
        ).sum() / (1 - is_item).sum().clamp(min=1)
        l_off = ((off_p - off_t).abs().sum(-1) * off_m).sum() / off_m.sum().clamp(min=1)
        loss = l_heat + l_cls + l_off
        return {"heat": l_heat, "pcls": l_cls, "off": l_off, "loss": loss}

    def forward(self, **batch):
        cfg = self.cfg
        if self.vision_only:
            return self.vision_forward(batch)
        out = self.vlm.model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            pixel_values=batch["pixel_values"],
        )
        h = out.last_hidden_state
        b = h.shape[0]
        a_len = batch["answer"].shape[1]
        # logits that predict answer token j come from position n_prompt - 1 + j
        hs = h[:, self.n_prompt - 1 : self.n_prompt - 1 + a_len]
        logits = self.vlm.lm_head(hs).float()
        logp = torch.log_softmax(logits, -1)
        kind = batch["kind"]
        hard = kind == 0
        ce = -logp.gather(-1, batch["answer"][..., None]).squeeze(-1)
        w = hard.float()
        w[:, 0] = w[:, 0] * cfg.label_weight
        loss_tok = (ce * w).sum() / hard.sum().clamp(min=1)
        num = kind == 1
        if num.any():
            q = soft_number_targets(batch["value"][num], cfg.sigma_px)
            lp = logp[num][:, self.prompt.number_ids]
            loss_num = -(q * lp).sum(-1).mean()
        else:
            loss_num = logits.sum() * 0.0
        parts = {"tok": loss_tok, "num": loss_num, "label": ce[:, 0].mean().detach()}
        loss = loss_tok + cfg.number_weight * loss_num
        if cfg.aux_weight > 0:
            pl = self.patch_losses(out.image_hidden_states.reshape(b, -1, h.shape[-1]), batch)
            parts.update(heat=pl["heat"], pcls=pl["pcls"], off=pl["off"])
            loss = loss + cfg.aux_weight * pl["loss"]
        if cfg.latent_weight > 0:
            pooled = h[:, : self.n_prompt].mean(1)  # the prompt has no padding
            z = self.latent_proj(pooled)
            l_lat = ((z - batch["latent_target"]) ** 2).sum(-1).mean()
            parts["latent"] = l_lat
            loss = loss + cfg.latent_weight * l_lat
        parts["loss"] = loss
        return parts


# ----------------------------------------------------------------------------------- trainer
def make_trainer_class():
    from transformers import Trainer

    class SimVLMTrainer(Trainer):
        """HF Trainer whose loss is PretrainModule's (answer + soft numbers + patch + latent)."""

        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self._parts: dict[str, list[float]] = {}

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            parts = model(**inputs)
            for key, val in parts.items():
                self._parts.setdefault(key, []).append(float(val.detach()))
            return (parts["loss"], parts) if return_outputs else parts["loss"]

        def log(self, logs, *args, **kwargs):
            for key, vals in self._parts.items():
                if key != "loss" and vals:
                    logs[f"l_{key}"] = round(sum(vals) / len(vals), 4)
            self._parts = {}
            super().log(logs, *args, **kwargs)

    return SimVLMTrainer


def train(cfg: PretrainConfig, data: dict, out_dir: Path, log_path: Path | None = None) -> dict:
    """Build the model from cfg.arch, train it on `data`, save it (save_pretrained + latent
    projection + model card) into out_dir; returns times, losses and the log history."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    t0 = time.time()
    tok = build_tokenizer(cfg.arch)
    processor = build_processor(tok, cfg.arch)
    vlm = build_model(tok, cfg.arch, cfg.seed, sinusoid_numbers=cfg.sinusoid_numbers)
    norm = InputNorm(reference_of(data["pixels"])) if cfg.colour_constancy else None
    prompt = Prompt(processor, cfg.instruction, norm=norm)
    module = PretrainModule(vlm, prompt, cfg)
    module.train()
    ds = FrameDataset(data, prompt)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    history = []
    t_train = time.time()
    c_train = (
        time.thread_time()
    )  # CPU time of this thread (= all compute with 1 torch thread): an idle-machine estimate
    if cfg.vision_steps > 0:
        module.vision_only = True
        trainer = make_trainer_class()(
            model=module,
            args=_args(cfg, out_dir, cfg.vision_steps, cfg.vision_lr or cfg.lr, cfg.seed + 1),
            train_dataset=ds,
            data_collator=Collator(prompt),
        )
        trainer.train()
        history += [{**r, "stage": "vision"} for r in trainer.state.log_history]
        history.append(
            {"stage": "vision", "wall_s": time.time() - t_train, "cpu_s": time.thread_time() - c_train}
        )
        module.vision_only = False
    trainer = make_trainer_class()(
        model=module,
        args=_args(cfg, out_dir, cfg.steps, cfg.lr, cfg.seed),
        train_dataset=ds,
        data_collator=Collator(prompt),
    )
    result = trainer.train()
    train_s = time.time() - t_train
    history.append({"stage": "all", "wall_s": train_s, "cpu_s": time.thread_time() - c_train})
    module.eval()
    save_model(
        vlm, processor, module.latent_proj.weight.detach().T.contiguous().numpy(), out_dir, cfg,
        card={CARD_KEY: norm.to_card()} if norm else None,
    )  # fmt: skip
    shutil.rmtree(out_dir / "trainer", ignore_errors=True)
    history += [r for r in trainer.state.log_history]
    if log_path:
        Path(log_path).write_text(json.dumps(history, indent=1))
    return {
        "train_s": train_s,
        "train_cpu_s": time.thread_time() - c_train,
        "total_s": time.time() - t0,
        "train_loss": result.training_loss,
        "history": history,
    }


def _args(cfg: PretrainConfig, out_dir: Path, steps: int, lr: float, seed: int):
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(out_dir / "trainer"),
        per_device_train_batch_size=cfg.batch_size,
        max_steps=steps,
        learning_rate=lr,
        weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_steps,
        lr_scheduler_type="cosine_with_min_lr" if cfg.min_lr_ratio > 0 else cfg.schedule,
        lr_scheduler_kwargs={"min_lr_rate": cfg.min_lr_ratio} if cfg.min_lr_ratio > 0 else {},
        max_grad_norm=cfg.max_grad_norm,
        logging_steps=cfg.log_every,
        save_strategy="no",
        report_to=[],
        dataloader_num_workers=0,
        seed=seed,
        data_seed=seed,
        use_cpu=True,
        remove_unused_columns=False,
        disable_tqdm=not cfg.progress,
    )


def save_model(
    vlm, processor, projection: np.ndarray, out_dir: Path, cfg: PretrainConfig, card: dict | None = None
):
    vlm.save_pretrained(str(out_dir))
    processor.save_pretrained(str(out_dir))
    latent_mod.save_projection(out_dir / latent_mod.PROJECTION_FILE, projection, cfg.seed, trained=True)
    info = {
        "architecture": "LlavaForConditionalGeneration",
        "trained": True,
        "classes": list(CLASSES),
        "answer_format": "label=<class> u=<pixel column> v=<pixel row> | label=none",
        "image_size": cfg.arch.image_size,
        "latent": {"layout": latent_mod.LAYOUT, "pooling": latent_mod.POOLING, "trained": True},
        "seed": cfg.seed,
        "pretrain": {k: v for k, v in asdict(cfg).items()},
    }
    if card:
        info.update(card)
    (out_dir / "s1s2_vlm.json").write_text(json.dumps(info, indent=2, default=str) + "\n")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m s1s2_training.vlm.pretrain")
    ap.add_argument("--train", nargs="+", required=True, help=".npz frame sets (s1s2_training.vlm.data.save)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--limit", type=int, default=0, help="use only the first N frames")
    ap.add_argument("--set", nargs="*", default=[], help="PretrainConfig/Arch overrides key=value")
    a = ap.parse_args(argv)
    from .data import concat, load

    data = concat([load(p) for p in a.train])
    if a.limit:
        data = {k: v[: a.limit] for k, v in data.items()}
    cfg = apply_overrides(PretrainConfig(), a.set)
    print(json.dumps(asdict(cfg), default=str), flush=True)
    Path(a.out).mkdir(parents=True, exist_ok=True)
    res = train(cfg, data, Path(a.out), Path(a.out) / "log_history.json")
    print(json.dumps({k: v for k, v in res.items() if k != "history"}), flush=True)


def apply_overrides(cfg: PretrainConfig, pairs) -> PretrainConfig:
    """key=value strings onto a PretrainConfig (Arch fields by their name)."""
    arch = {}
    for kv in pairs:
        k, v = kv.split("=", 1)
        is_cfg = hasattr(cfg, k) and k != "arch"
        if not is_cfg and not hasattr(Arch(), k):
            raise ValueError(f"unknown setting {k!r}")
        typ = type(getattr(cfg, k)) if is_cfg else type(getattr(Arch(), k))
        val = (v.lower() in ("1", "true", "yes")) if typ is bool else typ(v)
        if is_cfg:
            setattr(cfg, k, val)
        else:
            arch[k] = val
    cfg.arch = Arch(**{**cfg.arch.as_dict(), **arch})
    return cfg


if __name__ == "__main__":
    main()
