"""Inference latency of the shipped System 1 policies: ONNX Runtime vs PyTorch eager on the same
inputs, interleaved (the report's ratio), and a full controller tick through onnxruntime.

Used by `s1s2 bench` (section system1). Eager needs the torch weights the builder saves beside
the ONNX file (`<name>.safetensors`) and the model class named in policy.json; a policy without
them is measured through ONNX Runtime only, and the report says so.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from s1s2 import repo_root


def shipped_policies() -> list[Path]:
    return sorted(p for p in (repo_root() / "models").glob("policy*/*.onnx"))


def _eager(onnx_path: Path):
    """(callable obs -> actions with torch, or None, why not)."""
    weights = onnx_path.with_suffix(".safetensors")
    if not weights.is_file():
        return None, f"no torch weights ({weights.name}) beside the ONNX file"
    from s1s2_training.policy.export import load_model

    model = load_model(onnx_path)
    import torch

    def run(obs: np.ndarray):
        with torch.inference_mode():
            return model(torch.from_numpy(obs[None]))

    return run, ""


def inference_table(runs: int = 3000, reps: int = 7) -> dict:
    import torch

    from fast_policy.runtime import CPU, PolicySession

    torch.set_num_threads(1)
    out: dict = {"policies": {}}
    lines = [
        "### Policy inference (one CPU thread)",
        "",
        "| policy | ONNX Runtime p50 / p99 (ms) | PyTorch eager p50 / p99 (ms) | ONNX / eager (median, range) |",
        "|---|---|---|---|",
    ]
    rng = np.random.default_rng(0)
    for path in shipped_policies():
        sess = PolicySession(path, providers=[CPU], log=lambda _m: None)
        obs = rng.standard_normal((64, sess.session.get_inputs()[0].shape[-1])).astype(np.float32)
        eager, why = _eager(path)
        fns = {"onnx": sess}
        if eager is not None:
            fns["eager"] = eager
        samples = {k: [] for k in fns}
        per = max(1, runs // reps)
        for _ in range(reps):
            for name, fn in fns.items():
                for k in range(per):
                    x = obs[k % len(obs)]
                    t0 = time.perf_counter()
                    fn(x)
                    samples[name].append((time.perf_counter() - t0) * 1e3)
        rec = {
            k: {"p50": float(np.percentile(v, 50)), "p99": float(np.percentile(v, 99))}
            for k, v in samples.items()
        }
        if eager is not None:
            chunks = np.array_split(np.asarray(samples["onnx"]) / np.asarray(samples["eager"]), reps)
            r = np.array([np.median(c) for c in chunks])
            rec["onnx_over_eager"] = {
                "median": float(np.median(r)),
                "min": float(r.min()),
                "max": float(r.max()),
            }
        out["policies"][path.parent.name] = rec
        e = rec.get("eager")
        lines.append(
            f"| {path.parent.name} | {rec['onnx']['p50']:.3f} / {rec['onnx']['p99']:.3f} | "
            + (
                f"{e['p50']:.3f} / {e['p99']:.3f} | {rec['onnx_over_eager']['median']:.2f} "
                f"({rec['onnx_over_eager']['min']:.2f}..{rec['onnx_over_eager']['max']:.2f}) |"
                if e
                else f"- | {why} |"
            )  # fmt: skip
        )
    lines.append("")
    out["lines"] = lines
    return out
