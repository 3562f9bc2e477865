"""LoRA adapter library and hot-swap on one resident base model (peft).

Library layout (peft `save_pretrained` format, one folder per adapter):

    models/adapters/<name>/adapter_config.json
    models/adapters/<name>/adapter_model.safetensors
    models/adapters/<name>/s1s2_adapter.json        optional: trained flag, domain, notes

Up to `max_resident` adapters stay loaded next to the base model (least recently used evicted with
`delete_adapter`); switching between resident ones is `set_adapter` (no disk access). "" selects
the base model (`disable_adapter()` during inference). Callers serialise swaps and inference with
their own lock (the Planner does).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from s1s2.adapters import AdapterLibraryError, check_adapter_id, list_adapters, read_adapter, verify_adapter

BASE = ""  # adapter id of the base model


class AdapterError(RuntimeError):
    """An adapter that cannot be activated (unknown, corrupt, for another model)."""


@dataclass
class SwapInfo:
    adapter_id: str
    previous: str
    loaded_from_disk: bool
    evicted: list[str]
    swap_ms: float  # this call, load (if needed) + set_adapter


class AdapterSwitcher:
    def __init__(
        self, base_model, library: Path | None, max_resident: int = 3, base_fingerprint: str | None = None
    ):
        self.base_model = base_model
        self.base_fingerprint = base_fingerprint  # adapters trained on another base are refused
        self.library = library
        self.max_resident = max_resident
        self.peft = None  # PeftModel once the first adapter is loaded
        self.active = BASE
        self.resident: OrderedDict[str, Path] = OrderedDict()
        self.manifests: dict = {}  # adapter id -> the manifest verified when it was last loaded

    # -- queries -------------------------------------------------------------------------------
    def names(self) -> list[str]:
        return list_adapters(self.library) if self.library is not None else []

    def card(self, name: str) -> dict:
        """The adapter's metadata sidecar ({} when it has none or `name` is not in the library)."""
        if self.library is None or name not in self.names():
            return {}
        return read_adapter(self.library / name).metadata

    @property
    def model(self):
        """The model to run: the PeftModel when adapters exist, else the plain base model."""
        return self.peft if self.peft is not None else self.base_model

    def inference_context(self):
        if self.peft is not None and self.active == BASE:
            return self.peft.disable_adapter()
        return contextlib.nullcontext()

    # -- swapping ------------------------------------------------------------------------------
    def _validate(self, name: str) -> Path:
        """Verify the adapter before peft touches the model, so a bad one changes nothing: a valid
        id, in the library, safetensors only, weights matching their manifest hashes, trained on
        this base model (fingerprint), and targets that exist in this model."""
        try:
            check_adapter_id(name)  # before any filesystem access
        except ValueError as exc:
            raise AdapterError(str(exc)) from None
        library = ", ".join(self.names()) or "(empty)"
        if self.library is None or name not in self.names():
            raise AdapterError(f"unknown adapter {name!r}; library ({self.library}): {library}")
        path = self.library / name
        try:
            manifest = verify_adapter(path, self.base_fingerprint)
        except AdapterLibraryError as exc:
            raise AdapterError(str(exc)) from None
        self._check_targets(name, manifest.target_modules)
        self.manifests[name] = manifest
        return path

    def _check_targets(self, name: str, targets) -> None:
        modules = [n for n, _ in self.base_model.named_modules()]
        patterns = [targets] if isinstance(targets, str) else list(targets)
        for pat in patterns:
            if isinstance(targets, str):
                hit = any(re.fullmatch(pat, n) for n in modules)
            else:  # peft: a list of names matches module names by suffix
                hit = any(n == pat or n.endswith("." + pat) for n in modules)
            if not hit:
                raise AdapterError(f"adapter {name!r}: target {pat!r} matches no module of this model")

    def _load(self, name: str, path: Path) -> None:
        from peft import PeftModel

        if self.peft is None:
            peft = PeftModel.from_pretrained(
                self.base_model, str(path), adapter_name=name, is_trainable=False
            )
            peft.eval()
            self.peft = peft
            return
        result = self.peft.load_adapter(str(path), adapter_name=name, is_trainable=False)
        unexpected = list(getattr(result, "unexpected_keys", []) or [])
        if unexpected:
            raise AdapterError(
                f"adapter {name!r} does not fit this model: {len(unexpected)} unexpected keys, "
                f"e.g. {unexpected[0]}"
            )

    def activate(self, name: str) -> SwapInfo:
        """Make `name` active ("" = base). On any error the previous adapter stays active."""
        t0 = time.perf_counter()
        previous = self.active
        loaded, evicted = False, []
        if name == BASE:
            self.active = BASE
        elif name in self.resident:
            self.peft.set_adapter(name)
            self.resident.move_to_end(name)
            self.active = name
        else:
            path = self._validate(name)
            try:
                self._load(name, path)
                self.peft.set_adapter(name)
            except Exception as exc:
                self._drop_partial(name)
                if isinstance(exc, AdapterError):
                    raise
                raise AdapterError(f"adapter {name!r}: peft could not load it: {exc}") from exc
            loaded = True
            self.resident[name] = path
            self.active = name
            evicted = self._evict()
        return SwapInfo(name, previous, loaded, evicted, (time.perf_counter() - t0) * 1e3)

    def preload(self, name: str) -> SwapInfo:
        """Load `name` next to the base model without activating it (the context is trending
        towards it): the swap that follows is a resident one. The active adapter stays."""
        t0 = time.perf_counter()
        if name == BASE or name in self.resident:
            return SwapInfo(name, self.active, False, [], (time.perf_counter() - t0) * 1e3)
        path = self._validate(name)
        try:
            self._load(name, path)
            if self.active != BASE:
                self.peft.set_adapter(self.active)  # the first load makes peft activate `name`
        except Exception as exc:
            self._drop_partial(name)
            if isinstance(exc, AdapterError):
                raise
            raise AdapterError(f"adapter {name!r}: peft could not load it: {exc}") from exc
        self.resident[name] = path
        evicted = self._evict(keep=name)
        return SwapInfo(name, self.active, True, evicted, (time.perf_counter() - t0) * 1e3)

    def _drop_partial(self, name: str) -> None:
        """Undo a half-loaded adapter and re-select the previous one."""
        if self.peft is not None:
            with contextlib.suppress(Exception):
                if name in self.peft.peft_config and len(self.peft.peft_config) > 1:
                    self.peft.delete_adapter(name)
            if self.active != BASE:
                with contextlib.suppress(Exception):
                    self.peft.set_adapter(self.active)

    def _evict(self, keep: str = BASE) -> list[str]:
        evicted = []
        while len(self.resident) > self.max_resident:
            victim = next(n for n in self.resident if n not in (self.active, keep))
            self.peft.delete_adapter(victim)
            del self.resident[victim]
            evicted.append(victim)
        return evicted
