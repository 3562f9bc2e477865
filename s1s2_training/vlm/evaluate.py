"""Evaluate a sim VLM on held-out labelled frames.

    python -m s1s2_training.vlm.evaluate MODEL_DIR SET.npz [...] [--planner] [--adapter DIR]

Two paths, same prompt, same parser, same geometry:

* fast (default): batched greedy generate in this process, the model loaded 4-bit NF4 + double
  quantisation exactly as the planner loads it (or unquantised with --quant none), optionally
  with a peft adapter; confidence by the model card's calibration from the same token scores.
* --planner: every full camera frame through vlm_planner.planner.Planner.plan (the node's code
  path: generic loader, one CPU thread, prompt, greedy generate, parse, calibrated confidence,
  min_confidence, pixel -> belt plane); also measures plan latency. Needs sets with "image".

Metrics (frames whose label is a target / a hold):
  class_acc      predicted class == the class of the item select_target chooses (parse failures
                 and holds count as wrong)
  item_acc       class right AND the pick point within 5 cm of the right item's (belt plane)
  pick_err_cm    belt-plane distance between the deprojected answer pixel and the true pick
                 point, over target frames with the right class: median, p90, mean
  hold_acc       the planner holds (label=none or nothing valid) when nothing should be picked
  parse_fail     answers that parse to neither a target nor label=none
  confident_wrong_pick  frames where a pick above min_confidence is a wrong class or > 5 cm off
                 (and picks on hold frames), over all frames; also per acted-on pick
  *_visible / *_occluded  (--visibility) the same over target frames where the arm leaves >= 50 %
                 / < 50 % of the target's pixels in view (the item it is about to pick is under it)
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from .data import BELT_Z, CLASSES, load

WIDTH, HEIGHT = 320, 240
INSTRUCTION = "sort the recyclables"
RIGHT_CM = 5.0
VISIBLE = 0.5  # a target with less than this share of its pixels in view is "occluded" (by the arm)


def camera():
    """The sim's overhead camera (conveyor_sim CameraInfo: project / pixel_to_plane)."""
    from conveyor_sim.cell import CellSim, SimConfig

    sim = CellSim(SimConfig(seed=0, render_enabled=False))
    try:
        return sim.camera_info()
    finally:
        sim.close()


def score(pred_label, pred_uv, conf, data, cam, min_confidence: float = 0.0) -> dict:
    """pred_label: class index / -1 hold / -2 parse failure per frame; pred_uv (N, 2); conf (N,)."""
    lab = data["label"]
    pred_label = np.asarray(pred_label)
    conf = np.asarray(conf, dtype=np.float64)
    tgt = lab >= 0
    err = np.full(len(lab), np.nan)
    for i in np.nonzero(tgt & (pred_label >= 0))[0]:
        p = cam.pixel_to_plane(float(pred_uv[i][0]), float(pred_uv[i][1]), BELT_Z)
        err[i] = 100.0 * math.hypot(p[0] - data["pick"][i][0], p[1] - data["pick"][i][1])
    right = tgt & (pred_label == lab)
    good = right & (np.nan_to_num(err, nan=1e9) <= RIGHT_CM)
    e = err[right]
    picked = pred_label >= 0
    acted = picked & (conf >= min_confidence)
    wrong_acted = acted & ~good
    out = {
        "frames": int(len(lab)),
        "target_frames": int(tgt.sum()),
        "hold_frames": int((~tgt).sum()),
        "class_acc": float(right.sum() / max(1, tgt.sum())),
        "item_acc": float(good.sum() / max(1, tgt.sum())),
        "pick_err_median_cm": float(np.median(e)) if len(e) else float("nan"),
        "pick_err_p90_cm": float(np.percentile(e, 90)) if len(e) else float("nan"),
        "pick_err_mean_cm": float(np.mean(e)) if len(e) else float("nan"),
        # the planner holds on label=none AND on unparseable text; hold_said_none: the model said none
        "hold_acc": float((pred_label[~tgt] < 0).sum() / max(1, (~tgt).sum()))
        if (~tgt).any()
        else float("nan"),
        "hold_said_none": float((pred_label[~tgt] == -1).sum() / max(1, (~tgt).sum()))
        if (~tgt).any()
        else float("nan"),
        "parse_fail": float((pred_label == -2).mean()),
        "false_hold_on_target": float((pred_label[tgt] == -1).sum() / max(1, tgt.sum())),
        "min_confidence": float(min_confidence),
        "acted_picks": int(acted.sum()),
        "confident_wrong_pick_rate": float(wrong_acted.sum() / max(1, len(lab))),
        "confident_wrong_per_pick": float(wrong_acted.sum() / max(1, acted.sum())),
        "item_acc_acted": float((acted & good).sum() / max(1, tgt.sum())),
    }
    if "target_visible" in data:  # FrameSpec(visibility=True): how much of the target the arm hides
        vis = np.nan_to_num(np.asarray(data["target_visible"], np.float64), nan=0.0)
        for name, sel in (("visible", tgt & (vis >= VISIBLE)), ("occluded", tgt & (vis < VISIBLE))):
            out[f"target_frames_{name}"] = int(sel.sum())
            out[f"class_acc_{name}"] = float((right & sel).sum() / max(1, sel.sum()))
            out[f"item_acc_{name}"] = float((good & sel).sum() / max(1, sel.sum()))
            out[f"false_hold_{name}"] = float(((pred_label == -1) & sel).sum() / max(1, sel.sum()))
            ev = err[right & sel]
            out[f"pick_err_median_cm_{name}"] = float(np.median(ev)) if len(ev) else float("nan")
            out[f"pick_err_p90_cm_{name}"] = float(np.percentile(ev, 90)) if len(ev) else float("nan")
    multi = tgt & (data["n_candidates"] >= 2)
    if multi.any():
        out["class_acc_2plus_candidates"] = float((right & multi).sum() / multi.sum())
        out["frames_2plus_candidates"] = int(multi.sum())
    out["_err"] = err
    out["_right"] = right
    out["_good"] = good
    out["_conf"] = conf
    out["_picked"] = picked
    return out


def parse_all(texts, classes=CLASSES, numbers=None):
    """(labels: class index, -1 hold, -2 unparseable; pick pixels) of answers; `numbers`: each
    answer's sub-token (u, v) or None, as the planner reads them (generate_batched's)."""
    from vlm_planner.parse import parse_answer

    labels, uvs = [], []
    for i, t in enumerate(texts):
        p = parse_answer(t, list(classes), WIDTH, HEIGHT, numbers=None if numbers is None else numbers[i])
        if p.ok:
            labels.append(classes.index(p.label))
            uvs.append((p.u, p.v))
        else:
            labels.append(-1 if p.hold else -2)
            uvs.append((np.nan, np.nan))
    return labels, np.array(uvs, dtype=np.float64).reshape(-1, 2)


def load_model(model_dir, quant: str = "nf4", adapter_dir=None):
    """(model, processor) as the planner loads them (generic Auto classes; NF4 + double quant)."""
    import torch
    from transformers import AutoModelForImageTextToText

    from vlm_planner.model import load_processor

    kw = {"local_files_only": True}
    if quant == "nf4":
        from vlm_planner.model import nf4_config

        kw.update(quantization_config=nf4_config(torch.float32), device_map={"": "cpu"}, dtype=torch.float32)
    model = AutoModelForImageTextToText.from_pretrained(str(model_dir), **kw).eval()
    if quant == "nf4":
        from vlm_planner.model import pin_4bit_reference_kernel

        pin_4bit_reference_kernel(model)
    if adapter_dir:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False).eval()
    proc = load_processor(str(model_dir))
    return model, proc


def generate_batched(model, prompt, pixels, batch: int = 64, max_new_tokens: int = 8, progress: bool = False):
    """Greedy answers of uint8 resized frames (N, S, S, 3) with the planner's prompt ids: (texts,
    raw confidences, pooled prompt states, confidence features (N, 4), sub-token (u, v) or None per
    answer). Calibrated confidences come from the features (_gated), so one generation serves
    every gate."""
    import torch
    from tqdm import tqdm

    from vlm_planner import confidence as conf_mod

    texts, raw, pooled, feats, numbers = [], [], [], [], []
    number_ids = np.asarray(prompt.number_ids)
    for s in tqdm(range(0, len(pixels), batch), desc="evaluate", disable=not progress, leave=False):
        pix = prompt.pixel_values(pixels[s : s + batch])
        n = pix.shape[0]
        ids = prompt.ids[None].expand(n, -1)
        with torch.inference_mode():
            out = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                pixel_values=pix,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                output_scores=True,
                output_hidden_states=True,
                return_dict_in_generate=True,
                pad_token_id=prompt.pad,
            )
        new = out.sequences[:, ids.shape[1] :]
        logp = torch.stack([torch.log_softmax(sc.float(), -1) for sc in out.scores], 1).numpy()  # (n, T, V)
        pooled.append(out.hidden_states[0][-1].float().mean(1).numpy())
        for k in range(n):
            toks = new[k].tolist()
            lps = []
            for j, t in enumerate(toks):
                lps.append(float(logp[k, j, t]))
                if t == prompt.eos:
                    break
            r = conf_mod.raw_confidence(lps)
            raw.append(r)
            win = conf_mod.number_windows(toks, logp[k], number_ids, prompt.eos)
            f = conf_mod.features(toks, logp[k], number_ids, prompt.eos, windows=win)
            feats.append(f)
            numbers.append(conf_mod.refined_numbers(toks, logp[k], number_ids, prompt.eos, windows=win))
            texts.append(prompt.decode(toks))
    pooled = np.concatenate(pooled) if pooled else np.zeros((0, 1))
    return texts, np.array(raw), pooled, np.array(feats).reshape(-1, 4), numbers


def evaluate(model_dir, data: dict, quant: str = "nf4", adapter_dir=None, batch: int = 64,
             min_confidence: float | None = None, progress: bool = False, model=None,
             colour_constancy: bool | None = None, calibration: dict | None = None) -> dict:  # fmt: skip
    """Fast batched evaluation (see module docstring); min_confidence None: the model card's.
    colour_constancy: apply the card's input normalisation (None: as the adapter's manifest says,
    else yes; an adapter being trained has no manifest yet, so its finetune passes its setting).
    calibration: an adapter's own confidence calibration, for one whose manifest does not carry it
    yet; None: the manifest's, else the card's. (Answers already generated are scored at another
    gate by `rescore`, as finetune does, without generating again.)"""
    from s1s2.adapters import MANIFEST, read_manifest
    from vlm_planner.colour import InputNorm, for_adapter

    from .pretrain import Prompt

    model_dir = Path(model_dir)
    if model is None:
        model, proc = load_model(model_dir, quant, adapter_dir)
    else:
        from vlm_planner.model import load_processor

        proc = load_processor(str(model_dir))
    card = json.loads((model_dir / "s1s2_vlm.json").read_text())
    # no manifest yet while the finetune / nightly calibrates a new adapter
    if adapter_dir and (Path(adapter_dir) / MANIFEST).is_file():
        manifest = read_manifest(Path(adapter_dir))
        if calibration is None:  # an adapter's own calibration, as the planner uses it
            calibration = manifest.metrics.get("confidence_calibration")
        if colour_constancy is None:
            colour_constancy = manifest.input_normalisation
    calibration, min_confidence = _gate(card, calibration, min_confidence)
    norm = for_adapter(InputNorm.from_card(card), colour_constancy)
    prompt = Prompt(proc, INSTRUCTION, norm=norm)
    t0 = time.time()
    texts, raw, pooled, feats, numbers = generate_batched(
        model, prompt, data["pixels"], batch, progress=progress
    )
    labels, uvs = parse_all(texts, numbers=numbers)
    gen = {
        "seconds": time.time() - t0,
        "_texts": texts,
        "_numbers": numbers,
        "_raw": raw,
        "_pooled": pooled,
        "_features": feats,
        "_temporal": temporal_of_frames(labels, uvs, data, camera()),
        "_labels": np.asarray(labels),
        "_uvs": uvs,
    }
    return _gated(gen, data, calibration, min_confidence)


GENERATED = ("seconds", "_texts", "_numbers", "_raw", "_pooled", "_features", "_temporal", "_labels", "_uvs")


def _gate(card: dict, calibration: dict | None, min_confidence: float | None) -> tuple[dict | None, float]:
    """The calibration and threshold plans are scored at: an adapter's own calibration when usable,
    else the card's; min_confidence None: that calibration's (0 without one)."""
    from vlm_planner import confidence as conf_mod

    card_calibration = card.get("confidence_calibration")
    calibration = conf_mod.own_or(calibration, card_calibration) if card_calibration else card_calibration
    if min_confidence is None:
        min_confidence = float(calibration.get("min_confidence", 0.0)) if calibration else 0.0
    return calibration, min_confidence


def _gated(gen: dict, data: dict, calibration: dict | None, min_confidence: float) -> dict:
    """score() of generated answers (GENERATED) at one calibration and threshold."""
    from vlm_planner import confidence as conf_mod

    cal = np.asarray(gen["_raw"], dtype=np.float64)
    if calibration:  # a temporal calibration: agreement with the frame before counts, as in the planner
        cal = np.array(
            [
                conf_mod.with_temporal(calibration, conf_mod.calibrated(calibration, f), t)
                for f, t in zip(gen["_features"], gen["_temporal"], strict=True)
            ]
        ).reshape(-1)
    res = score(gen["_labels"], gen["_uvs"], cal, data, camera(), min_confidence)
    res.update({k: gen[k] for k in GENERATED})
    return res


def rescore(res: dict, data: dict, model_dir, calibration: dict | None = None,
            min_confidence: float | None = None) -> dict:  # fmt: skip
    """An evaluate() result of `data` scored again at another confidence gate, without generating
    again (greedy answers do not depend on the gate): `calibration` an adapter's own (None or
    unusable: the card's), `min_confidence` None: the calibration's. The answers must come from
    the model and input normalisation the gate is meant for."""
    card = json.loads((Path(model_dir) / "s1s2_vlm.json").read_text())
    return _gated(res, data, *_gate(card, calibration, min_confidence))


def temporal_of_frames(labels, uvs, data: dict, cam) -> np.ndarray:
    """vlm_planner.confidence.TEMPORAL_FEATURES of each frame's answer against the answer to the
    frame before it in the same episode (the data's seed, time, belt_position), as the planner
    computes them against its previous plan. Frames are 1 s apart in the calibration and test sets,
    as plans at 1 Hz. All 0 for a set without episode order."""
    from vlm_planner import confidence as conf_mod

    out = np.zeros((len(labels), len(conf_mod.TEMPORAL_FEATURES)))
    if not all(k in data for k in ("seed", "time", "belt_position")):
        return out
    prev = None
    for i, lab in enumerate(labels):
        pick = None
        if lab >= 0:
            p = cam.pixel_to_plane(float(uvs[i][0]), float(uvs[i][1]), BELT_Z)
            if p is not None:  # belt frame: world x less the belt's odometry at the image
                xy = np.array([p[0] - float(data["belt_position"][i]), p[1]])
                pick = (int(lab), xy, "", float(data["time"][i]))
        if pick is not None and i > 0 and data["seed"][i] == data["seed"][i - 1]:
            out[i] = conf_mod.temporal_features(pick, prev)
        prev = pick
    return out


def eval_planner(model_dir, data: dict, adapter: str = "", adapter_library: str = "", limit: int = 0) -> dict:
    """Every full frame through Planner.plan (NF4 + double quant, 1 thread): metrics + latency."""
    from vlm_planner.config import PlannerConfig
    from vlm_planner.geometry import CameraModel
    from vlm_planner.planner import Planner

    cfg = PlannerConfig(
        model_id=str(Path(model_dir).resolve()),
        adapter_library=adapter_library,
        initial_adapter=adapter,
        device="cpu",
        quantization="nf4",
        num_threads=1,
        gate_keeps_goal=False,  # score each frame's own answer, not a pick re-sent from an earlier frame
    )
    planner = Planner(cfg)
    cam = camera()
    pcam = CameraModel.from_cell()
    n = min(len(data["label"]), limit) if limit else len(data["label"])
    data = {k: v[:n] for k, v in data.items()}
    labels, uvs, confs, lat_s, texts = [], [], [], [], []
    planner.plan(data["image"][0], INSTRUCTION, 0.0, 0.0, pcam)  # warm-up, not counted
    for i in range(n):
        r = planner.plan(
            data["image"][i], INSTRUCTION, float(data["time"][i]), float(data["belt_position"][i]), pcam
        )
        lat_s.append(r.total_s)
        texts.append(r.raw_text)
        if r.has_target:
            labels.append(CLASSES.index(r.target_label))
            uvs.append(r.pixel)
            confs.append(r.confidence)
        else:
            low_conf = r.reason.startswith("confidence")
            labels.append(-1 if ("label=none" in r.reason or low_conf) else -2)
            uvs.append((np.nan, np.nan))
            confs.append(0.0)
    res = score(
        labels, np.array(uvs, dtype=np.float64).reshape(-1, 2), confs, data, cam, planner.min_confidence
    )
    lat = np.array(lat_s) * 1e3
    res.update(
        plan_ms_p50=float(np.percentile(lat, 50)),
        plan_ms_p99=float(np.percentile(lat, 99)),
        plan_ms_max=float(lat.max()),
        threads=1,
        quantization=planner.info()["quantization"],
    )
    res["_texts"] = texts
    return res


def public(res: dict) -> dict:
    """The metrics without the per-frame arrays; floats rounded, NaN -> None (strict JSON)."""

    def clean(v):
        if isinstance(v, float):
            return round(v, 4) if math.isfinite(v) else None
        return v

    return {k: clean(v) for k, v in res.items() if not k.startswith("_")}


def main(argv=None):
    import torch

    ap = argparse.ArgumentParser(prog="python -m s1s2_training.vlm.evaluate")
    ap.add_argument("model")
    ap.add_argument("sets", nargs="*", help=".npz frame sets")
    ap.add_argument(
        "--default-episodes", type=int, default=0, help="held-out default-density episodes (seeds 900000..)"
    )
    ap.add_argument(
        "--dense-episodes", type=int, default=0, help="held-out dense episodes (seeds 910000..), 2..4 items"
    )
    ap.add_argument("--lighting", default="daylight")
    ap.add_argument("--work-dir", default="runs/vlm_data", help="frame cache")
    ap.add_argument("--planner", action="store_true", help="through Planner.plan (needs full frames)")
    ap.add_argument("--quant", default="nf4", choices=("nf4", "none"))
    ap.add_argument("--adapter", default="", help="fast path: adapter folder; --planner: adapter id")
    ap.add_argument("--library", default="", help="--planner: adapter library")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument(
        "--visibility", action="store_true",
        help="also score targets the arm leaves >= 50 %% in view and those it hides apart (new frame cache)",
    )  # fmt: skip
    ap.add_argument("--out", default="")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    allres = {}
    named = [(Path(p).stem, None) for p in a.sets]
    from . import data as dm

    for kind, n, seed0 in (
        ("default", a.default_episodes, dm.TEST_DEFAULT_SEED0),
        ("dense", a.dense_episodes, dm.TEST_DENSE_SEED0),
    ):
        if n:
            spec = dm.FrameSpec(
                kind, a.lighting, dm.seeds(seed0, n), keep_full=a.planner, visibility=a.visibility
            )
            d = dm.scored(kind, dm.cached(spec, 128, a.work_dir, 2))
            named.append((f"heldout_{kind}_{a.lighting}_{n}ep", d))
    for name, data in named:
        path = name
        data = load(next(p for p in a.sets if Path(p).stem == name)) if data is None else data
        if a.limit:
            data = {k: v[: a.limit] for k, v in data.items()}
        if a.planner:
            res = eval_planner(a.model, data, a.adapter, a.library)
        else:
            res = evaluate(a.model, data, a.quant, a.adapter or None, progress=True)
        allres[Path(path).stem] = public(res)
        print(Path(path).stem, json.dumps(public(res)), flush=True)
    if a.out:
        Path(a.out).write_text(json.dumps(allres, indent=1))


if __name__ == "__main__":
    main()
