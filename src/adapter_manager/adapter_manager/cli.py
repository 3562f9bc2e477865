"""`s1s2 adapters ...`: inspect the LoRA adapter library and the lighting classifier.

s1s2 adapters list [--library DIR]                  adapters, sizes, base model, trained?
s1s2 adapters classify IMAGE... [--sequence]        lighting label + probabilities per image
"""

from __future__ import annotations

import argparse
import json
import sys

from adapter_manager.classifier import ClassifierFileError, LightingClassifier
from adapter_manager.features import FEATURE_NAMES, FeatureExtractor, features_dict
from s1s2 import resolve_path
from s1s2.adapters import scan_library

DEFAULT_LIBRARY = "models/adapters"
DEFAULT_CLASSIFIER = "models/lighting/classifier.json"


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def cmd_list(args) -> int:
    lib = resolve_path(args.library)
    adapters = scan_library(lib)
    if args.json:
        rows = [
            {
                "adapter_id": a.adapter_id,
                "path": str(a.path),
                "size_bytes": a.size_bytes,
                "base_model": a.base_model,
                "peft_type": a.peft_type,
                "rank": a.rank,
                "trained": a.trained,
                "error": a.error,
            }
            for a in adapters
        ]
        print(json.dumps(rows, indent=1))
        return 0
    if not adapters:
        print(f"no adapters in {lib} (a folder with adapter_config.json per adapter)")
        return 0
    print(f"adapter library {lib}: {len(adapters)} adapter(s)")
    print(f"{'adapter':28s} {'size':>9s} {'type':5s} {'r':>3s} {'trained':8s} base model")
    for a in adapters:
        trained = {True: "yes", False: "no", None: "unknown"}[a.trained]
        rank = str(a.rank) if a.rank is not None else "-"
        line = (
            f"{a.adapter_id:28s} {_size(a.size_bytes):>9s} {a.peft_type or '-':5s} {rank:>3s} {trained:8s} "
        )
        print(line + (a.base_model or "-") + (f"  [ERROR: {a.error}]" if a.error else ""))
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
            out = {"image": path, "label": pred.label, "confidence": pred.confidence, "probabilities": probs}
            if args.features:
                out["features"] = features_dict(feats)
            print(json.dumps(out))
            continue
        ranked = sorted(probs.items(), key=lambda kv: -kv[1])
        print(
            f"{path}: {pred.label} ({pred.confidence:.2f})  " + "  ".join(f"{c}={p:.2f}" for c, p in ranked)
        )
        if args.features:
            print("  " + "  ".join(f"{n}={v:.4g}" for n, v in zip(FEATURE_NAMES, feats, strict=True)))
    return code


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="s1s2 adapters", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p_list = sub.add_parser("list", help="adapters in the library")
    p_list.add_argument("--library", default=DEFAULT_LIBRARY)
    p_list.add_argument("--json", action="store_true")
    p_list.set_defaults(func=cmd_list)
    p_cls = sub.add_parser("classify", help="lighting domain of images")
    p_cls.add_argument("images", nargs="+")
    p_cls.add_argument("--classifier", default=DEFAULT_CLASSIFIER)
    p_cls.add_argument(
        "--sequence", action="store_true", help="treat the images as consecutive frames (enables flicker)"
    )
    p_cls.add_argument("--features", action="store_true", help="also print the feature values")
    p_cls.add_argument("--json", action="store_true")
    p_cls.set_defaults(func=cmd_classify)
    args = ap.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
