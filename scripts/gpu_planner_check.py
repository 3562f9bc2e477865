"""System 2 as deployed on a GPU server: the Planner class on CUDA, checked against this CPU.

    python scripts/gpu_planner_check.py prepare DIR        # here: 48 held-out daylight camera frames
    python scripts/gpu_planner_check.py gpu DIR OUT        # on the GPU machine
    python scripts/gpu_planner_check.py compare DIR OUT    # here: the same frames through the CPU planner

On CUDA (NF4 + double quantisation, fp32 compute, the shipped sim model and adapters):
- plan latency (Planner.plan: processor, generate, parse, confidence, latent), base and with an
  adapter, p50 / p99 over the frames;
- adapter swaps: from disk building a slot (peft), from disk into a reused slot (the weights copied
  in place onto the GPU tensors), resident; and that an adapter copied in place plans exactly what
  a planner that loaded it through peft plans, on the GPU;
- the plans (label, pixel, confidence, latent) with the base model and with the warm_tungsten
  adapter, saved; `compare` runs the same frames through the CPU planner and reports agreement.
Record: results/gpu_planner_check.json.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "src" / "vlm_planner", ROOT / "src" / "conveyor_sim", ROOT / "src" / "fast_policy"):
    sys.path.insert(0, str(p))

INSTRUCTION = "sort the recyclables"
ADAPTERS = ("cold_fluorescent_flicker", "low_sun_glare", "night_noise", "overcast_dim", "warm_tungsten")


def prepare(data_dir: Path) -> None:
    from s1s2 import resolve_path
    from s1s2_training.vlm import data as dm
    from s1s2_training.vlm.build import Recipe, _spec

    r = Recipe()
    spec = _spec("dense", dm.TEST_DENSE_SEED0, r.test_dense_episodes, r.episode_s, 1.0, keep_full=True)
    d = dm.cached(spec, 128, resolve_path("runs/vlm_data"))
    idx = np.linspace(0, len(d["label"]) - 1, 48).astype(int)
    data_dir.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(data_dir / "planner_frames.npz", image=d["image"][idx], time=d["time"][idx],
                        belt_position=d["belt_position"][idx], label=d["label"][idx])  # fmt: skip
    print("frames", len(idx), (data_dir / "planner_frames.npz").stat().st_size // 1024, "KiB")


def _planner(device: str, library: Path, **kw):
    from vlm_planner.config import PlannerConfig
    from vlm_planner.planner import Planner

    # gate_keeps_goal off: each frame's own answer, not a pick re-sent from an earlier frame
    return Planner(PlannerConfig(device=device, quantization="nf4", adapter_library=str(library),
                                 gate_keeps_goal=False, **kw))  # fmt: skip


def _plans(planner, frames: dict) -> dict:
    from vlm_planner.geometry import CameraModel

    cam = CameraModel.from_cell()
    planner.plan(frames["image"][0], INSTRUCTION, 0.0, 0.0, cam)  # warm-up
    out = {"label": [], "pixel": [], "confidence": [], "latent": [], "total_s": []}
    for i in range(len(frames["label"])):
        r = planner.plan(frames["image"][i], INSTRUCTION, float(frames["time"][i]),
                         float(frames["belt_position"][i]), cam)  # fmt: skip
        out["label"].append(r.target_label)
        out["pixel"].append(list(r.pixel) if r.pixel is not None else [np.nan, np.nan])
        out["confidence"].append(r.confidence)
        out["latent"].append(r.latent.tolist())
        out["total_s"].append(r.total_s)
    return out


def _library(tmp: Path) -> Path:
    lib = tmp / "lib"
    lib.mkdir()
    for name in (*ADAPTERS, "daylight"):
        shutil.copytree(ROOT / "models" / "adapters" / name, lib / name)
    return lib


def _pct(v, q):
    return float(np.percentile(np.asarray(v) * 1e3, q))


def run_plans(device: str, data_dir: Path) -> dict:
    frames = dict(np.load(data_dir / "planner_frames.npz"))
    lib = _library(Path(tempfile.mkdtemp()))
    planner = _planner(device, lib)
    base = _plans(planner, frames)
    assert planner.swap_adapter("warm_tungsten").success
    warm = _plans(planner, frames)
    return {"base": base, "warm_tungsten": warm}


def gpu(data_dir: Path, out: Path) -> None:
    import torch

    dry = os.environ.get("GPU_CHECK_DRY_RUN") == "1"  # exercise the code paths on a CPU
    assert dry or torch.cuda.is_available(), "no CUDA device"
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    out.mkdir(parents=True, exist_ok=True)
    res: dict = {
        "gpu": torch.cuda.get_device_name(0) if dev == "cuda" else "none (dry run)",
        "torch": torch.__version__,
    }
    plans = run_plans(dev, data_dir)
    for k in ("base", "warm_tungsten"):
        res[f"plan_ms_{k}"] = {"p50": _pct(plans[k]["total_s"], 50), "p99": _pct(plans[k]["total_s"], 99)}
    (out / "plans_cuda.json").write_text(json.dumps(plans))
    # swaps on the GPU: 3 resident, through the five same-layout adapters three times
    frames = dict(np.load(data_dir / "planner_frames.npz"))
    lib = _library(Path(tempfile.mkdtemp()))
    planner = _planner(dev, lib, max_resident_adapters=3)
    first, in_place, resident = [], [], []
    for name in ADAPTERS * 3:
        r = planner.swap_adapter(name)
        assert r.success, r.message
        sync()
        (resident if not r.loaded_from_disk else in_place if r.in_place else first).append(r.swap_time_ms)
        r = planner.swap_adapter(planner.resident_adapters[0])  # back to a resident one
        resident.append(r.swap_time_ms)
    res["swap_ms"] = {
        "first_loads": {"n": len(first), "p50": float(np.median(first)), "max": float(max(first))},
        "in_place": {"n": len(in_place), "p50": float(np.median(in_place)), "p99": float(np.percentile(in_place, 99))},
        "resident": {"n": len(resident), "p50": float(np.median(resident)), "p99": float(np.percentile(resident, 99))},
    }  # fmt: skip
    from vlm_planner.geometry import CameraModel

    cam = CameraModel.from_cell()
    img = frames["image"][5]
    assert planner.swap_adapter("night_noise").success
    got = planner.plan(img, INSTRUCTION, 0.0, 0.0, cam).latent
    fresh = _planner(dev, lib, initial_adapter="night_noise")
    want = fresh.plan(img, INSTRUCTION, 0.0, 0.0, cam).latent
    res["in_place_equals_peft_load_on_cuda"] = {"bit_identical": bool(np.array_equal(got, want)),
                                                "max_abs_latent_diff": float(np.abs(got - want).max())}  # fmt: skip
    print(json.dumps(res, indent=1), flush=True)
    (out / "gpu_planner.json").write_text(json.dumps(res, indent=1) + "\n")


def compare(data_dir: Path, out: Path) -> None:
    import torch

    torch.set_num_threads(1)
    res = json.loads((out / "gpu_planner.json").read_text())
    g = json.loads((out / "plans_cuda.json").read_text())
    c = run_plans("cpu", data_dir)
    for k in ("base", "warm_tungsten"):
        a, b = g[k], c[k]
        same = [x == y for x, y in zip(a["label"], b["label"], strict=True)]
        la, lb = np.asarray(a["latent"]), np.asarray(b["latent"])
        norms = np.linalg.norm(la, axis=1) * np.linalg.norm(lb, axis=1)
        cos = np.where(norms > 0, (la * lb).sum(1) / np.maximum(norms, 1e-12), 1.0)
        both = [i for i in range(len(same)) if a["label"][i] and b["label"][i]]
        px = [np.abs(np.subtract(a["pixel"][i], b["pixel"][i])).max() for i in both]
        res[f"cuda_vs_cpu_{k}"] = {
            "frames": len(same), "same_decision": int(sum(same)), "targets_cuda": sum(bool(x) for x in a["label"]),
            "targets_cpu": sum(bool(x) for x in b["label"]), "latent_cosine_min": float(cos.min()),
            "pixel_max_abs_diff": float(max(px)) if px else None,
            "confidence_max_abs_diff": float(np.abs(np.subtract(a["confidence"], b["confidence"])).max()),
            "plan_ms_cpu_p50": _pct(b["total_s"], 50), "plan_ms_cpu_p99": _pct(b["total_s"], 99),
        }  # fmt: skip
        print(k, json.dumps(res[f"cuda_vs_cpu_{k}"]))
    (ROOT / "results" / "gpu_planner_check.json").write_text(json.dumps(res, indent=1) + "\n")


def main(argv=None) -> int:
    a = list(sys.argv[1:] if argv is None else argv)
    if not a or a[0] not in ("prepare", "gpu", "compare"):
        print(__doc__)
        return 2
    {"prepare": lambda: prepare(Path(a[1])), "gpu": lambda: gpu(Path(a[1]), Path(a[2])),
     "compare": lambda: compare(Path(a[1]), Path(a[2]))}[a[0]]()  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
