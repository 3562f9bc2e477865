"""`s1s2 planner ...`: inspect and benchmark System 2 without ROS.

    s1s2 planner info  [--model-id PATH|HUB_ID] [--quantization nf4|none] [--no-compare]
    s1s2 planner bench [--n 10] [--swaps 6] [--quantization nf4|none]
    s1s2 planner plan IMAGE.png [--instruction TEXT]   one plan from an image file (u,v -> belt frame)
    s1s2 planner finetune --domain D [--strategy vision|llm|projector|a+b] [--rank R] [--alpha A]
                          [--targets REGEX] [--mix LAMBDA] [--steps N] [--gradient-checkpointing]
                          QLoRA adapter for one lighting domain on the NF4 base (HF Trainer),
                          registered in the adapter library (s1s2_training.vlm.finetune)

All numbers printed are measured in this run (wall clock, this machine).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np


def _config(args, **over):
    from .config import PlannerConfig

    kw = {
        "model_id": args.model_id,
        "adapter_library": args.adapter_library,
        "quantization": args.quantization,
        "device": args.device,
        "num_threads": args.num_threads,
        "allow_download": args.allow_download,
    }
    kw.update(over)
    return PlannerConfig(**kw)


def _camera(width: int, height: int):
    """The cell's overhead camera at the given resolution."""
    from .geometry import CameraModel

    return CameraModel.from_cell(width=width, height=height)


def _pct(values, q):
    return float(np.percentile(np.asarray(values), q))


def cmd_info(args) -> int:
    from .planner import Planner

    planner = Planner(_config(args))
    info = planner.info()
    print(f"model_id:          {info['model_id']} ({info['source']})")
    print(f"architecture:      {info['architecture']}  trained: {info['trained']}")
    print(f"device:            {info['device']}")
    print(
        f"quantization:      {info['quantization']}  (double quant: {info['double_quant']}, "
        f"compute dtype {info['compute_dtype']}, bnb Linear4bit layers: {info['linear4bit_layers']})"
    )
    print(f"load time:         {info['load_s']:.2f} s")
    print(
        f"input colour:      {info['input_normalisation']} (active adapter: {info['active_input_normalisation']})"
    )
    print(f"memory footprint:  {info['memory_footprint_bytes'] / 1e6:.3f} MB (model.get_memory_footprint())")
    if planner.vlm.linear4bit:
        from .model import linear4bit_bytes

        packed, full = linear4bit_bytes(planner.vlm.model)
        print(
            f"  Linear4bit weights: {packed / 1e6:.3f} MB packed NF4 + double-quantised scales "
            f"vs {full / 1e6:.3f} MB in fp32 ({packed / full:.3f}x)"
        )
    if not args.no_compare:
        other = "none" if args.quantization == "nf4" else "nf4"
        ref = Planner(_config(args, quantization=other, adapter_library=""))
        ratio = info["memory_footprint_bytes"] / ref.vlm.footprint_bytes
        print(
            f"  vs {other:>4}:         {ref.vlm.footprint_bytes / 1e6:.3f} MB "
            f"(this/that = {ratio:.2f}; embeddings and lm_head stay unquantised)"
        )
    print(f"latent projection: {info['latent_projection']}")
    print(f"adapter library:   {info['adapter_library'] or '(none)'}")
    for name in info["library_adapters"]:
        card = planner.switcher.card(name)
        trained = card.get("trained")
        print(f"  - {name:<28} trained={trained}  {card.get('notes', '')}")
    for note in planner.model_notes():
        print(f"NOTE: {note}")
    return 0


def cmd_bench(args) -> int:
    from tqdm import tqdm

    from .planner import Planner

    t0 = time.perf_counter()
    planner = Planner(_config(args))
    print(
        f"model {args.model_id}: {type(planner.vlm.model).__name__}, quantization={args.quantization}, "
        f"device={planner.vlm.device}, threads={args.num_threads or 'default'}; "
        f"load {planner.vlm.load_s:.2f} s (Planner init {time.perf_counter() - t0:.2f} s), "
        f"footprint {planner.vlm.footprint_bytes / 1e6:.3f} MB, trained={planner.vlm.trained}"
    )
    w, h = args.width, args.height
    camera = _camera(w, h)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(max(args.n, 1))]
    planner.plan(images[0], "sort the recyclables", 0.0, 0.0, camera)  # warm-up, not counted
    total, infer = [], []
    for i, img in enumerate(tqdm(images, desc="plans", leave=False)):
        r = planner.plan(img, "sort the recyclables", float(i), 0.0, camera)
        total.append(r.total_s * 1e3)
        infer.append(r.inference_s * 1e3)
    print(
        f"plan latency over {len(total)} images {w}x{h}, max_new_tokens={planner.config.max_new_tokens}: "
        f"mean {statistics.mean(total):.1f} ms, p50 {_pct(total, 50):.1f} ms, p95 {_pct(total, 95):.1f} ms "
        f"(generate() alone: mean {statistics.mean(infer):.1f} ms)"
    )
    names = planner.library_adapters
    if not names:
        print("swap latency: no adapter library")
        return 0
    cold, warm, base = [], [], []
    for name in names[: args.swaps]:  # first visit: loaded from disk (and LRU eviction past the limit)
        res = planner.swap_adapter(name)
        (cold if res.loaded_from_disk else warm).append(res.swap_time_ms)
    resident = planner.resident_adapters
    for i in range(args.swaps):  # resident: set_adapter only
        res = planner.swap_adapter(resident[i % len(resident)])
        warm.append(res.swap_time_ms)
        base.append(planner.swap_adapter("").swap_time_ms)
    print(
        f"swap latency (request -> active): from disk mean {statistics.mean(cold):.1f} ms over {len(cold)}; "
        f"resident mean {statistics.mean(warm):.2f} ms over {len(warm)}; "
        f"to base mean {statistics.mean(base):.3f} ms over {len(base)} "
        f"(max_resident_adapters={planner.config.max_resident_adapters})"
    )
    if args.json:
        print(
            json.dumps({"plan_ms": total, "swap_cold_ms": cold, "swap_warm_ms": warm, "swap_base_ms": base})
        )
    return 0


def cmd_plan(args) -> int:
    from PIL import Image

    from .planner import Planner

    img = np.asarray(Image.open(args.image).convert("RGB"))
    planner = Planner(_config(args))
    r = planner.plan(img, args.instruction, 0.0, 0.0, _camera(img.shape[1], img.shape[0]))
    print(f"raw answer: {r.raw_text!r}")
    if r.has_target:
        print(f"target {r.target_label} at pixel {r.pixel}, belt {np.round(r.target_belt, 3).tolist()}, "
              f"bin {r.bin_id}, confidence {r.confidence:.3f}")  # fmt: skip
    else:
        print(f"hold: {r.reason}")
    print(f"latent[:4] {np.round(r.latent[:4], 4).tolist()}  plan {r.total_s * 1e3:.1f} ms")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="s1s2 planner", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    from s1s2_training.vlm import finetune as ft  # training code: imported only for this command's parser

    ft.add_arguments(sub.add_parser("finetune", help="QLoRA adapter for one lighting domain"))
    for name in ("info", "bench", "plan"):
        p = sub.add_parser(name)
        p.add_argument("--model-id", default="models/sim_vlm")
        p.add_argument("--adapter-library", default="models/adapters")
        p.add_argument("--quantization", default="nf4", choices=("nf4", "none"))
        p.add_argument("--device", default="auto", choices=("cpu", "cuda", "auto"))
        p.add_argument("--num-threads", type=int, default=1)
        p.add_argument("--allow-download", action="store_true")
        if name == "info":
            p.add_argument("--no-compare", action="store_true", help="skip loading the other precision")
        if name == "bench":
            p.add_argument("--n", type=int, default=10, help="images to plan on")
            p.add_argument("--swaps", type=int, default=6)
            p.add_argument("--width", type=int, default=320)
            p.add_argument("--height", type=int, default=240)
            p.add_argument("--json", action="store_true")
        if name == "plan":
            p.add_argument("image")
            p.add_argument("--instruction", default="sort the recyclables")
    args = ap.parse_args(argv)
    from s1s2.params import ConfigError

    try:
        return {"info": cmd_info, "bench": cmd_bench, "plan": cmd_plan, "finetune": ft.run}[args.cmd](args)
    except ConfigError as exc:
        print(f"s1s2 planner: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
