"""`s1s2 adapters bench`: a library of hundreds of adapters, measured.

Builds a temporary library of N registered adapters (copies of one real adapter of the shipped
library, each with its own id, context tags and manifest), then measures on this machine:
- start-up: building the tag index from the N manifests (weights are never opened);
- lookup by tag: one and two tags (median and p99 over many lookups);
- memory: the index's Python allocations (tracemalloc), and the planner's resident set size
  while swapping through many adapters with a bounded resident set (LRU) vs. an unbounded one;
- swaps through the real Planner: from disk (verify + load) and resident (set_adapter), p50/p99.
  A disk swap into a full resident set copies the weights into the least recently used slot in
  place; the first `max_resident` loads build their slots through peft and are reported apart.
- `--rank R`: the library is made of a LoRA of rank R on the source's targets with random weights
  (manifest `trained: false`): swap latency depends on the tensors' shapes, not their values.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from s1s2 import resolve_path
from s1s2.adapters import AdapterIndex, list_adapters, read_manifest, write_manifest


def make_library(root: Path, n: int, source: Path, domains: list[str]) -> None:
    m = read_manifest(source)
    base = {k: v for k, v in m.__dict__.items() if k not in ("files", "format", "adapter_id", "context_tags")}
    for i in range(n):
        aid = f"site{i // 10:02d}_{domains[i % len(domains)]}_{i:03d}"
        d = root / aid
        shutil.copytree(source, d, ignore=shutil.ignore_patterns("s1s2_adapter.json"))
        tags = [f"lighting:{domains[i % len(domains)]}", f"site:{i // 10:02d}", f"shift:{i % 3}"]
        write_manifest(d, adapter_id=aid, context_tags=tags, **base)


def make_rank_source(dst: Path, source: Path, rank: int) -> Path:
    """A LoRA of `rank` on `source`'s targets with random A and B (peft init_lora_weights=False),
    for timing only; registered with a manifest that says it is untrained."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    from s1s2.adapters import base_fingerprint

    m = read_manifest(source)
    base_dir = resolve_path(m.base_model)
    model = AutoModelForImageTextToText.from_pretrained(
        str(base_dir), local_files_only=True, dtype=torch.float32
    )
    torch.manual_seed(0)
    cfg = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=m.target_modules, init_lora_weights=False)
    peft_model = get_peft_model(model, cfg)
    peft_model.save_pretrained(str(dst))
    ac = json.loads((dst / "adapter_config.json").read_text())
    ac["base_model_name_or_path"] = m.base_model
    (dst / "adapter_config.json").write_text(json.dumps(ac, indent=2, sort_keys=True) + "\n")
    (dst / "README.md").unlink(missing_ok=True)
    fields = {k: v for k, v in m.__dict__.items() if k not in ("files", "format", "created")}
    fields |= {"adapter_id": dst.name, "rank": rank, "alpha": 2 * rank, "trained": False, "metrics": {},
               "base_fingerprint": base_fingerprint(base_dir),
               "notes": f"random rank-{rank} LoRA on {m.adapter_id}'s targets, for swap timing only"}  # fmt: skip
    write_manifest(dst, **fields)
    return dst


def _rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _pct(values, q) -> float:
    return float(np.percentile(np.asarray(values), q))


def run(
    n: int = 300,
    swaps: int = 30,
    max_resident: int = 3,
    source: str = "models/adapters/daylight",
    rank: int | None = None,
) -> dict:
    from conveyor_sim.lighting import DOMAINS

    domains = list(DOMAINS)
    out: dict = {"adapters": n, "max_resident": max_resident}
    with tempfile.TemporaryDirectory() as tmp:
        lib = Path(tmp) / "lib"
        lib.mkdir()
        src = resolve_path(source)
        if rank is not None:
            src = make_rank_source(Path(tmp) / f"rank{rank}", src, rank)
        m = read_manifest(src)
        out["source"] = {"adapter": source, "rank": m.rank, "trained": m.trained,
                         "weights_bytes": (src / "adapter_model.safetensors").stat().st_size}  # fmt: skip
        make_library(lib, n, src, domains)
        out["library_bytes_on_disk"] = sum(f.stat().st_size for f in lib.rglob("*") if f.is_file())
        t0 = time.perf_counter()
        ids = list_adapters(lib)
        out["list_ms"] = (time.perf_counter() - t0) * 1e3
        tracemalloc.start()
        t0 = time.perf_counter()
        index = AdapterIndex(lib)
        out["index_startup_ms"] = (time.perf_counter() - t0) * 1e3
        out["index_python_memory_kb"] = tracemalloc.get_traced_memory()[1] / 1024
        tracemalloc.stop()
        assert len(index.ids()) == n == len(ids), (len(index.ids()), n)
        one, two = [], []
        for k in range(2000):
            t0 = time.perf_counter()
            index.lookup(f"lighting:{domains[k % 6]}")
            one.append((time.perf_counter() - t0) * 1e6)
            t0 = time.perf_counter()
            index.lookup(f"lighting:{domains[k % 6]}", f"site:{k % 30:02d}")
            two.append((time.perf_counter() - t0) * 1e6)
        out["lookup_one_tag_us"] = {"p50": _pct(one, 50), "p99": _pct(one, 99)}
        out["lookup_two_tags_us"] = {"p50": _pct(two, 50), "p99": _pct(two, 99)}
        out |= _planner_swaps(lib, ids, swaps, max_resident)
    return out


def _planner_swaps(lib: Path, ids: list[str], swaps: int, max_resident: int) -> dict:
    from vlm_planner.config import PlannerConfig
    from vlm_planner.planner import Planner

    out = {}
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    # the planner as deployed: warm_adapter_slots fills the resident set at start-up
    planner = Planner(PlannerConfig(adapter_library=str(lib), max_resident_adapters=max_resident))
    out["planner_startup_s"] = time.perf_counter() - t0
    out["warm_slots"] = len(planner.resident_adapters)
    out["planner_rss_after_load_mb"] = _rss_mb() - rss0
    rng = np.random.default_rng(0)
    picks = rng.choice(len(ids), size=swaps, replace=False)
    first, disk, resident = [], [], []
    out["picks_already_resident"] = 0
    for i in picks:
        res = planner.swap_adapter(ids[int(i)])
        assert res.success, res.message
        if not res.loaded_from_disk:
            resident.append(res.swap_time_ms)
            out["picks_already_resident"] += 1
        elif res.in_place:
            disk.append(res.swap_time_ms)
        else:  # a slot built by peft (no warm slots, or another layout)
            first.append(res.swap_time_ms)
    for k in range(swaps):  # back and forth between resident adapters
        res = planner.swap_adapter(planner.resident_adapters[k % len(planner.resident_adapters)])
        resident.append(res.swap_time_ms)
    with_base = []  # to the base model and back: these swaps also switch the LoRA layers off / on
    for k in range(swaps):
        for target in ("", planner.resident_adapters[k % len(planner.resident_adapters)]):
            res = planner.swap_adapter(target)
            assert res.success, res.message
            with_base.append(res.swap_time_ms)
    out["swap_from_disk_ms"] = (
        {"p50": _pct(disk, 50), "p99": _pct(disk, 99), "n": len(disk)} if disk else {"n": 0}
    )
    out["first_loads_ms"] = (
        {"p50": _pct(first, 50), "max": max(first), "n": len(first)} if first else {"n": 0}
    )
    out["swap_resident_ms"] = {"p50": _pct(resident, 50), "p99": _pct(resident, 99), "n": len(resident)}
    out["swap_with_base_ms"] = {"p50": _pct(with_base, 50), "p99": _pct(with_base, 99), "n": len(with_base)}
    out["planner_rss_after_swaps_mb"] = _rss_mb() - rss0
    out["resident_after_swaps"] = len(planner.resident_adapters)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="s1s2 adapters bench", description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--swaps", type=int, default=30)
    ap.add_argument("--max-resident", type=int, default=3)
    ap.add_argument("--rank", type=int, default=None, help="time a random-weight LoRA of this rank instead")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    r = run(args.n, args.swaps, args.max_resident, rank=args.rank)
    if args.json:
        print(json.dumps(r, indent=1))
        return 0
    src = r["source"]
    print(f"library of {r['adapters']} adapters ({r['library_bytes_on_disk'] / 1e6:.1f} MB on disk), copies of "
          f"{src['adapter']} rank {src['rank']} ({src['weights_bytes'] / 1e3:.0f} KB weights"
          f"{', untrained' if not src['trained'] else ''})")  # fmt: skip
    print(f"  list ids {r['list_ms']:.1f} ms; tag index start-up {r['index_startup_ms']:.1f} ms, "
          f"{r['index_python_memory_kb']:.0f} KB")  # fmt: skip
    print(f"  lookup 1 tag p50 {r['lookup_one_tag_us']['p50']:.1f} us p99 {r['lookup_one_tag_us']['p99']:.1f} us; "
          f"2 tags p50 {r['lookup_two_tags_us']['p50']:.1f} us")  # fmt: skip
    f = r["first_loads_ms"]
    built = f"{f['n']} built new slots: p50 {f['p50']:.0f} ms" if f["n"] else "none built a new slot"
    print(f"  planner start-up {r['planner_startup_s']:.2f} s ({r['warm_slots']} warm slots); swaps from disk p50 "
          f"{r['swap_from_disk_ms']['p50']:.1f} p99 {r['swap_from_disk_ms']['p99']:.1f} ms ({r['swap_from_disk_ms']['n']}, "
          f"in place; {built}); resident p50 {r['swap_resident_ms']['p50']:.2f} p99 "
          f"{r['swap_resident_ms']['p99']:.2f} ms; to the base model and back p50 {r['swap_with_base_ms']['p50']:.2f} "
          f"p99 {r['swap_with_base_ms']['p99']:.2f} ms")  # fmt: skip
    print(f"  planner RSS +{r['planner_rss_after_load_mb']:.0f} MB after load, +{r['planner_rss_after_swaps_mb']:.0f} MB "
          f"after {args.swaps} disk swaps with max_resident={r['max_resident']} ({r['resident_after_swaps']} resident)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
