"""The on-disk LoRA adapter library: one verified peft folder per adapter. The one reader the
planner and the adapter manager share (no torch, no peft: plain files, JSON and hashes).

    models/adapters/<adapter_id>/adapter_config.json        peft's config
    models/adapters/<adapter_id>/adapter_model.safetensors  peft's weights (safetensors only, never pickle)
    models/adapters/<adapter_id>/s1s2_adapter.json          the manifest (MANIFEST_FIELDS)

The manifest names the adapter, the base model it was trained on (`base_fingerprint`, see
`base_fingerprint`), how it was trained (strategy, rank, alpha, target modules, data summary),
what it is for (`context_tags`, e.g. ["lighting:warm_tungsten"]), how well it did (`metrics`),
when it was made, and the sha256 of every weights file. `verify_adapter` checks all of it before a
swap; `add_adapter` / `remove_adapter` change the library atomically (a temporary folder renamed
into place; a crash never leaves a half-registered adapter, and a stale temporary folder is never
read: its name starts with '.'). `AdapterIndex` answers lookups by tag from the manifests alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import struct
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ADAPTER_CONFIG = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
MANIFEST = "s1s2_adapter.json"
MANIFEST_FORMAT = 1
# Files that hold Python pickles: loading one can run arbitrary code, so a library never accepts them.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
STRATEGIES = (
    "projector",
    "llm",
    "vision",
    "llm+vision",
    "projector+llm",
    "projector+vision",
    "all",
    "starter",
)
# An adapter id is a folder name: a letter or digit, then letters, digits, '_', '.', '-'; at most
# MAX_ID_LENGTH characters. Checked before any filesystem access.
MAX_ID_LENGTH = 64
_ID_RE = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.\-]{{0,{MAX_ID_LENGTH - 1}}}")
FULL_HASH_LIMIT = 256 * 2**20  # base models up to this size are fingerprinted by their full contents


class AdapterLibraryError(ValueError):
    """An adapter or library that cannot be used; the message says which and why."""


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


# ---------------------------------------------------------------------------------- hashes
def sha256_file(path: Path, chunk: int = 2**20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def safetensors_header(path: Path) -> bytes:
    """The JSON header of a safetensors file (tensor names, dtypes, shapes, offsets)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        if n > 100 * 2**20:
            raise AdapterLibraryError(f"{path}: implausible safetensors header size {n}")
        return f.read(n)


def base_fingerprint(model_dir: str | Path) -> str:
    """A fingerprint of a base model's weights (its *.safetensors files).

    Up to FULL_HASH_LIMIT bytes in all: sha256 of the full contents ("sha256:..."). Larger (a hub
    7B model): sha256 of every file's header, size and its first and last MiB
    ("sha256-sampled:..."), so fingerprinting stays instant; an adapter records which it used."""
    files = sorted(Path(model_dir).glob("*.safetensors"))
    files = [f for f in files if f.name != WEIGHTS_FILE]
    if not files:
        raise AdapterLibraryError(f"base model {model_dir}: no *.safetensors weights to fingerprint")
    total = sum(f.stat().st_size for f in files)
    h = hashlib.sha256()
    if total <= FULL_HASH_LIMIT:
        for f in files:
            h.update(f.name.encode() + b"\0")
            h.update(bytes.fromhex(sha256_file(f)))
        return "sha256:" + h.hexdigest()
    for f in files:
        size = f.stat().st_size
        h.update(f.name.encode() + b"\0" + str(size).encode() + b"\0" + safetensors_header(f))
        with open(f, "rb") as fh:
            h.update(fh.read(2**20))
            fh.seek(max(0, size - 2**20))
            h.update(fh.read(2**20))
    return "sha256-sampled:" + h.hexdigest()


# ---------------------------------------------------------------------------------- manifest
@dataclass
class AdapterManifest:
    adapter_id: str
    base_fingerprint: str
    strategy: str
    rank: int
    alpha: float
    target_modules: list[str] | str
    context_tags: list[str]
    files: dict[str, str]  # weights file -> sha256
    data: dict
    metrics: dict
    created: str  # ISO 8601
    trained: bool
    base_model: str = ""  # where the base came from (informational; the fingerprint decides)
    notes: str = ""
    # trained on frames with the base card's input colour constancy (vlm_planner.colour); false:
    # on raw frames, and the planner feeds this adapter raw frames too
    input_normalisation: bool = True
    format: int = MANIFEST_FORMAT

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"


LIGHTING_TAG = "lighting:"  # context tag prefix naming the lighting domain an adapter is for


def lighting_domains(context_tags) -> list[str]:
    """The lighting domains an adapter's context tags name ("lighting:night_noise" -> "night_noise")."""
    return [
        t[len(LIGHTING_TAG) :]
        for t in context_tags or ()
        if isinstance(t, str) and t.startswith(LIGHTING_TAG)
    ]


MANIFEST_FIELDS = {
    "adapter_id": str, "base_fingerprint": str, "strategy": str, "rank": int, "alpha": (int, float),
    "target_modules": (list, str), "context_tags": list, "files": dict, "data": dict, "metrics": dict,
    "created": str, "trained": bool,
}  # fmt: skip


def read_manifest(adapter_dir: Path) -> AdapterManifest:
    """Parse and check an adapter's manifest; AdapterLibraryError names missing or wrong fields."""
    path = Path(adapter_dir) / MANIFEST
    if not path.is_file():
        raise AdapterLibraryError(
            f"adapter {Path(adapter_dir).name!r}: no manifest {MANIFEST} (register it with `s1s2 adapters add`)"
        )
    try:
        d = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AdapterLibraryError(
            f"adapter {Path(adapter_dir).name!r}: unreadable {MANIFEST}: {exc}"
        ) from None
    if not isinstance(d, dict):
        raise AdapterLibraryError(f"adapter {Path(adapter_dir).name!r}: {MANIFEST} is not a JSON object")
    missing = [k for k in MANIFEST_FIELDS if k not in d]
    wrong = [
        f"{k} ({type(d[k]).__name__})"
        for k, t in MANIFEST_FIELDS.items()
        if k in d and (not isinstance(d[k], t) or (t is int and isinstance(d[k], bool)))
    ]
    if missing or wrong:
        raise AdapterLibraryError(
            f"adapter {Path(adapter_dir).name!r}: manifest {MANIFEST} "
            + (f"lacks {', '.join(missing)}" if missing else "")
            + ("; " if missing and wrong else "")
            + (f"has wrong types: {', '.join(wrong)}" if wrong else "")
        )
    if d.get("format", MANIFEST_FORMAT) != MANIFEST_FORMAT:
        raise AdapterLibraryError(
            f"adapter {Path(adapter_dir).name!r}: manifest format {d.get('format')!r}, expected {MANIFEST_FORMAT}"
        )
    if not isinstance(d.get("input_normalisation", True), bool):
        raise AdapterLibraryError(
            f"adapter {d['adapter_id']!r}: input_normalisation {d['input_normalisation']!r} must be true or false"
        )
    if d["strategy"] not in STRATEGIES:
        raise AdapterLibraryError(
            f"adapter {d['adapter_id']!r}: unknown strategy {d['strategy']!r}; valid: {', '.join(STRATEGIES)}"
        )
    known = {f for f in AdapterManifest.__dataclass_fields__}
    return AdapterManifest(**{k: v for k, v in d.items() if k in known})


def write_manifest(adapter_dir: Path, **fields) -> AdapterManifest:
    """Hash the weights and write the manifest (fields: everything but `files`, `created`, `format`)."""
    adapter_dir = Path(adapter_dir)
    files = {p.name: sha256_file(p) for p in sorted(adapter_dir.glob("*.safetensors"))}
    if WEIGHTS_FILE not in files:
        raise AdapterLibraryError(f"{adapter_dir}: no {WEIGHTS_FILE} to register")
    fields.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    m = AdapterManifest(files=files, **fields)
    (adapter_dir / MANIFEST).write_text(m.to_json())
    return m


def _peft_config(adapter_dir: Path) -> dict:
    try:
        cfg = json.loads((adapter_dir / ADAPTER_CONFIG).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AdapterLibraryError(
            f"adapter {adapter_dir.name!r}: unreadable {ADAPTER_CONFIG}: {exc}"
        ) from None
    if not isinstance(cfg, dict) or str(cfg.get("peft_type")) not in ("LORA", "PeftType.LORA"):
        raise AdapterLibraryError(f"adapter {adapter_dir.name!r}: {ADAPTER_CONFIG} is not a peft LoRA config")
    return cfg


def verify_adapter(
    adapter_dir: Path, expected_base: str | None = None, adapter_id: str | None = None
) -> AdapterManifest:
    """Everything a swap checks before peft touches the model; AdapterLibraryError says what failed:
    a pickle file, a missing or wrong manifest, weights whose sha256 differs from the manifest, a
    manifest that disagrees with peft's config (rank, alpha, targets), another base model."""
    adapter_dir = Path(adapter_dir)
    name = adapter_id or adapter_dir.name  # a folder being registered has a temporary name
    pickles = sorted(p.name for p in adapter_dir.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise AdapterLibraryError(
            f"adapter {name!r}: pickle weights {', '.join(pickles)} refused (safetensors only)"
        )
    m = read_manifest(adapter_dir)
    if m.adapter_id != name:
        raise AdapterLibraryError(f"adapter {name!r}: manifest says adapter_id {m.adapter_id!r}")
    if WEIGHTS_FILE not in m.files:
        raise AdapterLibraryError(f"adapter {name!r}: manifest lists no {WEIGHTS_FILE}")
    for fname, digest in m.files.items():
        f = adapter_dir / fname
        if not f.is_file():
            raise AdapterLibraryError(f"adapter {name!r}: {fname} is missing")
        actual = sha256_file(f)
        if actual != digest:
            raise AdapterLibraryError(
                f"adapter {name!r}: {fname} fails its hash (sha256 {actual[:12]}..., manifest {digest[:12]}...): corrupt or replaced"
            )
    cfg = _peft_config(adapter_dir)
    for key, want in (("r", m.rank), ("lora_alpha", m.alpha), ("target_modules", m.target_modules)):
        got = cfg.get(key)
        if isinstance(got, list) and isinstance(want, list):
            got, want = sorted(got), sorted(want)
        if got != want:
            raise AdapterLibraryError(
                f"adapter {name!r}: {ADAPTER_CONFIG} {key} = {got!r}, manifest says {want!r}"
            )
    if expected_base is not None and m.base_fingerprint != expected_base:
        raise AdapterLibraryError(
            f"adapter {name!r} was trained on another base model (fingerprint {m.base_fingerprint[:20]}..., "
            f"this base {expected_base[:20]}...)"
        )
    return m


# ---------------------------------------------------------------------------------- library
def list_adapters(library: str | Path) -> list[str]:
    """Adapter ids in the library (sorted); a missing library is empty, not an error. Folders
    whose name is not a valid id (temporary '.tmp-*' folders of an interrupted add) are skipped."""
    root = Path(library)
    if not root.is_dir():
        return []
    return sorted(
        p.name
        for p in root.iterdir()
        if p.is_dir() and valid_adapter_id(p.name) and (p / ADAPTER_CONFIG).is_file()
    )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def clean_stale(library: Path) -> list[str]:
    """Remove temporary folders left by an interrupted add or remove; returns their names."""
    gone = []
    for p in Path(library).glob(".*-*"):
        if p.is_dir() and (p.name.startswith(".tmp-") or p.name.startswith(".trash-")):
            shutil.rmtree(p, ignore_errors=True)
            gone.append(p.name)
    return gone


def add_adapter(library: str | Path, src: str | Path, adapter_id: str | None = None,
                expected_base: str | None = None, replace: bool = False, **manifest_fields) -> AdapterManifest:  # fmt: skip
    """Register the peft adapter folder `src` in `library` as `adapter_id` (default: its folder name).

    Copied into a temporary folder, verified (after writing a manifest when `manifest_fields` are
    given, else the one in `src`), then renamed into place: readers see the old library or the
    new one, never a half-registered adapter. `replace` swaps an existing id atomically."""
    library, src = Path(library), Path(src)
    adapter_id = check_adapter_id(adapter_id or src.name)
    manifest_fields.pop("adapter_id", None)  # the id is `adapter_id`
    if not (src / ADAPTER_CONFIG).is_file():
        raise AdapterLibraryError(f"{src}: not a peft adapter folder (no {ADAPTER_CONFIG})")
    library.mkdir(parents=True, exist_ok=True)
    with _library_lock(library):
        return _add_locked(library, src, adapter_id, expected_base, replace, manifest_fields)


@contextlib.contextmanager
def _library_lock(library: Path):
    """Registrations in one library take turns (an exclusive flock, released if the holder dies):
    each add first cleans every stale temporary folder, which would remove a concurrent add's."""
    import fcntl
    import tempfile

    key = hashlib.sha256(str(library.resolve()).encode()).hexdigest()[:12]
    with open(Path(tempfile.gettempdir()) / f"s1s2-adapters-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _add_locked(library: Path, src: Path, adapter_id: str, expected_base: str | None, replace: bool,
                manifest_fields: dict) -> AdapterManifest:  # fmt: skip
    clean_stale(library)
    final = library / adapter_id
    if final.exists() and not replace:
        raise AdapterLibraryError(
            f"adapter {adapter_id!r} is already in {library} (remove it first, or replace)"
        )
    tmp = library / f".tmp-{adapter_id}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        shutil.copytree(src, tmp, ignore=shutil.ignore_patterns("README.md", ".*"))
        if manifest_fields:
            write_manifest(tmp, adapter_id=adapter_id, **manifest_fields)
        else:  # the source's manifest, with this id
            m = read_manifest(tmp)
            if m.adapter_id != adapter_id:
                m.adapter_id = adapter_id
                (tmp / MANIFEST).write_text(m.to_json())
        m = verify_adapter(tmp, expected_base, adapter_id)
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        if final.exists():  # replace: move the old one aside first, then put the new one in place
            trash = library / f".trash-{adapter_id}-{os.getpid()}"
            final.rename(trash)
            tmp.rename(final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            tmp.rename(final)
        _fsync_dir(library)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return m


def remove_adapter(library: str | Path, adapter_id: str) -> None:
    library = Path(library)
    check_adapter_id(adapter_id)
    final = library / adapter_id
    if not final.is_dir():
        raise AdapterLibraryError(
            f"no adapter {adapter_id!r} in {library}; library: {', '.join(list_adapters(library)) or '(empty)'}"
        )
    trash = library / f".trash-{adapter_id}-{os.getpid()}"
    final.rename(trash)  # atomic: gone from the library at once
    _fsync_dir(library)
    shutil.rmtree(trash, ignore_errors=True)


@dataclass
class AdapterInfo:
    """What `s1s2 adapters list` shows of one adapter; `error` is set for an unusable one."""

    adapter_id: str
    path: Path
    size_bytes: int
    manifest: AdapterManifest | None = None
    base_model: str = ""
    rank: int | None = None
    target_modules: list[str] | str = field(default_factory=list)
    error: str = ""

    @property
    def trained(self) -> bool | None:
        return None if self.manifest is None else self.manifest.trained

    @property
    def metadata(self) -> dict:
        return asdict(self.manifest) if self.manifest is not None else {}


def read_adapter(path: Path) -> AdapterInfo:
    """Describe one adapter folder from its manifest and peft config (no hashing); never raises."""
    path = Path(path)
    info = AdapterInfo(path.name, path, sum(f.stat().st_size for f in path.rglob("*") if f.is_file()))
    try:
        cfg = _peft_config(path)
        info.base_model = str(cfg.get("base_model_name_or_path") or "")
        info.rank = cfg.get("r") if isinstance(cfg.get("r"), int) else None
        info.target_modules = cfg.get("target_modules") or []
        info.manifest = read_manifest(path)
    except AdapterLibraryError as exc:
        info.error = str(exc)
    return info


def scan_library(library: str | Path) -> list[AdapterInfo]:
    root = Path(library)
    return [read_adapter(root / a) for a in list_adapters(root)]


class AdapterIndex:
    """Manifests of a library, read once (weights are never opened): lookup by context tag."""

    def __init__(self, library: str | Path):
        self.library = Path(library)
        self.manifests: dict[str, AdapterManifest] = {}
        self.errors: dict[str, str] = {}
        self._by_tag: dict[str, list[str]] = {}
        self.refresh()

    def refresh(self) -> None:
        manifests, errors, by_tag = {}, {}, {}
        for aid in list_adapters(self.library):
            try:
                m = read_manifest(self.library / aid)
            except AdapterLibraryError as exc:
                errors[aid] = str(exc)
                continue
            manifests[aid] = m
            for tag in m.context_tags:
                by_tag.setdefault(tag, []).append(aid)
        self.manifests, self.errors, self._by_tag = manifests, errors, by_tag

    def ids(self) -> list[str]:
        return sorted(self.manifests)

    def lookup(self, *tags: str) -> list[str]:
        """Adapters carrying every tag, best evaluated first (metrics['accuracy'] when present)."""
        if not tags:
            return self.ids()
        sets = [set(self._by_tag.get(t, ())) for t in tags]
        found = set.intersection(*sets)
        return sorted(found, key=lambda a: (-float(self.manifests[a].metrics.get("accuracy", 0.0) or 0.0), a))
