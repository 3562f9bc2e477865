"""`build(out_dir, seed)`: train the lighting classifier on conveyor_sim renders and save
`classifier.json` plus `metrics.json` (held-out accuracy and confusion matrix).

Train and test episodes use disjoint sim seeds (different item layouts, spawn times and sensor
noise). If the MuJoCo sim cannot be imported, the classifier is trained on synthetic images
instead and the record says so (`data: synthetic ...`, notes) — never silently.

    python -m s1s2_training.lighting.build [--out models/lighting] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from adapter_manager.configuration_classifier import LightingClassifierConfig
from s1s2_training.lighting.data import sim_dataset, synthetic_dataset
from s1s2_training.lighting.ood import ood_domains
from s1s2_training.lighting.train import calibrate_ood, evaluate, fit, fit_ood

N_TRAIN_SEEDS = 12
N_VAL_SEEDS = 4  # held-out frames of the trained domains that set the "unknown" threshold
N_TEST_SEEDS = 6
N_OOD_SEEDS = 4
FRAMES_PER_EPISODE = 6  # 0.5 s apart
# Every frame is a sample, including the first ones whose flicker window is still short (frame 0:
# flicker = 0): the model then also works on a single image or right after the node starts.
WARMUP_FRAMES = 0
TEST_SEED_OFFSET = 100_000  # test seeds never overlap training seeds
VAL_SEED_OFFSET = 50_000
OOD_SEED_OFFSET = 200_000


def build(
    out_dir: Path, seed: int = 0, settle_s: tuple[float, float] = (1.0, 8.0), expert_every: int = 0
) -> dict:
    from conveyor_sim.lighting import DOMAINS

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    domains = list(DOMAINS)
    train_seeds = [seed * 1000 + i for i in range(N_TRAIN_SEEDS)]
    val_seeds = [VAL_SEED_OFFSET + seed * 1000 + i for i in range(N_VAL_SEEDS)]
    test_seeds = [TEST_SEED_OFFSET + seed * 1000 + i for i in range(N_TEST_SEEDS)]
    ood_seeds = [OOD_SEED_OFFSET + seed * 1000 + i for i in range(N_OOD_SEEDS)]
    kw = {"frames_per_episode": FRAMES_PER_EPISODE, "warmup_frames": WARMUP_FRAMES, "settle_s": tuple(settle_s),
          "expert_every": expert_every}  # fmt: skip
    t0 = time.monotonic()
    try:
        import mujoco  # noqa: F401  (only a missing MuJoCo justifies the synthetic fallback)

        no_mujoco = ""
    except ImportError as exc:
        no_mujoco = str(exc)
    if not no_mujoco:
        source, notes = "sim", ""
        jit = {"camera_jitter": 1, **kw}
        x_tr, y_tr, _ = sim_dataset(domains, train_seeds, desc="lighting train renders", **jit)
        x_va, _, _ = sim_dataset(domains, val_seeds, desc="lighting validation renders", **jit)
        x_te, y_te, m_te = sim_dataset(domains, test_seeds, desc="lighting test renders", **jit)
        ood = ood_domains()
        x_ood, y_ood, _ = sim_dataset(ood, ood_seeds, desc="unknown-lighting renders", **kw)
        data = (
            f"conveyor_sim renders (320x240) of {len(domains)} lighting domains; train seeds "
            f"{train_seeds[0]}..{train_seeds[-1]}, held-out test seeds {test_seeds[0]}..{test_seeds[-1]}; "
            f"{FRAMES_PER_EPISODE} frames per episode 0.5 s apart through one stateful feature "
            "extractor (frame 0 has no flicker information); every episode also seen through a second "
            "camera with jittered exposure (x0.75..1.3) and white balance (+-8 %)"
        )
    else:
        source = "synthetic"
        notes = f"TRAINED ON SYNTHETIC IMAGES, not sim renders (MuJoCo unavailable: {no_mujoco}). "
        x_tr, y_tr, _ = synthetic_dataset(domains, train_seeds, **kw)
        x_va, _, _ = synthetic_dataset(domains, val_seeds, **kw)
        x_te, y_te, m_te = synthetic_dataset(domains, test_seeds, **kw)
        ood, x_ood, y_ood = [], np.zeros((0, x_tr.shape[1])), np.zeros(0, np.int64)
        data = "synthetic painted scenes developed with conveyor_sim.lighting.develop; seeds as for sim"
    t_data = time.monotonic() - t0

    config = LightingClassifierConfig(class_names=domains)
    model = fit(x_tr, y_tr, config)
    fit_ood(model, x_tr, y_tr)
    calibrate_ood(model, x_va)
    train_metrics = evaluate(model, x_tr, y_tr)
    test_metrics = evaluate(model, x_te, y_te)
    ood_metrics = unknown_metrics(model, x_te, y_te, x_ood, y_ood, [d.name for d in ood])
    ood_metrics["predict_ms_per_frame"] = frame_latency_ms(model)
    clean = np.array([m.get("variant", 0) == 0 for m in m_te])
    frame = np.array([m["frame"] for m in m_te])

    def acc(sel):  # a known frame called "unknown" counts as wrong
        if not sel.any():
            return None
        return float(
            np.mean([model.predict(x).label == domains[y] for x, y in zip(x_te[sel], y_te[sel], strict=True)])
        )

    clean_acc, jitter_acc = acc(clean), acc(~clean)
    stream_acc, first_frame_acc = acc(frame >= 2), acc(frame == 0)
    model.info.update(
        {
            "data": data,
            "source": source,
            "seed": seed,
            "n_train": int(len(y_tr)),
            "n_test": int(len(y_te)),
            "train_accuracy": train_metrics["accuracy"],
            "test_accuracy": test_metrics["accuracy"],
            "test_accuracy_clean_camera": clean_acc,
            "test_accuracy_jittered_camera": jitter_acc,
            "test_accuracy_stream_frames": stream_acc,
            "test_accuracy_first_frame": first_frame_acc,
        }
    )
    model.save(out_dir / "classifier.json")
    metrics = {
        "test_accuracy": test_metrics["accuracy"],
        "test_accuracy_clean_camera": clean_acc,
        "test_accuracy_jittered_camera": jitter_acc,
        "test_accuracy_stream_frames": stream_acc,
        "test_accuracy_first_frame": first_frame_acc,
        "train_accuracy": train_metrics["accuracy"],
        "n_train": int(len(y_tr)),
        "n_test": int(len(y_te)),
        "test_per_class_recall": test_metrics["per_class_recall"],
        "unknown": ood_metrics,
        "test_confusion_matrix": test_metrics["confusion_matrix"],
        "confusion_labels": test_metrics["confusion_labels"],
        "data_seconds": round(t_data, 1),
    }
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    # Weight magnitude per feature: which statistics the model leans on (for the docs).
    importance = np.abs(model.weights).sum(axis=0)
    notes += (
        f"multinomial logistic regression on {len(config.feature_names)} standardised lighting features; "
        f"held-out accuracy {test_metrics['accuracy']:.3f} on {len(y_te)} frames; most used features: "
        + ", ".join(config.feature_names[i] for i in np.argsort(-importance)[:4])
    )
    try:
        from s1s2 import repo_root

        path = str(out_dir.resolve().relative_to(repo_root().resolve()))
    except ValueError:  # built outside the checkout
        path = str(out_dir)
    return {
        "name": "lighting_classifier",
        "path": path,
        "command": "s1s2 models lighting_classifier",
        "data": data,
        "seed": seed,
        "trained": True,
        "notes": notes,
        "metrics": metrics,
    }


def unknown_metrics(model, x_te, y_te, x_ood, y_ood, ood_names) -> dict:
    """Accuracy on held-out frames of the trained domains with "unknown" counted as wrong, the
    share of known frames called unknown, and the share of unknown-lighting frames called unknown
    (per spec and in all)."""
    known = [model.predict(x) for x in x_te]
    names = model.class_names
    out = {
        "threshold": model.ood_threshold,
        "known_accuracy_with_unknown_as_wrong": float(
            np.mean([p.label == names[y] for p, y in zip(known, y_te, strict=True)])
        ),
        "known_called_unknown": float(np.mean([not p.known for p in known])),
        "n_known": int(len(y_te)),
    }
    if len(y_ood):
        preds = [model.predict(x) for x in x_ood]
        per = {
            n: float(np.mean([not p.known for p, y in zip(preds, y_ood, strict=True) if y == i]))
            for i, n in enumerate(ood_names)
        }
        out |= {
            "unknown_called_unknown": float(np.mean([not p.known for p in preds])),
            "unknown_called_unknown_per_spec": per,
            "unknown_mean_confidence": float(np.mean([p.confidence for p in preds])),
            "n_unknown": int(len(y_ood)),
            "unknown_specs": "s1s2_training/lighting/ood.py OOD_SPECS",
        }
    return out


def frame_latency_ms(model, runs: int = 200) -> dict:
    """Feature extraction + prediction of one 320x240 frame (median and p99 over `runs`)."""
    from adapter_manager.features import FeatureExtractor

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (8, 240, 320, 3), dtype=np.uint8)
    ext = FeatureExtractor(model.config.feature_params)
    t = []
    for i in range(runs):
        t0 = time.perf_counter()
        model.predict(ext(frames[i % 8]))
        t.append((time.perf_counter() - t0) * 1e3)
    return {"p50": float(np.percentile(t, 50)), "p99": float(np.percentile(t, 99))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="models/lighting")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--settle-max-s", type=float, default=8.0, help="belt motion before an episode's first frame: 1..this"
    )
    ap.add_argument(
        "--expert-every", type=int, default=0, help="every k-th episode runs the scripted expert (0: none)"
    )
    args = ap.parse_args(argv)
    record = build(Path(args.out), args.seed, (1.0, args.settle_max_s), args.expert_every)
    print(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
