"""Operator labels for `s1s2 nightly`: the day's failure frames as a sheet a person fills in.

On a real robot a failure record carries the camera frame but no ground truth, so `s1s2 nightly`
cannot label it by itself. The sheet closes that gap:

    s1s2 nightly sheet --failures runs/failures --out runs/sheet     # images/ + metadata.jsonl
    (a person fills in label, u, v in runs/sheet/metadata.jsonl)
    s1s2 nightly --failures runs/failures --labels runs/sheet/metadata.jsonl --context my_cell

The sheet is a Hugging Face `imagefolder` (`datasets.load_dataset("imagefolder", data_dir=...)`
reads it), so labelling tools that speak that format can fill it in. One JSON object per line:

    {"file_name": "images/00000.png", "stamp": 100.0, "kind": "missed",
     "planner_label": "pet_bottle", "planner_confidence": 0.41,
     "label": null, "u": null, "v": null}

* `label`: the class the robot should pick next (the most downstream item it can still reach), or
  "none" when there is nothing to pick; `null` leaves the frame unlabelled (it is skipped).
* `u`, `v`: that item's pick point in pixels of the image (u right, v down), where the item touches
  the belt under its centre; required with a class, ignored with "none".
* `stamp` ties the line to its failure record; `planner_label` / `planner_confidence` are what the
  planner said (for reference only). In the simulator `--prefill-truth` fills label, u, v from the
  recorded ground truth, so the operator path can be checked against the automatic one.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

SHEET = "metadata.jsonl"


def stamp_key(stamp) -> str:
    """Failure records and sheet lines are matched on their stamp to the microsecond."""
    return f"{float(stamp):.6f}"


def write_sheet(failures, out_dir, prefill_truth: bool = False, belt_speed: float = -1.0) -> dict:
    """The failure records of `failures` (MCAP files or folders) -> out_dir/images/*.png and
    out_dir/metadata.jsonl. Written to a temporary folder and renamed, and an existing sheet is
    never overwritten (it may hold a person's labels). Returns counts."""
    import cv2

    from adapter_manager.failure_node import read_failures

    from .nightly import failure_files

    out_dir = Path(out_dir)
    if out_dir.exists():
        raise FileExistsError(f"{out_dir} exists; a sheet is never overwritten (choose another --out)")
    recs = [r for r in read_failures(failure_files(failures)) if r.get("image") is not None]
    recs.sort(key=lambda r: float(r.get("stamp", 0.0)))
    truth_label = _truth_labeller(belt_speed) if prefill_truth else None
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        (tmp / "images").mkdir()
        lines, seen, prefilled = [], set(), 0
        for k, r in enumerate(recs):
            key = stamp_key(r.get("stamp", 0.0))
            if key in seen:  # two records of one frame (e.g. missed and low confidence): one label
                continue
            seen.add(key)
            name = f"images/{k:05d}.png"
            if not cv2.imwrite(str(tmp / name), cv2.cvtColor(r["image"], cv2.COLOR_RGB2BGR)):
                raise OSError(f"could not write {tmp / name}")
            goal = r.get("goal")
            line = {
                "file_name": name,
                "stamp": float(key),
                "kind": r.get("kind", "?"),
                "planner_label": (goal.target_label or "none") if goal is not None else None,
                "planner_confidence": round(float(goal.confidence), 3) if goal is not None else None,
                "label": None,
                "u": None,
                "v": None,
            }
            if truth_label is not None and r.get("truth") is not None:
                line.update(truth_label(r["image"], r["truth"]))
                prefilled += 1
            lines.append(json.dumps(line))
        (tmp / SHEET).write_text("\n".join(lines) + ("\n" if lines else ""))
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"records": len(recs), "frames": len(lines), "prefilled": prefilled, "sheet": str(out_dir / SHEET)}


def _truth_labeller(belt_speed: float):
    """(image, GroundTruth) -> {label, u, v}, the label `s1s2 nightly` derives from ground truth."""
    from .nightly import truth_row
    from .vlm.data import CLASSES
    from .vlm.evaluate import camera

    cam = camera()

    def label(image, truth) -> dict:
        row = truth_row(image, truth, cam, belt_speed, 32)  # the label only: a small resize will do
        if row["label"] < 0:
            return {"label": "none", "u": None, "v": None}
        return {"label": CLASSES[row["label"]], "u": float(row["uv"][0]), "v": float(row["uv"][1])}

    return label


def read_labels(path, width: int, height: int) -> dict[str, tuple[str, tuple[float, float] | None]]:
    """stamp key -> (label, (u, v) or None) of every labelled line of a sheet; unlabelled lines
    (label null) are left out. Any bad line is an error naming the file, the line and the value."""
    from .vlm.data import CLASSES

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label sheet {path} does not exist (s1s2 nightly sheet writes one)")
    out: dict = {}
    for n, text in enumerate(path.read_text().splitlines(), 1):
        if not text.strip():
            continue
        where = f"{path}:{n}"
        try:
            row = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict) or "stamp" not in row:
            raise ValueError(f"{where}: a line needs a 'stamp' (the failure record it labels)")
        try:
            key = stamp_key(row["stamp"])
        except (TypeError, ValueError):
            raise ValueError(f"{where}: stamp {row['stamp']!r} is not a number") from None
        if key in out:
            raise ValueError(f"{where}: stamp {key} is labelled twice")
        label = row.get("label")
        if label is None:
            continue
        if not isinstance(label, str) or (label != "none" and label not in CLASSES):
            raise ValueError(f"{where}: label {label!r} is not one of {', '.join(CLASSES)}, none or null")
        if label == "none":
            out[key] = (label, None)
            continue
        uv = []
        for axis, size in (("u", width), ("v", height)):
            val = row.get(axis)
            ok = isinstance(val, (int, float)) and not isinstance(val, bool) and math.isfinite(val)
            if not ok or not 0 <= val <= size - 1:
                raise ValueError(
                    f"{where}: {axis} {val!r} must be a pixel of the {width}x{height} image (0..{size - 1}) "
                    f"for label {label!r}"
                )
            uv.append(float(val))
        out[key] = (label, (uv[0], uv[1]))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="s1s2 nightly sheet", description=__doc__.splitlines()[0])
    ap.add_argument("--failures", nargs="+", required=True, help="failure MCAP files or folders")
    ap.add_argument("--out", required=True, help="new folder for images/ and metadata.jsonl")
    ap.add_argument(
        "--prefill-truth", action="store_true",
        help="fill label, u, v from the recorded ground truth (simulator recordings only)",
    )  # fmt: skip
    ap.add_argument(
        "--belt-speed", type=float, default=-1.0, help="m/s for --prefill-truth (default: the cell's)"
    )
    a = ap.parse_args(argv)
    try:
        r = write_sheet(a.failures, a.out, a.prefill_truth, a.belt_speed)
    except (OSError, ValueError) as exc:
        print(f"s1s2 nightly sheet: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(r))
    print(
        f"fill in label, u, v in {r['sheet']}, then: s1s2 nightly --failures ... --labels {r['sheet']} --context ..."
    )
    return 0


def image_size_of(records) -> tuple[int, int]:
    """(width, height) of the recorded camera frames (all must agree)."""
    sizes = {
        (int(r["image"].shape[1]), int(r["image"].shape[0])) for r in records if r.get("image") is not None
    }
    if len(sizes) != 1:
        raise ValueError(
            f"failure frames of {len(sizes)} different sizes {sorted(sizes)}: one camera per sheet"
        )
    return sizes.pop()
