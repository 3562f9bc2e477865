"""`s1s2 adapters ...`: the verified LoRA adapter library and the lighting classifier.

s1s2 adapters list   [--library DIR] [--tag T ...] [--json]    adapters, tags, strategy, rank, trained, metrics
s1s2 adapters add    SRC [--id ID] [--base MODEL_DIR] [--tag T ...] [--strategy S] [--replace]
                     register a peft adapter folder: hashes its weights, writes its manifest (or
                     keeps SRC's), verifies it against --base, moves it into place atomically
s1s2 adapters verify [ID ...] [--base MODEL_DIR]               hashes, manifest, base fingerprint
s1s2 adapters remove ID                                        atomic removal
s1s2 adapters classify IMAGE... [--sequence]                   lighting label + probabilities per image
s1s2 adapters bench [--n 300]                                  start-up, lookup, memory, swaps of a big library
"""

from __future__ import annotations

import argparse
import json
import sys

from adapter_manager.classifier import ClassifierFileError, LightingClassifier
from adapter_manager.features import FEATURE_NAMES, FeatureExtractor, features_dict
from s1s2 import resolve_path
from s1s2.adapters import (
    STRATEGIES,
    AdapterIndex,
    AdapterLibraryError,
    add_adapter,
    base_fingerprint,
    list_adapters,
    read_manifest,
    remove_adapter,
    scan_library,
    verify_adapter,
)

DEFAULT_LIBRARY = "models/adapters"
DEFAULT_BASE = "models/sim_vlm"
DEFAULT_CLASSIFIER = "models/lighting/classifier.json"


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def cmd_list(args) -> int:
    lib = resolve_path(args.library)
    wanted = set(AdapterIndex(lib).lookup(*args.tag)) if args.tag else None
    adapters = [a for a in scan_library(lib) if wanted is None or a.adapter_id in wanted]
    if args.json:
        rows = [
            {"adapter_id": a.adapter_id, "path": str(a.path), "size_bytes": a.size_bytes, "rank": a.rank,
             "trained": a.trained, "manifest": a.metadata, "error": a.error}
            for a in adapters
        ]  # fmt: skip
        print(json.dumps(rows, indent=1, default=str))
        return 0
    if not adapters:
        print(f"no adapters in {lib}" + (f" tagged {', '.join(args.tag)}" if args.tag else ""))
        return 0
    print(f"adapter library {lib}: {len(adapters)} adapter(s)")
    print(f"{'adapter':28s} {'size':>9s} {'strategy':11s} {'r':>3s} {'trained':8s} tags / metrics")
    for a in adapters:
        m = a.manifest
        trained = {True: "yes", False: "no", None: "?"}[a.trained]
        rank = str(a.rank) if a.rank is not None else "-"
        tail = (
            f"[ERROR: {a.error}]"
            if a.error
            else f"{','.join(m.context_tags)}  {json.dumps(m.metrics, sort_keys=True)[:80] if m.metrics else ''}"
        )
        print(
            f"{a.adapter_id:28s} {_size(a.size_bytes):>9s} {(m.strategy if m else '-'):11s} {rank:>3s} {trained:8s} {tail}"
        )
    return 0


def cmd_add(args) -> int:
    from pathlib import Path

    src = resolve_path(args.src)
    lib = resolve_path(args.library)
    base = base_fingerprint(resolve_path(args.base))
    try:
        if (Path(src) / "s1s2_adapter.json").is_file() and not args.tag and not args.strategy:
            m = add_adapter(lib, src, args.id, expected_base=base, replace=args.replace)
        else:
            cfg = json.loads((Path(src) / "adapter_config.json").read_text())
            # Three layers: defaults for a bare peft folder, the source manifest's own fields
            # (metrics, data, notes, input_normalisation, ...), then what this command sets (tags
            # and strategy when given; the shape from peft's config; this base's fingerprint).
            # Hashes, time and format are written anew.
            prev = {"strategy": "llm+vision", "context_tags": [], "data": {}, "metrics": {}, "trained": True}
            if (Path(src) / "s1s2_adapter.json").is_file():
                prev |= read_manifest(Path(src)).__dict__
            for k in ("adapter_id", "files", "created", "format"):
                prev.pop(k, None)
            given = {"strategy": args.strategy, "context_tags": list(args.tag)}
            fields = prev | {k: v for k, v in given.items() if v} | {
                "base_fingerprint": base, "base_model": str(args.base),
                "rank": int(cfg["r"]), "alpha": cfg["lora_alpha"], "target_modules": cfg["target_modules"],
            }  # fmt: skip
            m = add_adapter(lib, src, args.id, expected_base=base, replace=args.replace, **fields)
    except (AdapterLibraryError, ValueError, OSError, KeyError) as exc:
        print(f"s1s2 adapters add: {exc}", file=sys.stderr)
        return 2
    print(
        f"registered {m.adapter_id!r} in {lib} (tags {', '.join(m.context_tags) or '-'}, {len(m.files)} weights file(s) hashed)"
    )
    return 0


def cmd_verify(args) -> int:
    lib = resolve_path(args.library)
    base = base_fingerprint(resolve_path(args.base))
    ids = args.ids or list_adapters(lib)
    bad = 0
    for aid in ids:
        try:
            verify_adapter(lib / aid, base)
            print(f"ok    {aid}")
        except (AdapterLibraryError, OSError) as exc:
            bad += 1
            print(f"FAIL  {aid}: {exc}")
    print(f"{len(ids) - bad} of {len(ids)} adapter(s) verified against {args.base}")
    return 1 if bad else 0


def cmd_remove(args) -> int:
    try:
        remove_adapter(resolve_path(args.library), args.id)
    except (AdapterLibraryError, ValueError) as exc:
        print(f"s1s2 adapters remove: {exc}", file=sys.stderr)
        return 2
    print(f"removed {args.id!r}")
    return 0


def cmd_classify(args) -> int:
    import cv2

    try:
        model = LightingClassifier.load(resolve_path(args.classifier))
    except ClassifierFileError as exc:
        print(f"s1s2 adapters classify: {exc}", file=sys.stderr)
        return 2
    if not model.trained:
        print("WARNING: the lighting classifier is UNTRAINED", file=sys.stderr)
    extractor = FeatureExtractor(model.config.feature_params)
    code = 0
    for path in args.images:
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is None:
            print(f"{path}: cannot read image", file=sys.stderr)
            code = 1
            continue
        if not args.sequence:
            extractor.reset()  # each image alone: the flicker feature is 0
        feats = extractor(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        pred = model.predict(feats)
        probs = {c: round(float(p), 4) for c, p in zip(model.class_names, pred.probabilities, strict=True)}
        if args.json:
            out = {"image": path, "label": pred.label, "confidence": pred.confidence, "probabilities": probs,
                   "nearest": pred.nearest, "ood_distance": pred.ood_distance, "ood_threshold": model.ood_threshold}  # fmt: skip
            if args.features:
                out["features"] = features_dict(feats)
            print(json.dumps(out))
            continue
        ranked = sorted(probs.items(), key=lambda kv: -kv[1])
        far = f" [unknown lighting: distance {pred.ood_distance:.1f} > {model.ood_threshold:.1f}; nearest {pred.nearest}]"
        print(
            f"{path}: {pred.label} ({pred.confidence:.2f})  "
            + "  ".join(f"{c}={p:.2f}" for c, p in ranked)
            + ("" if pred.known else far)
        )
        if args.features:
            print("  " + "  ".join(f"{n}={v:.4g}" for n, v in zip(FEATURE_NAMES, feats, strict=True)))
    return code


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="s1s2 adapters", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p_list = sub.add_parser("list", help="adapters in the library")
    p_list.add_argument("--library", default=DEFAULT_LIBRARY)
    p_list.add_argument("--tag", action="append", default=[], help="only adapters with this context tag")
    p_list.add_argument("--json", action="store_true")
    p_list.set_defaults(func=cmd_list)
    p_add = sub.add_parser("add", help="register a peft adapter folder (hash, manifest, verify, atomic)")
    p_add.add_argument("src")
    p_add.add_argument("--id", default=None, help="adapter id (default: the folder name)")
    p_add.add_argument("--library", default=DEFAULT_LIBRARY)
    p_add.add_argument("--base", default=DEFAULT_BASE, help="base model folder it was trained on")
    p_add.add_argument("--tag", action="append", default=[], help="context tag, e.g. lighting:warm_tungsten")
    p_add.add_argument("--strategy", choices=STRATEGIES, default=None)
    p_add.add_argument("--replace", action="store_true", help="replace an adapter with the same id")
    p_add.set_defaults(func=cmd_add)
    p_ver = sub.add_parser("verify", help="check hashes, manifests and the base fingerprint")
    p_ver.add_argument("ids", nargs="*")
    p_ver.add_argument("--library", default=DEFAULT_LIBRARY)
    p_ver.add_argument("--base", default=DEFAULT_BASE)
    p_ver.set_defaults(func=cmd_verify)
    p_rm = sub.add_parser("remove", help="remove an adapter (atomic)")
    p_rm.add_argument("id")
    p_rm.add_argument("--library", default=DEFAULT_LIBRARY)
    p_rm.set_defaults(func=cmd_remove)
    p_cls = sub.add_parser("classify", help="lighting domain of images")
    p_cls.add_argument("images", nargs="+")
    p_cls.add_argument("--classifier", default=DEFAULT_CLASSIFIER)
    p_cls.add_argument(
        "--sequence", action="store_true", help="treat the images as consecutive frames (enables flicker)"
    )
    p_cls.add_argument("--features", action="store_true", help="also print the feature values")
    p_cls.add_argument("--json", action="store_true")
    p_cls.set_defaults(func=cmd_classify)
    sub.add_parser("bench", help="measure a library of hundreds of adapters (s1s2 adapters bench --help)")
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:
        from adapter_manager.library_bench import main as bench

        return bench(argv[1:])
    args = ap.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
