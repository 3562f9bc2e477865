"""`s1s2 bench` (`make bench`): one benchmark report with every figure the project claims.

    s1s2 bench [--quick] [--out DIR] [--sections system1,system2,...]

Writes DIR (default runs/bench-<time>/) with `report.md` (each figure with the command that made
it, the machine and the date), PNG plots and `results.json` (raw samples). Timings on a shared
2-core machine are noisy: alternatives are compared as ratios measured side by side in the same
run, interleaved over repetitions, with the median and spread; figures that are absolute say so
and name the hardware. `--quick` runs every section with small sample sizes (under 3 minutes);
the full run takes under 30 minutes. Learned-model accuracy figures are read from
models/manifest.json, where the builders that trained and evaluated the models put them (this
report names the command that regenerates each).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

from s1s2 import repo_root

SECTIONS = ("system1", "system2", "lora", "adapters", "learning", "closedloop", "memory", "simulation")


# ------------------------------------------------------------------------------------- helpers
def machine() -> dict:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    versions = {}
    for mod in ("numpy", "torch", "transformers", "peft", "bitsandbytes", "onnxruntime", "mujoco"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - report what is there
            versions[mod] = "n/a"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "os": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "commit": commit(),
        "versions": versions,
        "load_average": os.getloadavg(),
        "note": "absolute timings are of this machine; ratios are measured side by side in one run",
    }


def commit() -> str:
    """The checkout's commit, '+dirty' when it has uncommitted changes; 'unknown' outside git."""
    try:
        run = functools.partial(subprocess.run, cwd=repo_root(), capture_output=True, text=True, timeout=10)
        head = run(["git", "rev-parse", "--short", "HEAD"]).stdout.strip()
        dirty = run(["git", "status", "--porcelain", "--untracked-files=no"]).stdout.strip()
        return (head + ("+dirty" if dirty else "")) if head else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance() -> str:
    """One line for a recorded result: when, at which commit, on what CPU."""
    m = machine()
    return f"{m['date']} at commit {commit()} ({m['cpu']}, {m['cores']} cores)"


def stats(values) -> dict:
    a = np.asarray(values, dtype=float)
    if a.size == 0:
        return {"n": 0}
    return {
        "n": int(a.size),
        "p50": float(np.percentile(a, 50)),
        "p99": float(np.percentile(a, 99)),
        "max": float(a.max()),
        "min": float(a.min()),
        "mean": float(a.mean()),
    }


def interleaved(fns: dict, reps: int, inner: int) -> dict:
    """Time each alternative `inner` times per repetition, alternatives interleaved; per-call ms."""
    samples = {k: [] for k in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            samples[name].append((time.perf_counter() - t0) * 1e3 / inner)
    return samples


def ratio(samples: dict, num: str, den: str) -> dict:
    """Median and spread (min..max over repetitions) of num/den, paired per repetition."""
    r = np.asarray(samples[num]) / np.asarray(samples[den])
    return {"median": float(np.median(r)), "min": float(r.min()), "max": float(r.max()), "reps": int(r.size)}


def save_plot(path: Path, draw) -> str:
    """Save the figure `draw(plt)` returns to `path` (Agg, no display needed); return its name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = draw(plt)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


# ------------------------------------------------------------------------------------- system 1
SYSTEM1_SCENARIOS = ("alone", "with_planner", "whole_stack")


def section_system1(
    quick: bool, out: Path, seconds: float | None = None, only: tuple[str, ...] = SYSTEM1_SCENARIOS
) -> tuple[dict, list[str]]:
    """The 50 Hz loop: tick lateness at the node (its /diagnostics) and command periods at two
    outside subscribers (SCHED_FIFO and normal priority, side by side), alone / with the planner
    inferring beside it / with the whole stack; plus the policy's inference latency."""
    from s1s2.launcher import Launcher
    from s1s2.monitor import MonitorThread
    from s1s2.stack import StackConfig, load_stack

    full = load_stack("config/recycling_sim.yaml")
    by_name = {n.name: n for n in full.nodes}
    scenarios = {
        "alone": ["conveyor_sim", "fast_policy"],
        "with_planner": ["conveyor_sim", "vlm_planner", "fast_policy"],
        "whole_stack": ["conveyor_sim", "vlm_planner", "fast_policy", "adapter_manager"],
    }
    scenarios = {k: v for k, v in scenarios.items() if k in only}
    # The full run gives the whole stack 5 minutes: the real-time goal is zero periods over 30 ms
    # in 5 minutes while the planner infers and the simulator renders.
    windows = {k: seconds or (8.0 if quick else (300.0 if k == "whole_stack" else 60.0)) for k in scenarios}
    res: dict = {"window_s": windows, "scenarios": {}}
    for name, nodes in scenarios.items():
        seconds = windows[name]
        stack = StackConfig(name, tuple(by_name[n] for n in nodes))
        launcher = Launcher(stack, echo=False)
        monitor = None
        with tempfile.TemporaryDirectory() as tmp:
            try:
                launcher.start(ready_timeout=240.0)
                monitor = MonitorThread()
                time.sleep(4.0)

                def policy_diag(m=monitor):
                    return m.node.node_diagnostics("fast_policy")

                env = dict(os.environ, PYTHONUNBUFFERED="1")
                probes = {
                    prio: subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "s1s2.probe",
                            "--seconds",
                            str(seconds),
                            "--fifo",
                            str(prio),
                            "--out",
                            f"{tmp}/probe{prio}.json",
                        ],
                        env=env,
                        stdout=subprocess.PIPE,
                        text=True,
                    )  # fmt: skip
                    for prio in (70, 0)
                }
                for p in probes.values():  # both subscribed: the node's count starts with their window
                    while (line := p.stdout.readline()) and line.strip() != "ready":
                        pass
                time.sleep(1.1)  # a diagnostics message from inside the window
                missed0 = int(policy_diag().get("missed_deadlines", 0))
                for p in probes.values():
                    p.wait(seconds + 60)
                time.sleep(1.1)  # one more diagnostics message, covering the probes' window
                diag = policy_diag()
                keys = ("scheduling", "tick_lateness_p50_ms", "tick_lateness_p99_ms", "tick_lateness_max_ms",
                        "tick_lateness_max_since_start_ms", "publish_max_ms",
                        "publish_p99_ms", "gc_pause_max_ms", "gc_collections", "tick_time_p99_ms")  # fmt: skip
                scen = {"nodes": nodes, "node": {k: diag.get(k) for k in keys}}
                scen["node"]["missed_deadlines"] = int(diag.get("missed_deadlines", 0)) - missed0
                for prio in (70, 0):
                    d = json.loads(Path(f"{tmp}/probe{prio}.json").read_text())
                    periods = np.diff(np.asarray(d["arrivals"])) * 1e3
                    err = np.abs(periods - 20.0)
                    scen["fifo_probe" if prio else "normal_probe"] = {
                        "scheduling": d["scheduling"],
                        "periods_ms": periods.tolist(),
                        "period": stats(periods),
                        "period_error_p99_ms": float(np.percentile(err, 99)) if err.size else None,
                        "periods_over_30ms": int((periods > 30.0).sum()),
                    }
                res["scenarios"][name] = scen
            except Exception as exc:  # noqa: BLE001 - a failed scenario is reported, not fatal
                res["scenarios"][name] = {"error": f"{type(exc).__name__}: {exc}"}
            finally:
                if monitor is not None:
                    monitor.close()
                launcher.stop()

    def draw(plt):
        fig, axes = plt.subplots(
            1, len(scenarios), figsize=(4.2 * len(scenarios), 3.4), sharey=True, squeeze=False
        )
        axes = axes[0]
        for ax, (name, scen) in zip(axes, res["scenarios"].items(), strict=True):
            for key, colour in (("normal_probe", "tab:orange"), ("fifo_probe", "tab:blue")):
                if key in scen and scen[key]["periods_ms"]:
                    ax.hist(scen[key]["periods_ms"], bins=np.linspace(10, 40, 61), alpha=0.6, color=colour,
                            label=key.replace("_", " "))  # fmt: skip
            ax.axvline(20.0, color="k", lw=0.8, ls="--")
            ax.set(title=name.replace("_", " "), xlabel="command period (ms)", yscale="log")
        axes[0].set_ylabel("count")
        axes[0].legend()
        return fig

    res["plot"] = save_plot(out / "system1_periods.png", draw)
    res["gil"] = gil = gil_effect(quick)
    res["inference"] = policy_inference(quick)
    lines = [
        "## System 1: the 50 Hz loop",
        "",
        f"`s1s2 bench --sections system1{' --quick' if quick else ''}`: the scenarios run "
        + ", ".join(f"{k} {v:g} s" for k, v in windows.items())
        + " (`--system1-seconds S` sets all); the node's figures are its own tick lateness against absolute 20 ms deadlines over "
        "its last 60 s of ticks (max since start in brackets, start-up included), and the "
        "deadlines it missed during the window (fast_policy /diagnostics); the "
        "probes are outside subscribers in separate processes, one at SCHED_FIFO 70 (like a real arm driver), "
        "one at normal priority, side by side in the same run.",
        "",
        "| scenario | node lateness p50 / p99 / max [since start] (ms) | missed | GC max (ms) | FIFO probe period p50 / p99 / max (ms), error p99, >30 ms | normal probe p99 / max (ms), >30 ms |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in res["scenarios"].items():
        if "error" in s:
            lines.append(f"| {name} | failed: {s['error']} | | | | |")
            continue
        n, f, o = s["node"], s["fifo_probe"], s["normal_probe"]
        lines.append(
            f"| {name} | {n['tick_lateness_p50_ms']} / {n['tick_lateness_p99_ms']} / {n['tick_lateness_max_ms']} "
            f"[{n['tick_lateness_max_since_start_ms']}] | {n['missed_deadlines']} | {n['gc_pause_max_ms']} | {f['period']['p50']:.2f} / {f['period']['p99']:.2f} / "
            f"{f['period']['max']:.2f}, {f['period_error_p99_ms']:.2f}, {f['periods_over_30ms']} | "
            f"{o['period']['p99']:.2f} / {o['period']['max']:.2f}, {o['periods_over_30ms']} |"
        )
    lines += ["", f"![command periods]({res['plot']})", ""]
    g = gil["lateness_ms"]
    lines += [
        f"The GIL (`RealtimeLoop` at 50 Hz, {gil['scheduling']}, {gil['reps']} interleaved repetitions of "
        f"{gil['seconds_each']:g} s): tick lateness p99 / max with no other thread {g['alone']['p99']:.3f} / "
        f"{g['alone']['max']:.3f} ms; beside a thread running pure Python at the interpreter's default "
        f"switch interval ({1e3 * gil['switch_intervals_s']['default']:g} ms) {g['busy_thread_default']['p99']:.3f} / "
        f"{g['busy_thread_default']['max']:.3f} ms; at fast_policy's ({1e3 * gil['switch_intervals_s']['fast_policy']:g} ms) "
        f"{g['busy_thread_fast_policy']['p99']:.3f} / {g['busy_thread_fast_policy']['max']:.3f} ms. GC: the node's "
        "longest collection is in the table (GC max); DDS publish time p99 / max at the node: "
        + ", ".join(
            f"{k} {v['node'].get('publish_p99_ms')} / {v['node'].get('publish_max_ms')} ms"
            for k, v in res["scenarios"].items()
            if "node" in v
        )
        + ".",
        "",
    ]
    lines += res["inference"].pop("lines")
    return res, lines


def gil_effect(quick: bool) -> dict:
    """The GIL: the loop's tick lateness while another thread of the same process runs pure Python
    (holding the GIL between switch intervals), at the interpreter's default switch interval (5 ms)
    and at fast_policy's (0.5 ms), interleaved over repetitions; plus the same loop with no other thread."""
    import threading

    from fast_policy.config import FastPolicyConfig
    from fast_policy.rt_loop import RealtimeLoop

    fast_interval = FastPolicyConfig().switch_interval_s
    seconds, reps = (1.5, 2) if quick else (5.0, 3)
    default_interval = sys.getswitchinterval()
    out: dict = {"seconds_each": seconds, "reps": reps, "switch_intervals_s": {"default": default_interval,
                                                                              "fast_policy": fast_interval}}  # fmt: skip
    samples: dict[str, list[float]] = {"alone": [], "busy_thread_default": [], "busy_thread_fast_policy": []}
    try:
        for _ in range(reps):
            for name in samples:
                stop = threading.Event()
                busy = None
                if name != "alone":

                    def spin(stop=stop):
                        x = 0
                        while not stop.is_set():
                            x += 1  # pure Python: holds the GIL until the interpreter switches

                    busy = threading.Thread(target=spin, daemon=True)
                sys.setswitchinterval(fast_interval if name.endswith("fast_policy") else default_interval)
                loop = RealtimeLoop(0.02, lambda: None, priority=80, log=lambda *_: None)
                if busy:
                    busy.start()
                loop.start()
                time.sleep(seconds)
                loop.stop()
                stop.set()
                if busy:
                    busy.join()
                samples[name] += [x * 1e3 for x in loop.timing.lateness]
                out["scheduling"] = loop.scheduling
    finally:
        sys.setswitchinterval(default_interval)
    out["lateness_ms"] = {k: stats(v) for k, v in samples.items()}
    return out


def policy_inference(quick: bool) -> dict:
    """ONNX Runtime vs PyTorch eager for each shipped policy (s1s2_training.policy.bench), and the
    full controller tick through onnxruntime."""
    try:
        from s1s2_training.policy.bench import inference_table
    except ImportError as exc:
        return {"error": str(exc), "lines": [f"Policy inference: not measured ({exc})", ""]}
    return inference_table(runs=300 if quick else 3000, reps=3 if quick else 7)


# ------------------------------------------------------------------------------------- system 2
def _sim_images(n: int) -> list[np.ndarray]:
    from conveyor_sim.cell import CellSim, SimConfig

    sim = CellSim(SimConfig(seed=4242, spawn_interval_s=1.5))
    try:
        out = []
        for _ in range(n):
            sim.step(0.7)
            out.append(sim.render())
        return out
    finally:
        sim.close()


def section_system2(quick: bool, out: Path) -> tuple[dict, list[str]]:
    """Plan latency and tokens per second (NF4, one thread), and memory per precision."""
    import torch

    from vlm_planner.config import PlannerConfig
    from vlm_planner.geometry import CameraModel
    from vlm_planner.planner import Planner

    torch.set_num_threads(1)
    images = _sim_images(6 if quick else 20)
    cam = CameraModel.from_cell(width=images[0].shape[1], height=images[0].shape[0])
    # gate_keeps_goal off: every timed plan decodes and parses its own answer (all stamps are 0 here)
    planner = Planner(PlannerConfig(adapter_library="", num_threads=1, gate_keeps_goal=False))
    planner.plan(images[0], "sort the recyclables", 0.0, 0.0, cam)  # warm-up
    total, gen, toks = [], [], []
    for _ in range(3 if quick else 10):
        for img in images:
            r = planner.plan(img, "sort the recyclables", 0.0, 0.0, cam)
            total.append(r.total_s * 1e3)
            gen.append(r.inference_s * 1e3)
            toks.append(max(1, r.new_tokens) / max(r.inference_s, 1e-9))
    res = {"plan_ms": stats(total), "generate_ms": stats(gen), "tokens_per_s": stats(toks),
           "model_id": planner.config.model_id, "trained": planner.vlm.trained}  # fmt: skip
    res["memory"] = memory_by_precision(planner.config.model_id)
    lines = [
        "## System 2: the planner",
        "",
        f"`s1s2 bench --sections system2`: {res['model_id']} (trained: {res['trained']}), 4-bit NF4 + double "
        f"quantisation, one CPU thread, {len(total)} plans on rendered cell images.",
        "",
        f"- plan latency p50 {res['plan_ms']['p50']:.1f} ms, p99 {res['plan_ms']['p99']:.1f} ms (generate() alone "
        f"p50 {res['generate_ms']['p50']:.1f} ms); {res['tokens_per_s']['p50']:.0f} generated tokens/s (p50)",
        "",
        "| precision | quantised linears (bytes) | bits / parameter (linears) | whole model (bytes) | bits / parameter (model) |",
        "|---|---|---|---|---|",
    ]
    for name, m in res["memory"].items():
        if "error" in m:
            lines.append(f"| {name} | not available here: {m['error']} | | | |")
            continue
        lines.append(
            f"| {name} | {m['linear_bytes']:,} | {m['linear_bits_per_param']:.3f} | {m['model_bytes']:,} | "
            f"{m['model_bits_per_param']:.3f} |"
        )
    lines += ["", "NF4 with double quantisation: the QLoRA paper's 4.127 bits per parameter are 4 bits + 8-bit absmax "
              "per 64 weights + an fp32 second-level scale per 256 absmax; bitsandbytes pads blocks, hence a little more "
              "on a small model.", ""]  # fmt: skip
    return res, lines


def memory_by_precision(model_id: str) -> dict:
    """Bytes of the linear layers and of the whole model, loaded in fp32, bf16, int8 and NF4 + DQ."""
    import torch
    from transformers import AutoModelForImageTextToText, BitsAndBytesConfig

    from s1s2 import resolve_path
    from vlm_planner.model import nf4_config

    src = str(resolve_path(model_id))
    fp32 = AutoModelForImageTextToText.from_pretrained(src, local_files_only=True)
    n_params = sum(p.numel() for p in fp32.parameters())
    lin_names = {n for n, m in fp32.named_modules() if isinstance(m, torch.nn.Linear) and "lm_head" not in n}
    lin_params = sum(m.weight.numel() for n, m in fp32.named_modules() if n in lin_names)
    out = {}
    variants = {
        "fp32": {"dtype": torch.float32},
        "bf16": {"dtype": torch.bfloat16},
        "int8": {"quantization_config": BitsAndBytesConfig(load_in_8bit=True), "device_map": {"": "cpu"}},
        "nf4_double_quant": {"quantization_config": nf4_config(torch.float32), "device_map": {"": "cpu"}},
    }
    for name, kw in variants.items():
        try:
            m = AutoModelForImageTextToText.from_pretrained(src, local_files_only=True, **kw)
            lin = 0
            for n, mod in m.named_modules():
                if n in lin_names:
                    lin += sum(t.numel() * t.element_size() for t in _linear_tensors(mod))
            total = int(m.get_memory_footprint())
            out[name] = {
                "linear_bytes": int(lin), "linear_bits_per_param": 8 * lin / lin_params,
                "model_bytes": total, "model_bits_per_param": 8 * total / n_params,
            }  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - e.g. int8 kernels missing on this CPU
            out[name] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"}
    return out


def _linear_tensors(mod):
    """The weight (packed for quantised layers) and the quantisation state's tensors."""
    w = mod.weight
    yield w
    qs = getattr(w, "quant_state", None)
    if qs is not None:
        for t in (qs.absmax, getattr(getattr(qs, "state2", None), "absmax", None), getattr(qs, "code", None)):
            if t is not None:
                yield t
    scb = getattr(w, "SCB", None)
    if scb is not None:
        yield scb


# ------------------------------------------------------------------------------------- LoRA
def section_lora(quick: bool, out: Path) -> tuple[dict, list[str]]:
    """Trainable parameters vs full fine-tuning; merged vs unmerged inference latency."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    from s1s2 import resolve_path
    from s1s2.memory import ModelShape, lora_params

    src = str(resolve_path("models/sim_vlm"))
    torch.set_num_threads(1)
    res: dict = {"lecture_example": {}, "sim_model": {}}
    shape = ModelShape(4096 * 4096, linear={"q_proj": (4096, 4096, 1)})
    res["lecture_example"] = {"full": 4096 * 4096, "lora_r16": lora_params(shape, 16, ("q_proj",))}
    targets = {
        "llm q/k/v/o": r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj)$",
        "vision q/k/v/out": r".*vision_tower.*\.(q_proj|k_proj|v_proj|out_proj)$",
        "projector": r".*multi_modal_projector\.(linear_1|linear_2)$",
    }
    for name, pat in targets.items():
        base = AutoModelForImageTextToText.from_pretrained(src, local_files_only=True)
        full = sum(p.numel() for p in base.parameters())
        m = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules=pat))
        res["sim_model"][name] = {
            "full": full,
            "lora_r8": sum(p.numel() for p in m.parameters() if p.requires_grad),
        }
    # merged vs unmerged: a LoRA with B != 0 on a full-precision base, the same input
    base = AutoModelForImageTextToText.from_pretrained(src, local_files_only=True).eval()
    m = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules=targets["llm q/k/v/o"])).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for n, p in m.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    ids = torch.randint(5, 200, (1, 80), generator=g)
    with torch.inference_mode():
        unmerged_out = m(input_ids=ids).logits
        merged = m.merge_and_unload()
        merged_out = merged(input_ids=ids).logits
    unmerged = get_peft_model(
        AutoModelForImageTextToText.from_pretrained(src, local_files_only=True).eval(),
        LoraConfig(r=8, lora_alpha=16, target_modules=targets["llm q/k/v/o"]),
    ).eval()
    samples = interleaved(
        {"unmerged": lambda: unmerged(input_ids=ids), "merged": lambda: merged(input_ids=ids)},
        reps=3 if quick else 9, inner=5 if quick else 20,
    )  # fmt: skip
    res["merge"] = {
        "max_abs_logit_diff": float((merged_out - unmerged_out).abs().max()),
        "ms": {k: stats(v) for k, v in samples.items()},
        "merged_over_unmerged": ratio(samples, "merged", "unmerged"),
    }
    ex = res["lecture_example"]
    lines = [
        "## LoRA",
        "",
        "`s1s2 bench --sections lora`",
        "",
        f"- the lecture's example, a 4096x4096 projection at r = 16: {ex['lora_r16']:,} trainable parameters "
        f"against {ex['full']:,}, {ex['full'] // ex['lora_r16']}x fewer",
        "",
        "| sim model, r = 8 | trainable (LoRA) | full fine-tuning | ratio |",
        "|---|---|---|---|",
    ]
    for name, d in res["sim_model"].items():
        lines.append(f"| {name} | {d['lora_r8']:,} | {d['full']:,} | {d['full'] / d['lora_r8']:.0f}x |")
    mg = res["merge"]
    lines += [
        "",
        f"- merged vs unmerged (fp32 base, B != 0): max |logit difference| {mg['max_abs_logit_diff']:.2e}; "
        f"latency merged / unmerged = {mg['merged_over_unmerged']['median']:.2f} (median of {mg['merged_over_unmerged']['reps']} "
        f"interleaved repetitions, range {mg['merged_over_unmerged']['min']:.2f}..{mg['merged_over_unmerged']['max']:.2f}): "
        "merging removes the adapter's extra matmuls, so it adds no latency.",
        "",
    ]
    return res, lines


# ------------------------------------------------------------------------------------- adapters
def section_adapters(quick: bool, out: Path) -> tuple[dict, list[str]]:
    """Swap latency resident / from disk / in-place hot swap vs reloading the model; sizes; a
    library of hundreds (adapter_manager.library_bench)."""
    from adapter_manager.library_bench import run as library_bench
    from s1s2 import resolve_path
    from vlm_planner.config import PlannerConfig
    from vlm_planner.model import load_vlm

    n = 60 if quick else 300
    lib = library_bench(n=n, swaps=8 if quick else 30, max_resident=3)
    # the case: a rank-16 adapter of the sim model (random weights: latency needs shapes only)
    lib16 = library_bench(n=n, swaps=8 if quick else 30, max_resident=3, rank=16)
    reload_s = []
    for _ in range(2 if quick else 5):
        reload_s.append(load_vlm(PlannerConfig(adapter_library="")).load_s * 1e3)
    base_bytes = sum(f.stat().st_size for f in resolve_path("models/sim_vlm").glob("*.safetensors"))
    adapter_bytes = {
        d.name: (d / "adapter_model.safetensors").stat().st_size for d in resolve_path("models/adapters").iterdir()
        if (d / "adapter_model.safetensors").is_file()
    }  # fmt: skip
    res = {"library": lib, "library_rank16": lib16, "reload_model_ms": stats(reload_s), "base_weights_bytes": base_bytes,
           "adapter_weights_bytes": adapter_bytes}  # fmt: skip
    res["hotswap"] = hotswap_latency(quick)
    r = res["reload_model_ms"]["p50"]
    s, sb = lib["swap_resident_ms"], lib["swap_with_base_ms"]
    lines = [
        "## Adapters",
        "",
        f"`s1s2 adapters bench --n {n}` (inside `s1s2 bench --sections adapters`)",
        "",
        f"- swap, resident: p50 {s['p50']:.2f} ms, p99 {s['p99']:.2f} ms; reloading the whole 4-bit model: p50 "
        f"{r:.0f} ms ({r / max(s['p99'], 1e-9):.0f}x the resident swap's p99; the sim model is 9 MB: the ratios "
        "grow with the base model's size)",
        f"- swap between the base model and a resident adapter (switches the LoRA layers off / on): p50 "
        f"{sb['p50']:.2f} ms, p99 {sb['p99']:.2f} ms",
    ]
    for name, lb in (("shipped rank-8", lib), ("rank-16 (random weights)", lib16)):
        d, f = lb["swap_from_disk_ms"], lb["first_loads_ms"]
        lines.append(
            f"- {name} adapters ({lb['source']['weights_bytes'] / 1e3:.0f} KB): from disk into a reused slot "
            f"(verify hashes + copy in place) p50 {d['p50']:.1f} ms, p99 {d['p99']:.1f} ms (reloading the "
            f"model takes {r / max(d['p50'], 1e-9):.1f}x its p50, {r / max(d['p99'], 1e-9):.1f}x its p99); "
            + (f"{f['n']} loads built new slots through peft: p50 {f['p50']:.0f} ms, max {f['max']:.0f} ms"
               if f["n"] else f"no load built a new slot: the planner filled its {lb['warm_slots']} slots at "
               f"start-up ({lb['planner_startup_s']:.2f} s with them)")
        )  # fmt: skip
    if "ms" in res["hotswap"]:
        lines.append(f"- for comparison, peft's own in-place hot swap (peft.utils.hotswap.hotswap_adapter, which "
                     f"re-reads and remaps the state dict): p50 {res['hotswap']['ms']['p50']:.1f} ms")  # fmt: skip
    else:
        lines.append(f"- in-place hot swap: {res['hotswap'].get('error')}")
    sizes = list(adapter_bytes.values())
    lines += [
        f"- adapter weights on disk: {min(sizes) / 1e3:.0f}..{max(sizes) / 1e3:.0f} KB each vs the base model's "
        f"{base_bytes / 1e6:.1f} MB ({base_bytes / max(sizes):.0f}x)"
        if sizes
        else "- no adapters",
        f"- a library of {lib['adapters']}: tag index start-up {lib['index_startup_ms']:.0f} ms "
        f"({lib['index_python_memory_kb']:.0f} KB), lookup by tag p50 {lib['lookup_one_tag_us']['p50']:.0f} us, "
        f"planner memory stays bounded by its resident set ({lib['resident_after_swaps']} resident after "
        f"{lib['swap_from_disk_ms']['n']} disk swaps: RSS {lib['planner_rss_after_swaps_mb']:+.0f} MB vs "
        f"{lib['planner_rss_after_load_mb']:+.0f} MB after loading)",
        "",
    ]
    return res, lines


def hotswap_latency(quick: bool) -> dict:
    try:
        from peft.utils.hotswap import hotswap_adapter

        from s1s2 import resolve_path
        from vlm_planner.config import PlannerConfig
        from vlm_planner.planner import Planner
    except ImportError as exc:
        return {"error": f"not available ({exc})"}
    planner = Planner(PlannerConfig())
    root = resolve_path("models/adapters")

    def shape(name: str) -> str:  # peft's in-place hot swap needs the same LoRA settings
        cfg = json.loads((root / name / "adapter_config.json").read_text())
        keys = ("r", "lora_alpha", "lora_dropout", "target_modules", "use_dora", "bias")
        return json.dumps({k: cfg.get(k) for k in keys}, sort_keys=True, default=str)

    groups: dict[str, list[str]] = {}
    for n in planner.library_adapters:
        groups.setdefault(shape(n), []).append(n)
    names = max(groups.values(), key=len, default=[])
    if len(names) < 2:
        return {"error": "needs two adapters with the same LoRA settings"}
    planner.swap_adapter(names[0])
    ms = []
    for k in range(4 if quick else 12):
        src = root / names[1 + k % (len(names) - 1)]
        t0 = time.perf_counter()
        hotswap_adapter(planner.switcher.peft, str(src), adapter_name=planner.switcher.slots[names[0]])
        ms.append((time.perf_counter() - t0) * 1e3)
    return {"ms": stats(ms)}


# ------------------------------------------------------------------------------------- learning
def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}"


def _steps_of(manifest: dict):
    """Training steps from the finetune's notes ('... 600 steps x 16 ...'), None if absent."""
    import re

    m = re.search(r"(\d+) steps x", manifest.get("notes", ""))
    return int(m.group(1)) if m else None


def _adapter_rows(manifests: dict[str, dict]) -> list[dict]:
    """One row per trained adapter manifest: base vs adapter accuracy in its domain and daylight
    with it active (held-out frames, measured by the finetune that made it)."""
    rows = []
    for name, m in manifests.items():
        mt = m.get("metrics", {})
        if not m.get("trained") or "adapter_domain" not in mt:
            continue
        rows.append({
            "name": name,
            "domain": m.get("data", {}).get("domain", name),
            "strategy": m.get("strategy"),
            "mix": m.get("data", {}).get("mix_lambda"),
            "steps": _steps_of(m),
            "train_frames": m.get("data", {}).get("domain_frames"),
            "base_domain": mt["base_domain"].get("class_acc"),
            "adapter_domain": mt["adapter_domain"].get("class_acc"),
            "base_daylight": mt.get("base_daylight", {}).get("class_acc"),
            "adapter_daylight": mt.get("adapter_daylight", {}).get("class_acc"),
            "trainable_parameters": mt.get("trainable_parameters"),
            "adapter_bytes": mt.get("adapter_bytes"),
            "train_s": mt.get("train_s"),
            "min_confidence": mt.get("min_confidence"),
            "latent_cosine_median": mt.get("latent_cosine", {}).get("adapter_in_domain_vs_base_in_daylight_median"),
        })  # fmt: skip
    return rows


def section_learning(quick: bool, out: Path) -> tuple[dict, list[str]]:
    """What the models learned: base vs adapter per lighting domain (the shipped library's
    manifests), strategies and forgetting with / without data mixing (results/adapter_ablations),
    the nightly cycle (results/nightly_cycle.json: too long for `make bench`, recorded with its
    command, commit and date), and the model builders' metrics (models/manifest.json). Closed-loop
    sorting per domain is measured live by section_closedloop."""
    from dataclasses import asdict

    from s1s2.adapters import list_adapters, read_manifest

    root = repo_root()
    res: dict = {}
    lines = ["## Learning", ""]

    # -- shipped adapters, per domain (through the library's own checked reader)
    lib = root / "models" / "adapters"
    shipped = {a: asdict(read_manifest(lib / a)) for a in list_adapters(lib)}
    res["adapters"] = rows = _adapter_rows(shipped)
    lines += [
        "### Base vs adapter per lighting domain",
        "",
        "Held-out frames (seeds 930000.. / 940000.., never trained or calibrated on) measured by `s1s2 planner "
        "finetune` when it made each adapter (`models/adapters/<d>/s1s2_adapter.json`; rebuilt by `s1s2 models "
        "adapters`). Target class accuracy, NF4 base.",
        "",
        "| domain | base in domain | adapter in domain | base in daylight | daylight with the adapter active "
        "(forgetting) | own min_confidence | latent cosine median |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['domain']} | {_pct(r['base_domain'])} | {_pct(r['adapter_domain'])} | {_pct(r['base_daylight'])} | "
            f"{_pct(r['adapter_daylight'])} | {r['min_confidence']} | {r['latent_cosine_median']} |"
        )
    lines.append("")

    # -- ablations: strategies and mixing
    abl_dir = root / "results" / "adapter_ablations"
    ablations = {p.stem: json.loads(p.read_text()) for p in sorted(abl_dir.glob("*.json"))}
    abl = _adapter_rows(ablations)
    ship_by_domain = {r["domain"]: r for r in rows}
    res["ablations"] = abl
    if abl:
        lines += [
            "### Strategies and data mixing (recorded ablations)",
            "",
            "`s1s2 planner finetune --domain D --strategy S --mix LAMBDA --rank 8 --alpha 16 --steps 600 "
            "--train-episodes 16 --out runs/vlm_ft/<name>`: the manifests of those runs are kept in "
            "`results/adapter_ablations/` (the weights are not). One seed each, equal steps; the shipped adapter "
            "of the domain (projector+vision, lambda 0.1) is the reference row.",
            "",
            "| domain | strategy | lambda | steps | domain frames | in domain | daylight with it active | trainable params | adapter bytes |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in sorted([*abl, *(ship_by_domain[d] | {"strategy": f"{ship_by_domain[d]['strategy']} (shipped)"}
                                 for d in {a["domain"] for a in abl} if d in ship_by_domain)],
                        key=lambda r: (r["domain"], str(r["strategy"]), r["mix"] or 0, r["steps"] or 0)):  # fmt: skip
            lines.append(
                f"| {r['domain']} | {r['strategy']} | {r['mix']} | {r['steps']} | {r['train_frames']} | {_pct(r['adapter_domain'])} | "
                f"{_pct(r['adapter_daylight'])} | {r['trainable_parameters']} | {r['adapter_bytes']} |"
            )
        lines.append("")

    # -- the nightly cycle (recorded: day 1, the night and two day-2 runs take ~20 min)
    cycle_p = root / "results" / "nightly_cycle.json"
    if cycle_p.is_file():
        c = json.loads(cycle_p.read_text())
        res["nightly_cycle"] = c
        g = c["nightly"]["gate"]

        def day(k):
            t = c[k]["totals"]
            return f"{t['correct']} correct, {t['wrong_bin']} wrong, {t['missed']} missed, {t['dropped']} dropped"

        lines += [
            "### Continual learning: one nightly cycle in lighting no adapter covers (recorded)",
            "",
            f"`{c['command']}` ({c['recorded']}), lighting `{json.dumps(c['lighting_spec'])}`, "
            f"{c['day_s']:g} s days:",
            "",
            f"- day 1 (base only): {day('day1')}; {c['day1']['failures_recorded']} failures recorded",
            f"- night: gate {'passed' if g['passed'] else 'failed'} (context +{g['context_gain_pts']} points, "
            f"daylight -{g['general_drop_pts']} points; needs +{g['min_gain_pts']:g} / at most "
            f"-{g['max_general_drop_pts']:g}), registered: {c['nightly']['registered']}, {c['nightly']['seconds']:.0f} s",
            f"- day 2 with the new adapter: {day('day2')}",
            f"- day 2 control (same seed, no new adapter): {day('day2_control')}",
            "",
        ]

    # -- the sim VLM's pretraining tricks (recorded: 13 min a variant, `python -m s1s2_training.vlm.ablate`)
    for p in sorted((root / "results").glob("vlm_pretrain_ablation_*.json"))[-1:]:
        rec = json.loads(p.read_text())
        # one row per (variant, seed): the committed command's run over the wrapper's, which it reproduced
        runs = {
            (r["variant"], r["seed"]): r
            for r in sorted(rec["runs"], key=lambda r: r.get("made_by") != "wrapper")
        }
        res["pretrain_ablation"] = list(runs.values())
        lines += [
            f"### What mattered in pretraining (recorded ablation, `{p.relative_to(root)}`)",
            "",
            rec["what"],
            "",
            "| variant | seed | class, default | class, dense | class, both | pick error median default / dense (cm) |",
            "|---|---|---|---|---|---|",
        ]
        for (variant, seed), r in sorted(runs.items()):
            d, n = r["default"], r["dense"]
            lines.append(
                f"| {variant} | {seed} | {_pct(d['class_acc'])} | {_pct(n['class_acc'])} | {_pct(r['class_acc_both'])} | "
                f"{d['pick_err_median_cm']:.2f} / {n['pick_err_median_cm']:.2f} |"
            )
        lines.append("")

    def draw(plt):
        fig, axes = plt.subplots(1, 2 if abl else 1, figsize=(11 if abl else 6, 3.6), squeeze=False)
        ax = axes[0][0]
        x = np.arange(len(rows))
        for k, (key, label) in enumerate((("base_domain", "base in domain"), ("adapter_domain", "adapter in domain"),
                                          ("adapter_daylight", "daylight, adapter active"))):  # fmt: skip
            ax.bar(x + (k - 1) * 0.27, [100 * (r[key] or 0) for r in rows], 0.27, label=label)
        if rows and rows[0]["base_daylight"] is not None:
            ax.axhline(100 * rows[0]["base_daylight"], color="k", ls="--", lw=0.8, label="base in daylight")
        ax.set_xticks(x, [r["domain"].replace("_", "\n") for r in rows], fontsize=7)
        ax.set(ylabel="target class accuracy (%)", ylim=(0, 120), title="shipped adapters (held-out)")
        ax.legend(fontsize=7, ncol=2, loc="upper center")
        if abl:
            ax = axes[0][1]
            # the mixing sweep: the shipped recipe with only lambda changed
            mixes = sorted((r for r in [*abl, *rows] if r["strategy"] == "projector+vision"
                            and r["steps"] == ship_by_domain.get(r["domain"], {}).get("steps")),
                           key=lambda r: (r["domain"], r["mix"]))  # fmt: skip
            for dom, marker in (("warm_tungsten", "o"), ("night_noise", "s")):
                pts = [r for r in mixes if r["domain"] == dom]
                ax.plot([r["mix"] for r in pts], [100 * r["adapter_daylight"] for r in pts], marker=marker,
                        label=f"{dom}: daylight with it")  # fmt: skip
                ax.plot([r["mix"] for r in pts], [100 * r["adapter_domain"] for r in pts], marker=marker, ls=":",
                        label=f"{dom}: in domain")  # fmt: skip
            ax.set(xlabel="lambda (share of daylight frames per batch)", ylabel="class accuracy (%)",
                   title="data mixing vs forgetting")  # fmt: skip
            ax.legend(fontsize=7)
        return fig

    res["plot"] = save_plot(out / "learning_adapters.png", draw)
    lines += [f"![adapters]({res['plot']})", ""]

    # -- the builders' own metrics
    manifest = json.loads((root / "models" / "manifest.json").read_text())["artifacts"]
    res["models"] = {name: rec.get("metrics", {}) for name, rec in manifest.items()}
    lines += ["### Model builders (`models/manifest.json`)", "",
              "Each artifact's command regenerates and re-measures it.", ""]  # fmt: skip
    for name, rec in manifest.items():
        lines.append(
            f"- **{name}** (`{rec.get('command')}`, trained: {rec.get('trained')}, {rec.get('build_seconds', '?')} s): "
            f"{rec.get('notes', '')[:400]}"
        )
    lines.append("")
    return res, lines


# ------------------------------------------------------------------------------------- memory
def section_memory(quick: bool, out: Path) -> tuple[dict, list[str]]:
    """`s1s2 memory` on the lecture's examples, and its QLoRA estimate against the project's own
    QLoRA fine-tune measured tensor by tensor (s1s2_training.vlm.memcheck)."""
    from s1s2.memory import GB, ModelShape, estimate

    res: dict = {"lecture": {}}
    lines = ["## Memory: `s1s2 memory` and a measured QLoRA fine-tune", ""]
    for n in (7e9, 14e9):
        e = estimate(ModelShape(n), "full", "fp32", "adamw32")
        res["lecture"][f"{n / 1e9:.0f}B"] = e.as_dict()
        lines.append(f"- `s1s2 memory --params {n / 1e9:.0f}e9 --method full --dtype fp32`: weights {e.weights / GB:.0f} GB, "
                     f"Adam states {e.optimizer / GB:.0f} GB, gradients {e.gradients / GB:.0f} GB")  # fmt: skip
    lines.append("")
    try:
        from s1s2_training.vlm.memcheck import table
    except ImportError as exc:
        return res | {"error": str(exc)}, [*lines, f"QLoRA check not run: {exc}", ""]
    runs = (
        {"no checkpointing": False} if quick else {"no checkpointing": False, "gradient checkpointing": True}
    )
    for label, ckpt in runs.items():
        # each in its own process: the peak RSS is per process
        cmd = [sys.executable, "-m", "s1s2_training.vlm.memcheck", "--out", str(out / f"memcheck_{int(ckpt)}.json"),
               "--batch-size", "4" if quick else "16",
               "--steps", "2" if quick else "3", *(["--episode-s", "10"] if quick else []),
               *(["--gradient-checkpointing"] if ckpt else [])]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[1:])} failed: {proc.stderr[-800:]}")
        r = json.loads((out / f"memcheck_{int(ckpt)}.json").read_text())
        res[label] = r
        c = r["config"]
        lines += [
            f"QLoRA fine-tune of the sim VLM ({c['strategy']} LoRA r = {c['rank']}, batch {c['batch_size']}, "
            f"{label}, {r['measured']['optimizer']}; `python -m s1s2_training.vlm.memcheck --batch-size "
            f"{c['batch_size']}{' --gradient-checkpointing' if ckpt else ''}`) against `{r['comparison']['estimate_command']}"
            f"{' --checkpointing' if ckpt else ''}`:",
            "",
            *table(r),
            "",
            f"Process peak RSS growth over the run: {r['measured']['process_peak_rss_growth_mb']} MB (torch's and "
            "the libraries' own memory besides these tensors).",
            "",
        ]
    return res, lines


# ------------------------------------------------------------------------------------- closed loop
def section_closedloop(quick: bool, out: Path) -> tuple[dict, list[str]]:
    """The whole stack sorting through a shift day (the cell's lighting steps through the domains)
    with the adapter manager on and off (the planner's base model only), and the scripted expert on
    the same seed: correct-sort counts per domain, through the ROS nodes at their real rates."""
    from conveyor_sim.lighting import DOMAINS
    from s1s2.demo import run_shift_days
    from s1s2.shiftday import table

    domain_s, seed = (15.0, 0) if quick else (40.0, 0)
    schedule = [(d, domain_s) for d in (("daylight", "night_noise") if quick else DOMAINS)]
    names = ("manager ON",) if quick else ("manager ON", "manager OFF", "scripted expert")
    runs = run_shift_days(schedule, seed, out / "closedloop", names)
    ok = {k: v for k, v in runs.items() if "error" not in v}
    res = {"schedule": schedule, "seed": seed, "runs": runs}
    lines = [
        "## Closed loop: sorting per lighting domain, adapter manager on and off",
        "",
        f"`s1s2 bench --sections closedloop{' --quick' if quick else ''}` (= `s1s2 demo --skip-stack --skip-expert "
        f"--domain-s {domain_s:g} --seed {seed}` without the ORACLE run): the whole stack through the ROS nodes, "
        f"the cell's lighting changing every {domain_s:g} s, seed {seed}. Correct / items that reached the end of "
        "the belt in that domain (w = wrong bin, m = missed, d = dropped). manager OFF = the same stack without "
        "the adapter manager (the base model in every lighting); scripted expert = the cell's own controller on "
        "the same items, the ceiling. Items per domain are few, so differences of one or two items are noise.",
        "",
    ]
    lines += table(ok, [d for d, _ in schedule], percent=True) if ok else []
    for k, v in runs.items():
        if "error" in v:
            lines.append(f"- {k}: FAILED: {v['error'][:300]}")
    if "manager ON" in ok:
        lines.append(f"\nAdapter swaps with the manager on: {ok['manager ON']['adapter_swaps']} "
                     f"({len(schedule) - 1} lighting changes).")  # fmt: skip
        pc = ok["manager ON"].get("planner") or {}
        if "plans" in pc:
            lines.append(f"Plan cycles with the manager on (the planner's /diagnostics): {pc['plans']} plans, "
                         f"{pc.get('skipped_ticks', 0)} skipped ticks, {pc.get('plans_waited_for_swap', 0)} plans "
                         f"waited for a swap (longest {pc.get('swap_wait_ms_max', 0.0):.1f} ms).")  # fmt: skip
    if ok:

        def draw(plt):
            fig, ax = plt.subplots(figsize=(8, 3.4))
            x = np.arange(len(schedule))
            for k, (name, r) in enumerate(ok.items()):
                rates = []
                for d, _ in schedule:
                    c = r["domains"].get(d, {})
                    tot = sum(c.values()) if c else 0
                    rates.append(100 * c.get("correct", 0) / tot if tot else 0)
                ax.bar(x + (k - (len(ok) - 1) / 2) * 0.8 / len(ok), rates, 0.8 / len(ok), label=name)
            ax.set_xticks(x, [d.replace("_", "\n") for d, _ in schedule], fontsize=7)
            ax.set(
                ylabel="correct sorts (%)",
                ylim=(0, 120),
                title=f"shift day, {domain_s:g} s per domain, seed {seed}",
            )
            ax.legend(fontsize=7, ncol=3, loc="upper center")
            return fig

        res["plot"] = save_plot(out / "closedloop_shift_day.png", draw)
        lines += ["", f"![shift day]({res['plot']})"]
    lines.append("")
    return res, lines


# ------------------------------------------------------------------------------------- simulation
def section_simulation(quick: bool, out: Path) -> tuple[dict, list[str]]:
    from conveyor_sim.bench import run_bench

    r = run_bench(seconds=4.0 if quick else 20.0)
    lines = [
        "## Simulation",
        "",
        f"`s1s2 sim bench --seconds {r['sim_seconds']:.0f}`: real-time factor {r['no_camera']['real_time_factor']:.1f}x "
        f"without the camera, {r['camera']['real_time_factor']:.1f}x with it ({r['width']}x{r['height']} at "
        f"{r['camera_hz']:g} Hz); render {r['camera']['render_ms_mean']:.1f} ms/frame mean, "
        f"{r['camera']['render_ms_p95']:.1f} ms p95",
        "",
    ]
    return r, lines


SECTION_FNS = {
    "system1": section_system1,
    "system2": section_system2,
    "lora": section_lora,
    "adapters": section_adapters,
    "learning": section_learning,
    "closedloop": section_closedloop,
    "memory": section_memory,
    "simulation": section_simulation,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="s1s2 bench", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small samples: under 3 minutes")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--sections", default=",".join(SECTIONS))
    ap.add_argument("--system1-seconds", type=float, default=None,
                    help="seconds per System 1 scenario (default: 60, whole_stack 300; --quick 8)")  # fmt: skip
    ap.add_argument("--system1-scenarios", default=",".join(SYSTEM1_SCENARIOS),
                    help=f"subset of {','.join(SYSTEM1_SCENARIOS)}")  # fmt: skip
    args = ap.parse_args(argv)
    scen = tuple(s for s in args.system1_scenarios.split(",") if s)
    if not scen or set(scen) - set(SYSTEM1_SCENARIOS):
        print(f"s1s2 bench: --system1-scenarios {args.system1_scenarios!r}; known: {', '.join(SYSTEM1_SCENARIOS)}",
              file=sys.stderr)  # fmt: skip
        return 2
    fns = dict(
        SECTION_FNS, system1=functools.partial(section_system1, seconds=args.system1_seconds, only=scen)
    )
    sections = [s for s in args.sections.split(",") if s]
    unknown = [s for s in sections if s not in SECTION_FNS]
    if unknown:
        print(f"s1s2 bench: unknown section(s) {unknown}; known: {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    out = args.out or repo_root() / "runs" / time.strftime("bench-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MUJOCO_GL", "egl")
    mach = machine()
    results: dict = {"machine": mach, "quick": args.quick, "sections": {}}
    report = [
        f"# s1s2 benchmark report{' (quick)' if args.quick else ''}",
        "",
        f"{mach['date']} on {mach['cpu']} ({mach['cores']} cores), Python {mach['python']}, "
        + ", ".join(f"{k} {v}" for k, v in mach["versions"].items())
        + f". Load average at start {', '.join(f'{x:.2f}' for x in mach['load_average'])}.",
        "",
        f"Command: `s1s2 bench{' --quick' if args.quick else ''} --sections {','.join(sections)}"
        + (f" --system1-seconds {args.system1_seconds:g}" if args.system1_seconds else "")
        + (f" --system1-scenarios {','.join(scen)}" if scen != SYSTEM1_SCENARIOS else "")
        + "`. Absolute timings "
        "are of this machine; comparisons are ratios measured side by side in the same run.",
        "",
    ]
    code = 0
    t_all = time.monotonic()
    for name in sections:
        t0 = time.monotonic()
        print(f"[bench] {name} ...", flush=True)
        try:
            res, lines = fns[name](args.quick, out)
        except Exception as exc:  # noqa: BLE001 - a broken section is reported, the rest still runs
            code = 1
            res = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
            lines = [f"## {name}", "", f"FAILED: {res['error']}", ""]
        res["seconds"] = round(time.monotonic() - t0, 1)
        results["sections"][name] = res
        report += lines
        print(f"[bench] {name}: {res['seconds']} s", flush=True)
    results["seconds"] = round(time.monotonic() - t_all, 1)
    report.append(f"Total: {results['seconds']:.0f} s.")
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    (out / "report.md").write_text("\n".join(report) + "\n")
    print(f"[bench] report: {out / 'report.md'}")
    return code
