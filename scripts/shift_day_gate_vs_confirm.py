"""Whole-stack shift day (6 lighting domains x 40 s, seed 0, manager ON) with the planner's two
ways of trusting a pick, side by side: the model card's calibrated confidence gate, and two
consecutive plans that agree (confirm_pick_cm 5, no gate; opt-in, docs/sim_vlm.md).

    python scripts/shift_day_gate_vs_confirm.py     # writes runs/shift_day_gate_vs_confirm.json
"""

import json
from pathlib import Path

from conveyor_sim.lighting import DOMAINS
from s1s2.shiftday import run_shift_day

SETTINGS = {
    "card gate": {"vlm_planner": ["card_min_confidence:=true", "confirm_pick_cm:=0.0"]},
    "confirm 5 cm, no gate": {"vlm_planner": ["card_min_confidence:=false", "min_confidence:=0.0",
                                              "confirm_pick_cm:=5.0"]},
}  # fmt: skip


def main() -> int:
    schedule = [(d, 40.0) for d in DOMAINS]
    out = {}
    for name, over in SETTINGS.items():
        print(f"shift day: manager ON, {name}", flush=True)
        out[name] = run_shift_day("config/recycling_sim.yaml", schedule, 0, over,
                                  log_dir=Path("runs/shift_day_gate_vs_confirm") / name.replace(" ", "_"))  # fmt: skip
        print(json.dumps({k: out[name].get(k) for k in ("domains", "totals", "adapter_swaps")}), flush=True)
    Path("runs/shift_day_gate_vs_confirm.json").write_text(json.dumps(out, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
