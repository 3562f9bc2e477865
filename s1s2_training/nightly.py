"""`s1s2 nightly`: one night of continual learning from the day's recorded failures.

    s1s2 nightly --failures runs/failures --context sodium_vapour [--library models/adapters]
                 [--classifier models/lighting/classifier.json] [--report runs/nightly]
                 [--labels runs/sheet/metadata.jsonl]
    s1s2 nightly sheet --failures runs/failures --out runs/sheet   # frames for a person to label

1. Data: every failure the `failure_recorder` node wrote to MCAP during the day (low-confidence
   plans, frames before wrong / missed / dropped sorts) that carries its frame's ground truth
   becomes a labelled frame: the item the scripted expert would pick, or a hold
   (`s1s2_training.vlm.data.labelled_row`). A real robot records no ground truth: there a person
   labels the frames in a sheet (`s1s2 nightly sheet`, `--labels`; s1s2_training.label_sheet).
   Records are split by time: the first (1 - holdout) for training, the last `holdout` held out.
2. Train: a QLoRA adapter on the NF4 base (`s1s2_training.vlm.finetune.train_adapter`: HF Trainer,
   peft LoRA) with data mixing: a share `mix` of every batch is general daylight frames.
3. Evaluate: base vs adapter on the held-out frames of the context and on the general daylight
   test set (the forgetting check), `item_acc` = right class and pick point within 5 cm.
4. Gate: register only if the context gains >= `min_gain_pts` points and daylight loses
   <= `max_general_drop_pts` points. Registration is the library's atomic `add_adapter`, with the
   context tag `lighting:<context>`; the lighting classifier is refitted with the new context as a
   class (its frames' features as the adapter manager computed them during the day), so the next
   day the manager recognises the lighting and selects the adapter named after it.
5. Report: `<report>/report.md`, `report.png` and `result.json`, whatever the gate decided.

The base model's weights are never changed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from s1s2.params import check_fields, param


@dataclass
class NightlyConfig:
    context: str = param("", "name of the new context: the adapter id and the classifier's new class")
    holdout: float = param(
        0.3, "share of the day's failures (the latest) held out for the gate", min=0.05, max=0.9
    )
    min_gain_pts: float = param(10.0, "register only if the context's item accuracy gains this many points", min=0.0, max=100.0)  # fmt: skip
    max_general_drop_pts: float = param(2.0, "... and daylight item accuracy drops at most this many points", min=0.0, max=100.0)  # fmt: skip
    strategy: str = param("projector+vision", "LoRA targets (s1s2 planner finetune --strategy)")
    rank: int = param(8, "LoRA rank", min=1, max=256)
    alpha: int = param(16, "LoRA alpha", min=1, max=1024)
    mix: float = param(0.5, "lambda: share of general daylight frames in every batch", min=0.0, max=0.95)
    steps: int = param(600, "optimiser steps", min=1, max=100000)
    lr: float = param(
        5e-4,
        "peak learning rate (2e-3, the finetune default, forgot 6.5 daylight points here)",
        min=1e-6,
        max=1.0,
    )
    seed: int = param(0, "training seed", min=0, max=2**31 - 1)
    belt_speed: float = param(-1.0, "belt speed during the day, m/s (labels); negative = the cell's nominal", min=-1.0, max=1.0)  # fmt: skip
    daylight_episodes: int = param(16, "general daylight training episodes (mixing)", min=1, max=1000)
    max_confident_wrong: float = param(
        0.02, "the adapter's own min_confidence: the lowest threshold at which at most this share of the "
        "held-out frames carry a wrong pick above it", min=0.0, max=1.0,
    )  # fmt: skip

    def __post_init__(self):
        from s1s2.adapters import valid_adapter_id

        check_fields(self)
        if not valid_adapter_id(self.context):
            raise ValueError(f"context {self.context!r} is not a valid adapter id (letters, digits, _ . -)")


@dataclass
class Day:
    records: int = 0
    labelled: int = 0
    kinds: dict = field(default_factory=dict)
    labels: str = "ground truth"  # where the labels came from: "ground truth" or a label sheet


def failure_files(paths) -> list[Path]:
    """The failure MCAP files of `paths` (files, or folders of *.mcap); an error names what is missing."""
    files = [Path(p) for p in paths]
    missing = [str(p) for p in files if not p.exists()]
    if missing:
        raise FileNotFoundError(
            f"failure recording(s) {missing} do not exist (failure_recorder's output_dir?)"
        )
    files = [f for p in files for f in (sorted(p.glob("*.mcap")) if p.is_dir() else [p])]
    if not files:
        raise FileNotFoundError(f"no failure recordings (*.mcap) in {[str(p) for p in paths]}")
    return files


def truth_row(image, truth, cam, belt_speed: float, image_size: int) -> dict:
    """A failure frame labelled from its recorded ground truth (GroundTruth message) by the sim
    data's rule (`vlm.data.labelled_row`); belt_speed < 0: the cell's nominal speed."""
    from conveyor_sim.items import items_from_msg
    from s1s2.cell import DEFAULT_CELL

    from .vlm import data as dm

    speed = belt_speed if belt_speed >= 0 else DEFAULT_CELL.belt.speed
    return dm.labelled_row(image, items_from_msg(truth, speed), cam, DEFAULT_CELL.arm, image_size)


def load_day(paths, cfg: NightlyConfig, image_size: int, labels=None) -> tuple[dict, dict, np.ndarray, np.ndarray, Day]:  # fmt: skip
    """(train frames, held-out frames, train features, held-out features, Day) from failure MCAPs.
    Features are the adapter manager's lighting features recorded with each failure (None rows
    are skipped). labels: a filled-in label sheet (s1s2_training.label_sheet), for recordings
    without ground truth (a real robot); its labelled lines replace the ground truth."""
    from adapter_manager.failure_node import read_failures

    from .vlm import data as dm
    from .vlm.evaluate import camera

    files = failure_files(paths)
    recs = read_failures(files)
    day = Day(records=len(recs), kinds=failure_kinds(recs))
    sheet = None
    if labels is not None:
        from .label_sheet import image_size_of, read_labels, stamp_key
        from .vlm.pretrain import HEIGHT, WIDTH

        w, h = image_size_of(recs)
        if (w, h) != (WIDTH, HEIGHT):  # the planner's pick pixels are of this camera frame
            raise ValueError(f"failure frames are {w}x{h}; the sim VLM's camera frame is {WIDTH}x{HEIGHT}")
        sheet = read_labels(labels, w, h)
        day.labels = str(labels)
        have = {stamp_key(r.get("stamp", 0.0)) for r in recs}
        stray = sorted(set(sheet) - have)
        if stray:
            raise ValueError(
                f"{labels}: {len(stray)} labelled stamp(s) match no failure record, e.g. {stray[0]}"
            )
        seen: set = set()
        keep = []
        for r in recs:  # a frame recorded twice (two failure kinds) is one labelled row
            key = stamp_key(r.get("stamp", 0.0))
            if r.get("image") is not None and key in sheet and key not in seen:
                seen.add(key)
                keep.append(r)
        recs = keep
    else:
        recs = [r for r in recs if r.get("image") is not None and r.get("truth") is not None]
    recs.sort(key=lambda r: float(r.get("stamp", 0.0)))
    day.labelled = len(recs)
    if len(recs) < 10:
        raise ValueError(f"only {len(recs)} labelled failures in {len(files)} file(s): too few to learn from")
    cam = camera()
    rows, feats = [], []
    for r in recs:
        if sheet is not None:
            label, uv = sheet[stamp_key(r.get("stamp", 0.0))]
            rows.append(dm.operator_row(r["image"], label, uv, cam, image_size))
        else:
            rows.append(truth_row(r["image"], r["truth"], cam, cfg.belt_speed, image_size))
        ctx = r.get("context")
        feats.append(_features(ctx) if ctx is not None else None)
    cut = int(round(len(rows) * (1.0 - cfg.holdout)))
    spec = SimpleNamespace(mode="recorded_failures", lighting=cfg.context)  # what dm.stack records
    train, test = dm.stack(rows[:cut], spec), dm.stack(rows[cut:], spec)
    ftr = np.array([f for f in feats[:cut] if f is not None])
    fte = np.array([f for f in feats[cut:] if f is not None])
    return train, test, ftr, fte, day


def failure_kinds(records) -> dict[str, int]:
    """How many records of each kind (low_confidence_plan, wrong_bin, missed, dropped)."""
    return dict(Counter(r.get("kind", "?") for r in records))


def _features(ctx) -> np.ndarray:
    from adapter_manager.features import FEATURE_NAMES

    got = dict(zip(ctx.feature_names, ctx.features, strict=False))
    return np.array([float(got.get(n, np.nan)) for n in FEATURE_NAMES])


def refit_classifier(
    path: Path, context: str, f_train: np.ndarray, f_val: np.ndarray, out: Path, seed: int = 0
) -> dict:
    """The lighting classifier refitted with `context` as one more class: the known domains' sim
    features are rendered again with the seeds `s1s2 models lighting_classifier` used, the new
    class comes from the day's recorded features. Returns its metrics."""
    from adapter_manager.classifier import LightingClassifier
    from adapter_manager.configuration_classifier import LightingClassifierConfig

    from .lighting import build as lb
    from .lighting.data import sim_dataset
    from .lighting.train import calibrate_ood, evaluate, fit, fit_ood

    old = LightingClassifier.load(path)
    domains = [c for c in old.class_names if c != context]
    kw = {"frames_per_episode": lb.FRAMES_PER_EPISODE, "warmup_frames": lb.WARMUP_FRAMES, "camera_jitter": 1}
    tr = [seed * 1000 + i for i in range(lb.N_TRAIN_SEEDS)]
    va = [lb.VAL_SEED_OFFSET + seed * 1000 + i for i in range(lb.N_VAL_SEEDS)]
    x_tr, y_tr, _ = sim_dataset(domains, tr, desc="known lighting (train)", **kw)
    x_va, y_va, _ = sim_dataset(domains, va, desc="known lighting (validation)", **kw)
    k = len(domains)
    x_tr = np.concatenate([x_tr, f_train])
    y_tr = np.concatenate([y_tr, np.full(len(f_train), k)])
    x_va2 = np.concatenate([x_va, f_val])
    y_va2 = np.concatenate([y_va, np.full(len(f_val), k)])
    cfg = LightingClassifierConfig(**{**old.config.to_dict(), "class_names": [*domains, context]})
    model = fit(x_tr, y_tr, cfg)
    fit_ood(model, x_tr, y_tr)
    calibrate_ood(model, x_va2)
    val = evaluate(model, x_va2, y_va2)
    new_pred = [model.predict(x).label for x in f_val]
    metrics = {
        "classes": model.class_names,
        "validation_accuracy": val["accuracy"],
        "new_context_recall_heldout": float(np.mean([p == context for p in new_pred]))
        if len(new_pred)
        else None,
        "known_validation_accuracy": float(
            np.mean([model.predict(x).label == domains[y] for x, y in zip(x_va, y_va, strict=True)])
        ),
        "new_context_frames": {"train": int(len(f_train)), "heldout": int(len(f_val))},
    }
    model.trained = True
    model.info = {**old.info, "nightly": {"context": context, **metrics}}
    model.save(out)
    return metrics


def run(cfg: NightlyConfig, failures, base_dir="models/sim_vlm", library="models/adapters",
        classifier="models/lighting/classifier.json", classifier_out: str = "", report_dir="runs/nightly",
        work_dir="runs/vlm_data", dry_run: bool = False, labels=None) -> dict:  # fmt: skip
    """The whole night (module docstring). Returns the result (also written to report_dir).
    labels: a filled-in label sheet instead of the recorded ground truth (`s1s2 nightly sheet`)."""
    from s1s2 import resolve_path
    from s1s2.adapters import add_adapter

    from .vlm import data as dm
    from .vlm.calibrate import adapter_calibration
    from .vlm.finetune import FinetuneConfig, manifest_fields, measure, train_adapter

    t0 = time.time()
    base_dir, report_dir = resolve_path(str(base_dir)), resolve_path(str(report_dir))
    report_dir.mkdir(parents=True, exist_ok=True)
    card = json.loads((base_dir / "s1s2_vlm.json").read_text())
    size = int(card.get("image_size", 128))
    print(f"[nightly] 1/5 the day's failures -> labelled frames ({cfg.context})", flush=True)
    labels = resolve_path(str(labels)) if labels else None
    train, test, ftr, fte, day = load_day([resolve_path(str(p)) for p in failures], cfg, size, labels)
    wd = resolve_path(str(work_dir))
    daylight = dm.frames_of(dm.domain_train_specs("daylight", cfg.daylight_episodes), size, wd, 1)
    day_test = dm.frames_of(dm.domain_test_specs("daylight", 14, 8), size, wd, 1)
    t_data = time.time() - t0
    fcfg = FinetuneConfig(strategy=cfg.strategy, rank=cfg.rank, alpha=cfg.alpha, mix=cfg.mix, steps=cfg.steps,
                          lr=cfg.lr, seed=cfg.seed)  # fmt: skip
    result: dict = {
        "context": cfg.context,
        "config": asdict(cfg),
        "failures": [str(p) for p in failures],
        "day": asdict(day),
        "frames": {
            "train": dm.summary(train),
            "heldout": dm.summary(test),
            "daylight_mix": int(len(daylight["label"])),
            "daylight_test": int(len(day_test["label"])),
        },  # fmt: skip
    }
    with tempfile.TemporaryDirectory() as tmp:
        adir = Path(tmp) / cfg.context
        print(
            f"[nightly] 2/5 QLoRA adapter on {len(train['label'])} frames (lambda {cfg.mix} daylight)",
            flush=True,
        )
        info = train_adapter(fcfg, base_dir, train, daylight if cfg.mix > 0 else None, adir)
        print(
            f"[nightly] 3/5 evaluate on {len(test['label'])} held-out frames + {len(day_test['label'])} daylight",
            flush=True,
        )
        scored: dict = {}
        m = measure(base_dir, adir, test, day_test, results=scored)
        own, m["min_confidence"], m["confidence_threshold"] = adapter_calibration(
            base_dir, adir, test, cfg.max_confident_wrong, evaluated=scored["domain"]
        )
        if own is not None:
            m["confidence_calibration"] = own
        m["confidence_threshold"]["data"] = "the held-out failures (the latest share of the day)"
        gain = 100 * (m["adapter_domain"]["item_acc"] - m["base_domain"]["item_acc"])
        drop = 100 * (m["base_daylight"]["item_acc"] - m["adapter_daylight"]["item_acc"])
        ok_gain, ok_drop = gain >= cfg.min_gain_pts, drop <= cfg.max_general_drop_pts
        gate = {
            "context_gain_pts": round(gain, 1),
            "general_drop_pts": round(drop, 1),
            "min_gain_pts": cfg.min_gain_pts,
            "max_general_drop_pts": cfg.max_general_drop_pts,
            "passed": bool(ok_gain and ok_drop),
            "why": ("passed" if ok_gain and ok_drop else "; ".join(
                [f"context gain {gain:.1f} < {cfg.min_gain_pts:g} points"] * (not ok_gain)
                + [f"daylight drop {drop:.1f} > {cfg.max_general_drop_pts:g} points"] * (not ok_drop))),
        }  # fmt: skip
        result.update(metrics=m, gate=gate, train={k: info[k] for k in ("train_s", "train_loss", "loss_first_last",
                      "trainable_parameters", "adapter_bytes", "optimizer")})  # fmt: skip
        print(f"[nightly] 4/5 gate: {gate['why']}", flush=True)
        register = gate["passed"] and not dry_run
        result["registered"] = False
        if register:
            fields = manifest_fields(
                fcfg,
                base_dir,
                info,
                cfg.context,
                base_model=str(base_dir.name),
                data={
                    "source": "s1s2 nightly: the day's recorded failures",
                    "failures": result["day"],
                    "train_frames": int(len(train["label"])),
                    "heldout_frames": int(len(test["label"])),
                    "mix_lambda": cfg.mix,
                    "daylight_frames": int(len(daylight["label"])),
                },  # fmt: skip
                metrics={**m, "gate": gate, **result["train"]},
                notes=f"trained by `s1s2 nightly --context {cfg.context}` on the day's failures; config {json.dumps(asdict(cfg))}",
            )
            lib = resolve_path(str(library))
            add_adapter(
                lib,
                adir,
                adapter_id=cfg.context,
                expected_base=fields["base_fingerprint"],
                replace=True,
                **fields,
            )
            result["registered"] = True
            result["adapter"] = str(lib / cfg.context)
    if register:
        print("[nightly] 5/5 lighting classifier: the new context as a class", flush=True)
        out = resolve_path(classifier_out or classifier)
        result["classifier"] = {
            "path": str(out),
            **refit_classifier(resolve_path(str(classifier)), cfg.context, ftr, fte, out),
        }
    result["seconds"] = round(time.time() - t0, 1)
    result["data_seconds"] = round(t_data, 1)
    write_report(result, report_dir)
    print(f"[nightly] report: {report_dir / 'report.md'}", flush=True)
    return result


def write_report(r: dict, out: Path) -> None:
    from s1s2.bench import save_plot

    (out / "result.json").write_text(json.dumps(r, indent=1, default=str) + "\n")
    g, m = r.get("gate", {}), r.get("metrics", {})

    def draw(plt):
        fig, ax = plt.subplots(figsize=(6, 3.2))
        names = ["context (held-out failures)", "daylight (general)"]
        base = [100 * m["base_domain"]["item_acc"], 100 * m["base_daylight"]["item_acc"]]
        ada = [100 * m["adapter_domain"]["item_acc"], 100 * m["adapter_daylight"]["item_acc"]]
        x = np.arange(2)
        ax.bar(x - 0.18, base, 0.36, label="base model")
        ax.bar(x + 0.18, ada, 0.36, label=f"+ adapter '{r['context']}'")
        ax.set_xticks(x, names)
        ax.set_ylabel("item accuracy, %")
        ax.set_ylim(0, 100)
        ax.set_title(
            f"nightly gate: {'REGISTERED' if r.get('registered') else 'REJECTED'} ({g.get('why', '')})",
            fontsize=9,
        )
        ax.legend(fontsize=8)
        return fig

    save_plot(out / "report.png", draw)
    d = r["day"]
    lines = [
        f"# Nightly report: context `{r['context']}`",
        "",
        f"- Day: {d['records']} failure records ({', '.join(f'{k} {v}' for k, v in d['kinds'].items())}), "
        f"{d['labelled']} labelled ({d.get('labels', 'ground truth')}); first {1 - r['config']['holdout']:.0%} for training "
        f"({r['frames']['train']['frames']} frames, {r['frames']['train']['targets']} with a target), "
        f"last {r['config']['holdout']:.0%} held out ({r['frames']['heldout']['frames']} frames).",
        f"- Training: QLoRA {r['config']['strategy']} r={r['config']['rank']} alpha={r['config']['alpha']}, "
        f"{r['config']['steps']} steps, lambda = {r['config']['mix']} daylight frames in every batch "
        f"({r['frames']['daylight_mix']} daylight frames); {r['train']['train_s']:.0f} s, "
        f"{r['train']['trainable_parameters']} trainable parameters, {r['train']['optimizer']}.",
        "",
        "| held-out set | base | + adapter |",
        "|---|---|---|",
    ]
    for key, name in (("domain", "context (held-out failures)"), ("daylight", "daylight (general)")):
        b, a = m[f"base_{key}"], m[f"adapter_{key}"]
        lines.append(
            f"| {name} | item {100 * b['item_acc']:.1f} % / class {100 * b['class_acc']:.1f} % | "
            f"item {100 * a['item_acc']:.1f} % / class {100 * a['class_acc']:.1f} % |"
        )
    lines += [
        "",
        f"Gate: context gain {g['context_gain_pts']} points (need >= {g['min_gain_pts']}), daylight drop "
        f"{g['general_drop_pts']} points (allowed <= {g['max_general_drop_pts']}): **{g['why']}**.",
        "",
        f"The adapter's own min_confidence: {m['min_confidence']} (at most {m['confidence_threshold']['max_rate']:.0%} "
        f"of the held-out frames carry a wrong pick above it; it acts on {m['confidence_threshold']['acted_picks']} "
        f"of {m['confidence_threshold']['frames']} held-out frames, {m['confidence_threshold']['acted_right']} of them right). "
        "The planner uses it while this adapter is active (the model card's threshold was fitted on the base in daylight).",
        "",
        f"Registered: {'yes, ' + r.get('adapter', '') if r.get('registered') else 'no (the library is unchanged)'}.",
    ]
    if "classifier" in r:
        c = r["classifier"]
        lines.append(
            f"Lighting classifier refitted with `{r['context']}` as a class ({c['path']}): held-out recall of "
            f"the new context {c['new_context_recall_heldout']}, known-domain validation accuracy "
            f"{c['known_validation_accuracy']:.3f}."
        )
    lines += ["", "Held-out frames are the day's latest failures: frames the base model got wrong or was unsure "
              "about, so the base's accuracy on them is low by selection.", "", "![gate](report.png)", ""]  # fmt: skip
    (out / "report.md").write_text("\n".join(lines))


def add_arguments(p: argparse.ArgumentParser) -> None:
    from s1s2.params import param_specs

    p.add_argument(
        "--failures", nargs="+", required=True, help="failure MCAP files or folders (failure_recorder)"
    )
    for spec in param_specs(NightlyConfig, ros_only=False):
        kind = type(spec.default)
        p.add_argument("--" + spec.name.replace("_", "-"), type=kind, default=spec.default,
                       required=spec.name == "context", help=f"{spec.description} (default {spec.default!r})")  # fmt: skip
    p.add_argument("--base", default="models/sim_vlm")
    p.add_argument("--library", default="models/adapters")
    p.add_argument("--classifier", default="models/lighting/classifier.json")
    p.add_argument("--classifier-out", default="", help="default: update --classifier in place (atomic)")
    p.add_argument("--report", default="runs/nightly")
    p.add_argument("--work-dir", default="runs/vlm_data", help="daylight frame cache")
    p.add_argument("--dry-run", action="store_true", help="train, evaluate and gate, but register nothing")
    p.add_argument("--labels", default="", help="a filled-in label sheet (s1s2 nightly sheet) instead of the "
                   "recorded ground truth: how a real robot's failures are labelled")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """`s1s2 nightly ...`, `s1s2 nightly cycle ...` (s1s2_training.nightly_cycle) or
    `s1s2 nightly sheet ...` (s1s2_training.label_sheet)."""
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["cycle"]:
        from .nightly_cycle import main as cycle_main

        return cycle_main(argv[1:])
    if argv[:1] == ["sheet"]:
        from .label_sheet import main as sheet_main

        return sheet_main(argv[1:])
    from s1s2.params import ConfigError, param_specs

    ap = argparse.ArgumentParser(prog="s1s2 nightly", description=__doc__.split("\n\n")[0])
    add_arguments(ap)
    a = ap.parse_args(argv)
    try:
        cfg = NightlyConfig(
            **{s.name: getattr(a, s.name) for s in param_specs(NightlyConfig, ros_only=False)}
        )
        r = run(
            cfg,
            a.failures,
            a.base,
            a.library,
            a.classifier,
            a.classifier_out,
            a.report,
            a.work_dir,
            a.dry_run,
            a.labels or None,
        )
    except (ConfigError, ValueError, FileNotFoundError) as exc:
        print(f"s1s2 nightly: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"registered": r["registered"], "gate": r["gate"]}, indent=1))
    return 0
