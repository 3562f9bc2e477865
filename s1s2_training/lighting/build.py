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
from s1s2_training.lighting.train import evaluate, fit

N_TRAIN_SEEDS = 12
N_TEST_SEEDS = 6
FRAMES_PER_EPISODE = 6  # 0.5 s apart
# Every frame is a sample, including the first ones whose flicker window is still short (frame 0:
# flicker = 0): the model then also works on a single image or right after the node starts.
WARMUP_FRAMES = 0
TEST_SEED_OFFSET = 100_000  # test seeds never overlap training seeds


def build(out_dir: Path, seed: int = 0) -> dict:
    from conveyor_sim.lighting import DOMAINS

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    domains = list(DOMAINS)
    train_seeds = [seed * 1000 + i for i in range(N_TRAIN_SEEDS)]
    test_seeds = [TEST_SEED_OFFSET + seed * 1000 + i for i in range(N_TEST_SEEDS)]
    kw = {"frames_per_episode": FRAMES_PER_EPISODE, "warmup_frames": WARMUP_FRAMES}
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
        x_te, y_te, m_te = sim_dataset(domains, test_seeds, desc="lighting test renders", **jit)
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
        x_te, y_te, m_te = synthetic_dataset(domains, test_seeds, **kw)
        data = "synthetic painted scenes developed with conveyor_sim.lighting.develop; seeds as for sim"
    t_data = time.monotonic() - t0

    config = LightingClassifierConfig(class_names=domains)
    model = fit(x_tr, y_tr, config)
    train_metrics = evaluate(model, x_tr, y_tr)
    test_metrics = evaluate(model, x_te, y_te)
    clean = np.array([m.get("variant", 0) == 0 for m in m_te])
    frame = np.array([m["frame"] for m in m_te])

    def acc(sel):
        return evaluate(model, x_te[sel], y_te[sel])["accuracy"] if sel.any() else None

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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="models/lighting")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    record = build(Path(args.out), args.seed)
    print(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
