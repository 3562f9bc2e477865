"""Tables of the sim VLM's measured numbers, read from the manifests the commands wrote.

    python -m s1s2_training.vlm.report [--runs runs/vlm_ft] [--swap]

* models/manifest.json "sim_vlm": daylight NF4 accuracy on held-out seeds, latency, calibration;
* models/adapters/*/s1s2_adapter.json: per domain, base vs adapter on held-out domain frames,
  confident-wrong-pick rates, daylight with the adapter active (forgetting), latent cosine;
* --runs DIR: adapters written with `s1s2 planner finetune --out DIR/<name>` (strategy comparison,
  lambda sweep), the same columns plus trainable parameters, bytes, train time; --swap also
  measures the planner's swap time from disk for each (Planner.swap_adapter, NF4 base).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from s1s2 import repo_root


def _pct(v):
    return "-" if v is None else f"{100 * v:.1f}"


def _cm(v):
    return "-" if v is None else f"{v:.2f}"


def base_table(manifest: dict) -> list[str]:
    rec = manifest["artifacts"].get("sim_vlm", {})
    m = rec.get("metrics", {})
    out = ["| held-out daylight set (NF4) | target frames | class acc | item acc (class + <=5 cm) | hold acc | "
           "pick err median / p90 cm | confident-wrong picks / frame |",
           "|---|---|---|---|---|---|---|"]  # fmt: skip
    for k, t in m.get("test_nf4", {}).items():
        out.append(
            f"| {k} ({t['frames']} frames) | {t['target_frames']} | {_pct(t['class_acc'])} | {_pct(t['item_acc'])} | "
            f"{_pct(t['hold_acc'])} | {_cm(t['pick_err_median_cm'])} / {_cm(t['pick_err_p90_cm'])} | "
            f"{_pct(t['confident_wrong_pick_rate'])} |"
        )
    return out


def adapter_rows(adapters: list[tuple[str, dict]], extra: bool) -> list[str]:
    head = ("| adapter | strategy | lambda | base in domain: class / item / hold / cwp | adapter in domain: class / item / "
            "hold / cwp | daylight with adapter: class (base) | latent cos median (>= 0.9) |")  # fmt: skip
    sep = "|---|---|---|---|---|---|---|"
    if extra:
        head += " trainable params | bytes | train s | swap ms |"
        sep += "---|---|---|---|"
    out = [head, sep]
    for name, man in adapters:
        m = man.get("metrics", {})
        bd, ad, ady, bdy = (
            m.get(k, {}) for k in ("base_domain", "adapter_domain", "adapter_daylight", "base_daylight")
        )
        lc = m.get("latent_cosine", {})
        row = (
            f"| {name} | {man.get('strategy')} | {man.get('data', {}).get('mix_lambda')} | "
            f"{_pct(bd.get('class_acc'))} / {_pct(bd.get('item_acc'))} / {_pct(bd.get('hold_acc'))} / "
            f"{_pct(bd.get('confident_wrong_pick_rate'))} | "
            f"{_pct(ad.get('class_acc'))} / {_pct(ad.get('item_acc'))} / {_pct(ad.get('hold_acc'))} / "
            f"{_pct(ad.get('confident_wrong_pick_rate'))} | {_pct(ady.get('class_acc'))} ({_pct(bdy.get('class_acc'))}) | "
            f"{lc.get('adapter_in_domain_vs_base_in_daylight_median', '-')} "
            f"({_pct(lc.get('adapter_in_domain_vs_base_in_daylight_frac_ge_0.9'))} %) |"
        )
        if extra:
            row += (
                f" {m.get('trainable_parameters')} | {m.get('adapter_bytes')} | {m.get('train_s')} | "
                f"{man.get('_swap_ms', '-')} |"
            )
        out.append(row)
    return out


def swap_times(dirs: list[Path], base: Path) -> dict[str, float]:
    """Planner.swap_adapter from disk (ms) for each adapter folder, through a temporary library."""
    from s1s2.adapters import add_adapter
    from vlm_planner.config import PlannerConfig
    from vlm_planner.planner import Planner

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        lib = Path(tmp) / "lib"
        for d in dirs:
            add_adapter(lib, d, adapter_id=d.name)
        planner = Planner(
            PlannerConfig(model_id=str(base), adapter_library=str(lib), max_resident_adapters=1)
        )
        for d in dirs:
            res = planner.swap_adapter(d.name)
            out[d.name] = round(res.swap_time_ms, 1) if res.success else float("nan")
            planner.swap_adapter("")
        shutil.rmtree(lib, ignore_errors=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m s1s2_training.vlm.report")
    ap.add_argument("--runs", default="")
    ap.add_argument("--swap", action="store_true")
    a = ap.parse_args(argv)
    root = repo_root()
    manifest = json.loads((root / "models" / "manifest.json").read_text())
    print("\n".join(base_table(manifest)))
    print()
    shipped = []
    for d in sorted((root / "models" / "adapters").iterdir()):
        man = json.loads((d / "s1s2_adapter.json").read_text())
        if man.get("trained"):
            shipped.append((d.name, man))
    print("\n".join(adapter_rows(shipped, extra=True)))
    if a.runs:
        dirs = sorted(p for p in Path(a.runs).iterdir() if (p / "s1s2_adapter.json").is_file())
        runs = [(p.name, json.loads((p / "s1s2_adapter.json").read_text())) for p in dirs]
        if a.swap:
            sw = swap_times(
                dirs + [root / "models" / "adapters" / n for n, _ in shipped], root / "models" / "sim_vlm"
            )
            for n, man in runs + shipped:
                man["_swap_ms"] = sw.get(n, "-")
            print()
            print("\n".join(adapter_rows(shipped, extra=True)))
        print()
        print("\n".join(adapter_rows(runs, extra=True)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
