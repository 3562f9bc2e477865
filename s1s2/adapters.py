"""The on-disk LoRA adapter library: one peft `save_pretrained` folder per adapter. The one reader
the planner and the adapter manager share (no torch, no peft: plain files).

    models/adapters/<adapter_id>/adapter_config.json        (peft; required)
    models/adapters/<adapter_id>/adapter_model.safetensors  (peft weights)
    models/adapters/<adapter_id>/<metadata>.json            (optional: trained?, data, metrics)

A folder counts as an adapter when it holds `adapter_config.json`. The adapter id is the folder
name; by default a lighting domain selects the adapter of the same name. A later nightly fine-tune
only has to write a new folder (or replace one atomically) for it to appear here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

ADAPTER_CONFIG = "adapter_config.json"
# Sidecar files that may say whether/how an adapter was trained (first found wins).
METADATA_FILES = ("s1s2_adapter.json", "adapter_metadata.json", "metadata.json", "training_info.json")
# An adapter id is a folder name: a letter or digit, then letters, digits, '_', '.', '-'; at most
# MAX_ID_LENGTH characters. Checked before any filesystem access.
MAX_ID_LENGTH = 64
_ID_RE = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.\-]{{0,{MAX_ID_LENGTH - 1}}}")


@dataclass
class AdapterInfo:
    adapter_id: str
    path: Path
    size_bytes: int
    base_model: str = ""
    peft_type: str = ""
    rank: int | None = None
    target_modules: list[str] = field(default_factory=list)
    trained: bool | None = None  # None: no metadata says
    metadata: dict = field(default_factory=dict)
    error: str = ""  # unreadable adapter_config.json etc.


def valid_adapter_id(adapter_id) -> bool:
    return isinstance(adapter_id, str) and bool(_ID_RE.fullmatch(adapter_id)) and ".." not in adapter_id


def short_repr(value, limit: int = 40) -> str:
    """repr of (possibly huge or hostile) input for messages: at most `limit` characters of it."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


def check_adapter_id(adapter_id) -> str:
    """Return `adapter_id` if it is a valid library name, else raise ValueError quoting at most a
    short prefix of it (a 5,000-character id must never reach the filesystem or the logs)."""
    if not valid_adapter_id(adapter_id):
        raise ValueError(
            f"adapter id {short_repr(adapter_id)} is not a library name: a letter or digit, then "
            f"letters, digits, '_', '.', '-', at most {MAX_ID_LENGTH} characters"
        )
    return adapter_id


def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def read_adapter(path: Path) -> AdapterInfo:
    """Describe one adapter folder; never raises for a bad config (it is reported in `error`)."""
    info = AdapterInfo(adapter_id=path.name, path=path, size_bytes=_dir_size(path))
    try:
        cfg = json.loads((path / ADAPTER_CONFIG).read_text())
        if not isinstance(cfg, dict):
            raise ValueError("not a JSON object")
        info.base_model = str(cfg.get("base_model_name_or_path") or "")
        info.peft_type = str(cfg.get("peft_type") or "")
        info.rank = cfg.get("r") if isinstance(cfg.get("r"), int) else None
        tm = cfg.get("target_modules")
        info.target_modules = [tm] if isinstance(tm, str) else list(tm or [])
    except (OSError, ValueError) as exc:
        info.error = f"unreadable {ADAPTER_CONFIG}: {exc}"
    for name in METADATA_FILES:
        meta_path = path / name
        if meta_path.is_file():
            try:
                meta = json.loads(meta_path.read_text())
            except (OSError, ValueError) as exc:
                info.error = info.error or f"unreadable {name}: {exc}"
                break
            if isinstance(meta, dict):
                info.metadata = meta
                if isinstance(meta.get("trained"), bool):
                    info.trained = meta["trained"]
            break
    return info


def list_adapters(library: str | Path) -> list[str]:
    """Adapter ids in the library (sorted); a missing library is empty, not an error."""
    root = Path(library)
    if not root.is_dir():
        return []
    return sorted(
        p.name
        for p in root.iterdir()
        if p.is_dir() and valid_adapter_id(p.name) and (p / ADAPTER_CONFIG).is_file()
    )


def scan_library(library: str | Path) -> list[AdapterInfo]:
    root = Path(library)
    return [read_adapter(root / a) for a in list_adapters(root)]
