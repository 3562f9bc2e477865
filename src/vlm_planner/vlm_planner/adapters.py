"""LoRA adapter library and hot-swap on one resident base model (peft).

Library layout (peft `save_pretrained` format, one folder per adapter):

    models/adapters/<name>/adapter_config.json
    models/adapters/<name>/adapter_model.safetensors
    models/adapters/<name>/s1s2_adapter.json        optional: trained flag, domain, notes

Up to `max_resident` adapters stay loaded next to the base model, each in a peft adapter "slot"
(`slot0`, `slot1`, ...); switching between resident ones is `set_adapter` (no disk access). "" selects
the base model (LoRA layers switched off at the swap, not per plan). Loading one more from disk when the resident
set is full evicts the least recently used adapter; when it has the same LoRA layout (rank, alpha,
targets, ...) and weight names, the new one's verified safetensors are copied into its slot's
tensors in place (the whole swap takes 4-5 ms on the sim model); otherwise peft's `load_adapter`
builds a new slot (its module surgery: 60-200 ms here) and the old slot is deleted. Callers
serialise swaps and inference with their own lock (the Planner does).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from s1s2.adapters import (
    ADAPTER_CONFIG,
    WEIGHTS_FILE,
    AdapterLibraryError,
    check_adapter_id,
    list_adapters,
    read_adapter,
    verify_adapter,
)

BASE = ""  # adapter id of the base model
# adapter_config.json keys that shape the LoRA layers; two adapters that agree on all of them can
# share a slot (dropout is the identity at inference)
LAYOUT_KEYS = ("peft_type", "r", "lora_alpha", "target_modules", "exclude_modules", "rank_pattern",
               "alpha_pattern", "use_rslora", "use_dora", "bias", "lora_bias", "fan_in_fan_out",
               "modules_to_save", "layers_to_transform", "layers_pattern")  # fmt: skip


class AdapterError(RuntimeError):
    """An adapter that cannot be activated (unknown, corrupt, for another model)."""


@dataclass
class SwapInfo:
    adapter_id: str
    previous: str
    loaded_from_disk: bool
    evicted: list[str]
    swap_ms: float  # this call, load (if needed) + set_adapter
    in_place: bool = False  # loaded from disk into a reused slot's tensors (no peft module surgery)


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
        self.resident: OrderedDict[str, Path] = OrderedDict()  # adapter id -> folder, LRU first
        self.slots: dict[str, str] = {}  # resident adapter id -> peft adapter name holding it
        self._slot_params: dict[str, dict] = {}  # peft name -> weights-file key -> its Parameter
        self._slot_layout: dict[str, str] = {}  # peft name -> LoRA layout (LAYOUT_KEYS)
        self._next_slot = 0
        self._targets_ok: set[str] = set()  # target patterns already checked against the model
        # LoRA layers switched on (None: unknown, after peft built a slot)
        self._layers_on: bool | None = None
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

    def _sync_layers(self) -> None:
        """LoRA layers off while the base model is active, on otherwise. Switched at swap time, not
        per plan: peft's `disable_adapter()` context walks the whole model and its status on every
        call (7.6 ms p50 per plan on the sim model, more than a resident swap)."""
        if self.peft is None:
            return
        on = self.active != BASE
        if self._layers_on is not on:
            if on:
                self.peft.base_model.enable_adapter_layers()
            else:
                self.peft.base_model.disable_adapter_layers()
            self._layers_on = on

    # -- swapping ------------------------------------------------------------------------------
    def _validate(self, name: str) -> Path:
        """Verify the adapter before peft touches the model, so a bad one changes nothing: a valid
        id, in the library, safetensors only, weights matching their manifest hashes, trained on
        this base model (fingerprint), and targets that exist in this model."""
        try:
            check_adapter_id(name)  # before any filesystem access
        except ValueError as exc:
            raise AdapterError(str(exc)) from None
        if self.library is None or not (self.library / name / ADAPTER_CONFIG).is_file():
            library = ", ".join(self.names()) or "(empty)"
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
        key = json.dumps(targets, sort_keys=True, default=str)
        if key in self._targets_ok:  # the model's modules never change
            return
        modules = [n for n, _ in self.base_model.named_modules()]
        patterns = [targets] if isinstance(targets, str) else list(targets)
        for pat in patterns:
            if isinstance(targets, str):
                hit = any(re.fullmatch(pat, n) for n in modules)
            else:  # peft: a list of names matches module names by suffix
                hit = any(n == pat or n.endswith("." + pat) for n in modules)
            if not hit:
                raise AdapterError(f"adapter {name!r}: target {pat!r} matches no module of this model")
        self._targets_ok.add(key)

    @staticmethod
    def _layout(path: Path) -> str:
        cfg = json.loads((path / ADAPTER_CONFIG).read_text())
        return json.dumps({k: cfg.get(k) for k in LAYOUT_KEYS}, sort_keys=True, default=str)

    def _load(self, slot: str, path: Path) -> None:
        """peft builds the LoRA layers of a new slot and loads the weights into them."""
        from peft import PeftModel

        if self.peft is None:
            peft = PeftModel.from_pretrained(
                self.base_model, str(path), adapter_name=slot, is_trainable=False
            )
            peft.eval()
            self.peft = peft
        else:
            result = self.peft.load_adapter(str(path), adapter_name=slot, is_trainable=False)
            unexpected = list(getattr(result, "unexpected_keys", []) or [])
            if unexpected:
                raise AdapterError(
                    f"adapter {path.name!r} does not fit this model: {len(unexpected)} unexpected keys, "
                    f"e.g. {unexpected[0]}"
                )
        self._layers_on = None  # new LoRA layers start switched on
        params = {}
        for n, p in self.peft.named_parameters():  # "<module>.lora_A.<slot>.weight" -> the file's key
            parts = n.split(".")
            if len(parts) >= 3 and parts[-2] == slot and parts[-3].startswith("lora_"):
                params[".".join(parts[:-2] + parts[-1:])] = p
        self._slot_params[slot] = params
        self._slot_layout[slot] = self._layout(path)

    def _load_in_place(self, victim: str, name: str, path: Path) -> bool:
        """Copy `name`'s weights into the slot of the resident adapter `victim` (same layout),
        evicting it. False (nothing changed) when the weight names or shapes differ."""
        import torch
        from safetensors.torch import load as load_safetensors

        slot = self.slots[victim]
        data = (path / WEIGHTS_FILE).read_bytes()  # one read: the bytes hashed are the bytes loaded
        digest = self.manifests[name].files[WEIGHTS_FILE]
        if hashlib.sha256(data).hexdigest() != digest:
            raise AdapterError(
                f"adapter {name!r}: {WEIGHTS_FILE} changed on disk during the swap; not loaded"
            )
        try:
            tensors = load_safetensors(data)
        except Exception as exc:
            raise AdapterError(f"adapter {name!r}: {WEIGHTS_FILE} unreadable: {exc}") from None
        params = self._slot_params[slot]
        if tensors.keys() != params.keys() or any(t.shape != params[k].shape for k, t in tensors.items()):
            return False
        del self.resident[victim], self.slots[victim]
        try:
            with torch.no_grad():
                for k, t in tensors.items():
                    params[k].copy_(t)
        except Exception as exc:  # a half-written slot is never used again
            self._delete_slot(slot)
            if victim == self.active:
                self.active = BASE
            raise AdapterError(f"adapter {name!r}: copying its weights failed: {exc}") from exc
        self.slots[name] = slot
        self.resident[name] = path
        return True

    def _bring_in(self, name: str, path: Path, may_evict_active: bool) -> tuple[list[str], bool]:
        """Make `name` resident: in place into the least recently used slot when the resident set
        is full and its layout agrees, else a new peft slot (then evict down to max_resident).
        The active adapter is evicted only when `name` replaces it (activate), and last.
        Returns (evicted ids, in place)."""
        victims = self._victims(name, may_evict_active)
        if len(self.resident) >= self.max_resident and victims:  # strict LRU: the oldest makes room
            lru = victims[0]
            same_layout = self._slot_layout.get(self.slots[lru]) == self._layout(path)
            if same_layout and self._load_in_place(lru, name, path):
                return [lru], True
        slot = f"slot{self._next_slot}"
        self._next_slot += 1
        try:
            self._load(slot, path)
        except Exception as exc:
            self._drop_partial(slot)
            if isinstance(exc, AdapterError):
                raise
            raise AdapterError(f"adapter {name!r}: peft could not load it: {exc}") from exc
        self.slots[name] = slot
        self.resident[name] = path
        return self._evict(name, may_evict_active), False

    def _victims(self, keep: str, may_evict_active: bool) -> list[str]:
        """Resident ids that may make room, least recently used first, the active one last."""
        others = [n for n in self.resident if n not in (keep, self.active)]
        return others + ([self.active] if may_evict_active and self.active in self.resident else [])

    def activate(self, name: str) -> SwapInfo:
        """Make `name` active ("" = base). On any error the previous adapter stays active."""
        return self._timed(self._activate, name)

    def preload(self, name: str) -> SwapInfo:
        """Load `name` next to the base model without activating it (the context is trending
        towards it): the swap that follows is a resident one. The active adapter stays."""
        return self._timed(self._preload, name)

    def _timed(self, fn, name: str) -> SwapInfo:
        t0 = time.perf_counter()
        try:
            info = fn(name)
        finally:  # also after a failed swap: the layers follow whichever adapter is active now
            self._sync_layers()
        info.swap_ms = (time.perf_counter() - t0) * 1e3
        return info

    def _activate(self, name: str) -> SwapInfo:
        previous = self.active
        loaded, evicted, in_place = False, [], False
        if name == BASE:
            self.active = BASE
        elif name in self.resident:
            self.peft.set_adapter(self.slots[name])
            self.resident.move_to_end(name)
            self.active = name
        else:
            path = self._validate(name)
            evicted, in_place = self._bring_in(name, path, may_evict_active=True)
            try:
                self.peft.set_adapter(self.slots[name])
            except Exception as exc:
                self._forget(name)
                if self.active not in self.resident:  # its slot was reused or evicted
                    self.active = BASE
                raise AdapterError(f"adapter {name!r}: peft could not activate it: {exc}") from exc
            loaded = True
            self.active = name
        return SwapInfo(name, previous, loaded, evicted, 0.0, in_place)  # swap_ms: set by _timed

    def _preload(self, name: str) -> SwapInfo:
        if name == BASE or name in self.resident:
            return SwapInfo(name, self.active, False, [], 0.0)
        path = self._validate(name)
        evicted, in_place = self._bring_in(name, path, may_evict_active=False)
        if self.active != BASE:
            try:
                self.peft.set_adapter(self.slots[self.active])  # a new slot makes peft activate it
            except Exception as exc:
                self._forget(name)
                raise AdapterError(
                    f"adapter {name!r}: peft could not re-select {self.active!r}: {exc}"
                ) from exc
        return SwapInfo(name, self.active, True, evicted, 0.0, in_place)

    def warm(self, log=None) -> list[str]:
        """Fill the resident set with library adapters of the library's most common LoRA layout
        (name order), without changing the active one: peft builds their slots now, at start-up,
        and every later swap from disk of that layout copies weights into a slot in place. An
        adapter that fails verification is skipped (and logged), as a swap to it would be refused.
        Returns the adapters loaded."""
        if self.library is None:
            return []
        layouts: dict[str, list[str]] = {}
        for name in self.names():
            try:
                layouts.setdefault(self._layout(self.library / name), []).append(name)
            except (OSError, ValueError):
                continue  # unreadable config: its own swap reports it
        if not layouts:
            return []
        common = max(layouts.values(), key=len)
        loaded = []
        for name in common:
            if len(self.resident) >= self.max_resident:
                break
            if name in self.resident:
                continue
            try:
                self.preload(name)
                loaded.append(name)
            except AdapterError as exc:
                if log:
                    log(f"warm adapter slots: skipped {name!r}: {exc}")
        return loaded

    def _delete_slot(self, slot: str) -> None:
        self._slot_params.pop(slot, None)
        self._slot_layout.pop(slot, None)
        if self.peft is not None and slot in self.peft.peft_config and len(self.peft.peft_config) > 1:
            self.peft.delete_adapter(slot)

    def _forget(self, name: str) -> None:
        """Drop a resident adapter that could not be activated; re-select the active one."""
        slot = self.slots.pop(name, None)
        self.resident.pop(name, None)
        if slot is not None:
            self._drop_partial(slot)

    def _drop_partial(self, slot: str) -> None:
        """Undo a half-loaded slot and re-select the active adapter's."""
        if self.peft is not None:
            with contextlib.suppress(Exception):
                self._delete_slot(slot)
            if self.active != BASE:
                with contextlib.suppress(Exception):
                    self.peft.set_adapter(self.slots[self.active])

    def _evict(self, keep: str, may_evict_active: bool) -> list[str]:
        evicted = []
        for victim in self._victims(keep, may_evict_active)[: max(0, len(self.resident) - self.max_resident)]:
            self._delete_slot(self.slots.pop(victim))
            del self.resident[victim]
            evicted.append(victim)
        return evicted
