"""Load a vision-language model the QLoRA way: transformers + bitsandbytes 4-bit NF4 with double
quantization, through the generic Auto classes, so a hub model loads the same way as ours.

    model_id = "models/sim_vlm"                         local folder saved with save_pretrained
    model_id = "HuggingFaceTB/SmolVLM-256M-Instruct"    hub id (needs allow_download, or the HF cache)

Any architecture `AutoModelForImageTextToText` + `AutoProcessor` know works (LLaVA, Idefics3 /
SmolVLM, Qwen2-VL, PaliGemma, ...).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from s1s2 import resolve_path
from s1s2.params import ConfigError

from .config import PlannerConfig

MODEL_CARD = "s1s2_vlm.json"  # written by s1s2_training.vlm.build: trained flag, notes
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class LoadedVLM:
    model: object  # transformers PreTrainedModel
    processor: object
    model_id: str
    source: str  # resolved local folder or the hub id
    local_dir: Path | None
    device: str
    quantized: bool
    compute_dtype: str
    load_s: float
    footprint_bytes: int
    linear4bit: int  # number of bitsandbytes Linear4bit layers
    hidden_size: int
    card: dict = field(default_factory=dict)  # s1s2_vlm.json, {} for foreign models
    fingerprint: str | None = None  # s1s2.adapters.base_fingerprint of the weights; None: unknown

    @property
    def trained(self) -> bool | None:
        """False/True as the model card says; None when unknown (a user's model)."""
        return self.card.get("trained")


def resolve_model_source(model_id: str, allow_download: bool) -> tuple[str, Path | None]:
    """(what to pass to from_pretrained, local folder or None). ConfigError when it cannot exist."""
    local = resolve_path(model_id)
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise ConfigError(
                f"parameter 'model_id': {model_id!r} ({local}) has no config.json; "
                "expected a folder written by save_pretrained"
            )
        return str(local), local
    if local.exists():
        raise ConfigError(f"parameter 'model_id': {model_id!r} ({local}) is a file, expected a model folder")
    if _HUB_ID.match(model_id) and not model_id.startswith(("models/", "./", "../")):
        return model_id, None  # hub id: from_pretrained checks the cache / downloads (if allowed)
    raise ConfigError(
        f"parameter 'model_id': path {model_id!r} does not exist (resolved to {local}); "
        "run `s1s2 models sim_vlm` or give a hub id / save_pretrained folder"
    )


def pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("parameter 'device': 'cuda' requested but torch sees no CUDA device")
    return device


def count_linear4bit(model) -> int:
    import bitsandbytes as bnb

    return sum(isinstance(m, bnb.nn.Linear4bit) for m in model.modules())


def nf4_config(compute_dtype):
    """The QLoRA quantisation: 4-bit NF4 weights with double quantization of the absmax scales."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
    )


def pin_4bit_reference_kernel(model) -> int:
    """Keep every bitsandbytes Linear4bit on the reference NF4 path on every CPU; returns how many.

    On CPUs with AVX512-BF16 (AMD Zen 4, Sapphire Rapids), bitsandbytes 0.50 repacks a Linear4bit's
    weights on its first inference into a CPU layout whose absmax scales are rounded to bf16 and
    lose their double quantisation. Every `state_dict()` (peft calls it when it loads an adapter)
    unpacks them "best effort", re-quantising the already rounded scales with a new offset, and the
    next forward repacks. So each adapter load silently changed the frozen base weights (the plan
    latent moved by up to 7.6e-4 with a B = 0 adapter), on those CPUs only. With the repacking off,
    the stored NF4 weights never change, compute runs in the configured dtype on every CPU, and a
    LoRA branch with B = 0 adds exactly +0.0.
    """
    import bitsandbytes as bnb

    n = 0
    for m in model.modules():
        if isinstance(m, bnb.nn.Linear4bit):
            m.support_avx512bf16_for_cpu = False
            n += 1
    return n


def linear4bit_bytes(model) -> tuple[int, int]:
    """(bytes the Linear4bit weights take: packed NF4 + absmax scales incl. the nested ones,
    bytes the same weights take in fp32). The rest of the footprint (embeddings, lm_head, norms)
    is not quantised."""
    import bitsandbytes as bnb

    packed = full = 0
    for m in model.modules():
        if isinstance(m, bnb.nn.Linear4bit):
            w = m.weight
            packed += w.numel() * w.element_size()
            qs = w.quant_state
            for t in (qs.absmax, getattr(getattr(qs, "state2", None), "absmax", None)):
                if t is not None:
                    packed += t.numel() * t.element_size()
            full += m.in_features * m.out_features * 4
    return packed, full


def text_hidden_size(config) -> int:
    for cfg in (getattr(config, "text_config", None), config):
        if cfg is not None and getattr(cfg, "hidden_size", None):
            return int(cfg.hidden_size)
    raise ConfigError(f"model config {type(config).__name__} has no hidden_size")


def load_vlm(config: PlannerConfig) -> LoadedVLM:
    """Load model + processor as `config` says. Raises ConfigError for a wrong path / unusable model."""
    import torch
    from transformers import AutoModelForImageTextToText

    source, local_dir = resolve_model_source(config.model_id, config.allow_download)
    device = pick_device(config.device)
    dtype = getattr(torch, config.compute_dtype)
    kwargs: dict = {"local_files_only": not config.allow_download, "dtype": dtype, "device_map": {"": device}}
    if config.quantization == "nf4":
        kwargs["quantization_config"] = nf4_config(dtype)
    t0 = time.perf_counter()
    try:
        processor = load_processor(source, local_files_only=not config.allow_download)
        model = AutoModelForImageTextToText.from_pretrained(source, **kwargs)
    except OSError as exc:  # not in the cache / no such repo / missing files
        hint = "" if config.allow_download else " (offline: set allow_download:=true to fetch hub models)"
        raise ConfigError(f"parameter 'model_id': cannot load {config.model_id!r}{hint}: {exc}") from exc
    except ValueError as exc:  # an architecture the Auto classes do not map to image-text-to-text
        raise ConfigError(f"parameter 'model_id': {config.model_id!r} is not a usable VLM: {exc}") from exc
    except (AttributeError, ImportError, KeyError, TypeError) as exc:
        # transformers fails deep inside on parts this install cannot build (load_processor names
        # a missing torchvision)
        raise ConfigError(
            f"parameter 'model_id': cannot build {config.model_id!r} with this install ({type(exc).__name__}: {exc})"
        ) from exc
    model.eval()
    load_s = time.perf_counter() - t0
    if model.generation_config.pad_token_id is None:
        tok = getattr(processor, "tokenizer", None)
        model.generation_config.pad_token_id = getattr(tok, "pad_token_id", None) or getattr(
            tok, "eos_token_id", None
        )
    n4 = pin_4bit_reference_kernel(model) if config.quantization == "nf4" else 0
    if config.quantization == "nf4" and n4 == 0:
        raise ConfigError(f"parameter 'quantization': 'nf4' requested but {source} has no Linear4bit layers")
    card = {}
    if local_dir is not None and (local_dir / MODEL_CARD).is_file():
        card = json.loads((local_dir / MODEL_CARD).read_text())
    fingerprint = weights_fingerprint(source, local_dir)
    return LoadedVLM(
        model=model,
        processor=processor,
        model_id=config.model_id,
        source=source,
        local_dir=local_dir,
        device=device,
        quantized=config.quantization == "nf4",
        compute_dtype=config.compute_dtype,
        load_s=load_s,
        footprint_bytes=int(model.get_memory_footprint()),
        linear4bit=n4,
        hidden_size=text_hidden_size(model.config),
        card=card,
        fingerprint=fingerprint,
    )


def load_processor(source: str, local_files_only: bool = True):
    """AutoProcessor with the slow PIL image processors, which need no torchvision. A processor
    with a part that has no PIL backend (Qwen2-VL's video processor) loads with transformers'
    default backends instead, which need torchvision; without it, an ImportError that says so."""
    import importlib.util

    from transformers import AutoProcessor

    try:
        return AutoProcessor.from_pretrained(source, local_files_only=local_files_only, backend="pil")
    except (AttributeError, ImportError) as exc:
        if importlib.util.find_spec("torchvision") is None:
            raise ImportError(
                f"{source}: its processor cannot be built with the PIL backends alone and transformers' "
                f"default ones need torchvision, which is not installed ({type(exc).__name__}: {exc})"
            ) from exc
    return AutoProcessor.from_pretrained(source, local_files_only=local_files_only)


def weights_fingerprint(source: str, local_dir: Path | None) -> str | None:
    """s1s2.adapters.base_fingerprint of the model's weights: the local folder, or the hub
    snapshot in the local cache. None when there are no safetensors to fingerprint."""
    from s1s2.adapters import AdapterLibraryError, base_fingerprint

    folder = local_dir
    if folder is None:
        try:
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(source, local_files_only=True, allow_patterns=["*.safetensors"]))
        except Exception:  # noqa: BLE001 - not in the cache in that layout: fingerprint unknown
            return None
    try:
        return base_fingerprint(folder)
    except AdapterLibraryError:
        return None


def floating_dtype(model):
    """dtype to feed pixel values in (4-bit weights are uint8; take the first floating parameter)."""
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    import torch

    return torch.float32
