"""`s1s2 models [NAME ...]`: regenerate the artifacts in models/ and models/manifest.json.

Each artifact has one builder, `build(out_dir, seed) -> record`, in s1s2_training/<area>/build.py.
The manifest names, for each artifact, the command, data and seed that produced it, whether it is
trained, and the metrics its builder measured. Order matters: later builders may use earlier ones.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

from s1s2 import repo_root

# name -> (builder "module:function", output directory under models/, seed)
BUILDERS: dict[str, tuple[str, str, int]] = {
    "sim_vlm": ("s1s2_training.vlm.build:build", "sim_vlm", 0),
    "adapters": ("s1s2_training.vlm.build_adapters:build", "adapters", 0),  # after sim_vlm: its base
    "lighting_classifier": ("s1s2_training.lighting.build:build", "lighting", 0),
    "policy": ("s1s2_training.policy.build:build", "policy", 0),
    "policy_flow": ("s1s2_training.policy.build:build_flow", "policy_flow", 0),
    "policy_mlp": ("s1s2_training.policy.build:build_mlp", "policy_mlp", 0),
}

MANIFEST = "manifest.json"
SIZE_BUDGET_MB = 50.0


def models_dir() -> Path:
    return repo_root() / "models"


def read_manifest() -> dict:
    path = models_dir() / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else {"artifacts": {}}


def dir_size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def _relative_paths(record: dict) -> dict:
    """Paths in the manifest are relative to the repo root, so it reads the same in any checkout."""
    root = repo_root().resolve()
    for key, value in record.items():
        if key.endswith("path") and isinstance(value, str) and Path(value).is_absolute():
            p = Path(value).resolve()
            record[key] = str(p.relative_to(root)) if p.is_relative_to(root) else value
    return record


def build(names: list[str]) -> dict:
    built = {}
    for name in names:
        target, subdir, seed = BUILDERS[name]
        module, func = target.split(":")
        out_dir = models_dir() / subdir
        out_dir.mkdir(parents=True, exist_ok=True)
        print(f"[models] building {name} -> {out_dir} (seed {seed})", flush=True)
        t0 = time.monotonic()
        record = getattr(importlib.import_module(module), func)(out_dir, seed)
        record = _relative_paths(dict(record))
        record.setdefault("name", name)
        record.setdefault("seed", seed)
        record.setdefault("path", str(out_dir.relative_to(repo_root())))
        record.setdefault("command", f"s1s2 models {name}")
        record["build_seconds"] = round(time.monotonic() - t0, 1)
        built[name] = record
        print(f"[models] {name}: trained={record.get('trained')} in {record['build_seconds']} s", flush=True)
    # Read the manifest only now: a concurrent `s1s2 models <other>` may have written its entry
    # while this build ran, and it must not be lost.
    manifest = read_manifest()
    manifest["artifacts"].update(built)
    manifest["total_mb"] = round(dir_size_mb(models_dir()), 2)
    (models_dir() / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="s1s2 models", description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help=f"subset of: {', '.join(BUILDERS)} (default: all)")
    args = ap.parse_args(argv)
    unknown = [n for n in args.names if n not in BUILDERS]
    if unknown:
        print(f"s1s2 models: unknown artifact(s) {unknown}; known: {', '.join(BUILDERS)}", file=sys.stderr)
        return 2
    manifest = build(args.names or list(BUILDERS))
    if manifest["total_mb"] > SIZE_BUDGET_MB:
        print(
            f"s1s2 models: models/ is {manifest['total_mb']} MB, over the {SIZE_BUDGET_MB} MB budget",
            file=sys.stderr,
        )
        return 1
    print(f"[models] manifest written: models/{MANIFEST} ({manifest['total_mb']} MB in models/)")
    return 0
