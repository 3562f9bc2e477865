"""ONNX export of the chunking policy (opset 18, fixed batch 1) with a parity check in onnxruntime,
and writing `policy.onnx` + `policy.json` (config, stats, joint names, provenance) side by side."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from fast_policy.runtime import PolicyMeta
from fast_policy.spec import OBS_DIM, ONNX_INPUT, ONNX_OUTPUT
from s1s2_training.policy.modeling import ChunkPolicy

OPSET = 18  # the torch.export-based exporter's native opset (TensorRT 8.6+ parses it)
JOINT_NAMES = ["shoulder_pan", "shoulder_lift", "elbow", "wrist_pitch"]  # DEFAULT_CELL.arm order


def export_onnx(model: ChunkPolicy, path: str | Path, atol: float = 1e-4, n_check: int = 64) -> float:
    """Export and verify: onnxruntime (CPU) must match torch within `atol` on random inputs.
    Returns the max abs difference; raises RuntimeError when parity fails."""
    path = Path(path)
    model = model.eval()
    dummy = torch.zeros(1, OBS_DIM)
    # torch.export-based exporter (the TorchScript one is deprecated); fixed batch 1, one file
    torch.onnx.export(
        model,
        (dummy,),
        str(path),
        input_names=[ONNX_INPUT],
        output_names=[ONNX_OUTPUT],
        opset_version=OPSET,
        dynamo=True,
        external_data=False,
        verbose=False,
    )
    onnx.checker.check_model(onnx.load(str(path)))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    with torch.no_grad():
        for _ in range(n_check):
            x = rng.standard_normal((1, OBS_DIM)).astype(np.float32)
            ref = model(torch.from_numpy(x)).numpy()
            got = sess.run([ONNX_OUTPUT], {ONNX_INPUT: x})[0]
            worst = max(worst, float(np.abs(ref - got).max()))
    if worst > atol:
        raise RuntimeError(f"ONNX export parity failed: max |torch - onnxruntime| = {worst:.2e} > {atol:.0e}")
    return worst


def save_policy(
    model: ChunkPolicy,
    st: dict,
    out_dir: str | Path,
    trained: bool,
    provenance: dict,
    metrics: dict,
) -> dict:
    """Write out_dir/policy.onnx and out_dir/policy.json atomically-ish; returns the json dict."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_onnx = Path(tmp) / "policy.onnx"
        parity = export_onnx(model, tmp_onnx)
        metrics = dict(metrics, onnx_parity_max_abs_diff=parity, onnx_opset=OPSET)
        meta = PolicyMeta(
            joint_names=JOINT_NAMES,
            chunk_size=model.cfg.chunk_size,
            obs_mean=st["obs_mean"],
            obs_std=st["obs_std"],
            action_mean=st["action_mean"],
            action_std=st["action_std"],
            trained=trained,
            action_relative=model.cfg.action_relative,
            config=model.cfg.to_dict(),
            provenance=provenance,
            metrics=metrics,
        ).to_json()
        (out_dir / "policy.onnx").write_bytes(tmp_onnx.read_bytes())
    (out_dir / "policy.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta
