"""Would a two-plan consensus make the planner's picks trustworthy at a lower confidence gate?

Offline, on the same frames as `scripts/planner_gate_sweep.py` (base model in daylight, NF4; the
calibration and held-out test sets of `s1s2 models sim_vlm`, one frame per second per episode,
i.e. the planner's 1 Hz): a pick is acted on only when it clears the gate AND the previous plan
of the same episode (1 s earlier) picked the same class within `--agree-cm` on the belt (both
deprojected to the belt plane, the earlier one moved by the belt's travel in between).

    python scripts/planner_consensus_sweep.py     # writes results/planner_consensus_sweep.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys

import numpy as np

GATES = (0.0, 0.3, 0.5, 0.7, 0.8, 0.888)


def belt_xy(uv, belt_position, cam, z):
    p = cam.pixel_to_plane(float(uv[0]), float(uv[1]), z)
    return np.array([p[0] - belt_position, p[1]])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agree-cm", type=float, default=3.0)
    ap.add_argument("--out", default="results/planner_consensus_sweep.json")
    a = ap.parse_args(argv)
    import torch

    from s1s2 import resolve_path
    from s1s2_training.vlm import data as dm
    from s1s2_training.vlm.build import Recipe, calibration_specs, held_out_specs
    from s1s2_training.vlm.evaluate import BELT_Z, camera, evaluate, parse_all

    torch.set_num_threads(1)
    r, wd, base = Recipe(), resolve_path("runs/vlm_data"), resolve_path("models/sim_vlm")
    card = json.loads((base / "s1s2_vlm.json").read_text())
    size = int(card.get("image_size", 128))
    cam = camera()
    sets = {"calibration": calibration_specs(r), "test": list(held_out_specs(r).values())}
    out: dict = {
        "agree_cm": a.agree_cm,
        "card_min_confidence": card["confidence_calibration"]["min_confidence"],
    }
    for name, specs in sets.items():
        d = dm.concat([dm.cached(s, size, wd) for s in specs])
        ev = evaluate(base, d, "nf4", min_confidence=0.0)
        conf, good, picked = ev["_conf"], ev["_good"], ev["_picked"]
        labels, uvs = parse_all(ev["_texts"], numbers=ev["_numbers"])
        labels = np.asarray(labels)
        n, tgt = len(d["label"]), d["label"] >= 0
        # the previous frame of the same episode, about one plan period earlier
        prev = np.full(n, -1)
        order = np.lexsort((d["time"], d["seed"]))
        for j, i in zip(order[:-1], order[1:], strict=True):
            if d["seed"][i] == d["seed"][j] and 0.5 < d["time"][i] - d["time"][j] < 1.5:
                prev[i] = j
        agree = np.zeros(n, bool)
        for i in np.nonzero(picked & (prev >= 0))[0]:
            j = prev[i]
            if picked[j] and labels[j] == labels[i]:
                xi = belt_xy(uvs[i], d["belt_position"][i], cam, BELT_Z)
                xj = belt_xy(uvs[j], d["belt_position"][j], cam, BELT_Z)
                agree[i] = 100.0 * math.hypot(*(xi - xj)) <= a.agree_cm
        rows = {}
        for t in GATES:
            for mode, act in (
                ("gate", picked & (conf >= t)),
                ("gate+consensus", picked & (conf >= t) & agree),
            ):
                rows[f"{mode} {t}"] = {
                    "confident_wrong_per_frame": round(float((act & ~good).sum() / n), 4),
                    "acted_right_per_target_frame": round(
                        float((act & good & tgt).sum() / max(1, tgt.sum())), 4
                    ),
                    "acted": int(act.sum()),
                }
        out[name] = {"frames": n, "target_frames": int(tgt.sum()), "with_previous_plan": int((prev >= 0).sum()),
                     "rows": rows}  # fmt: skip
        print(name, json.dumps(rows, indent=0), flush=True)
    with open(resolve_path(a.out), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
