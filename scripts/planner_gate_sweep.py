"""The planner's confidence gate vs its per-frame confident-wrong rate (wrong class, > 5 cm off, or
a pick where nothing should be picked, above the gate), base model in daylight, on the calibration
frames (where the card's min_confidence is chosen) and on the held-out test frames of
`s1s2 models sim_vlm` (the same seeds and recipe; frames cached under runs/vlm_data).

    python scripts/planner_gate_sweep.py       # writes results/planner_gate_sweep.json
"""

from __future__ import annotations

import json
import sys

GATES = (0.0, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.888)


def main() -> int:
    import torch

    from s1s2 import resolve_path
    from s1s2_training.vlm import calibrate as calib
    from s1s2_training.vlm import data as dm
    from s1s2_training.vlm.build import Recipe, calibration_specs, held_out_specs
    from s1s2_training.vlm.evaluate import evaluate

    torch.set_num_threads(1)
    r, wd, base = Recipe(), resolve_path("runs/vlm_data"), resolve_path("models/sim_vlm")
    card = json.loads((base / "s1s2_vlm.json").read_text())
    size = int(card.get("image_size", 128))
    sets = {"calibration": calibration_specs(r), "test": list(held_out_specs(r).values())}
    out: dict = {"card_min_confidence": card["confidence_calibration"]["min_confidence"]}
    for name, specs in sets.items():
        d = dm.concat([dm.cached(s, size, wd) for s in specs])
        ev = evaluate(base, d, "nf4", min_confidence=0.0)
        conf, good, picked = ev["_conf"], ev["_good"], ev["_picked"]
        n, tgt = len(d["label"]), d["label"] >= 0
        rows = {}
        for t in GATES:
            act = picked & (conf >= t)
            rows[str(t)] = {
                "confident_wrong_per_frame": round(float((act & ~good).sum() / n), 4),
                "acted_right_per_target_frame": round(float((act & good & tgt).sum() / max(1, tgt.sum())), 4),
                "acted": int(act.sum()),
            }
        out[name] = {"frames": n, "target_frames": int(tgt.sum()), "rows": rows}
        if name == "calibration":
            for mr in (0.01, 0.02):
                out[f"threshold_max_rate_{mr}"] = round(
                    calib.choose_threshold(conf[picked], good[picked], n, mr), 4
                )
    print(json.dumps(out, indent=1))
    resolve_path("results/planner_gate_sweep.json").write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
