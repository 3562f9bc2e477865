"""ONNX export (opset 18, batch 1, torch.export-based exporter) with a parity check in
onnxruntime, and writing policy.onnx + policy.json (format 2) + policy.safetensors (the torch
weights, for fine-tuning and the eager-vs-ONNX benchmark; the config is in policy.json) side by
side."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from safetensors.torch import load_file, save_file

from fast_policy.runtime import PolicyMeta
from fast_policy.spec import ACTION_DIM, ONNX_INPUT, ONNX_OUTPUT, obs_dim
from s1s2.cell import ArmSpec
from s1s2.kinematics import geometry_dict
from s1s2_training.policy.configuration import policy_config_from_dict
from s1s2_training.policy.modeling import PolicyBase, make_model
from s1s2_training.policy.train import stats_of

OPSET = 18


def export_onnx(model: PolicyBase, path: str | Path, check_obs: np.ndarray | None = None,
                atol: float = 1e-4, n_random: int = 32) -> float:  # fmt: skip
    """Export and verify: onnxruntime must match torch within `atol` (metres / logits) on
    `check_obs` (real observations) and on random observations around the training statistics.
    Returns the max abs difference; raises RuntimeError when parity fails."""
    path = Path(path)
    model = model.eval()
    n_obs = obs_dim(model.cfg.spec_version)
    torch.onnx.export(
        model, (torch.zeros(1, n_obs),), str(path), input_names=[ONNX_INPUT], output_names=[ONNX_OUTPUT],
        opset_version=OPSET, dynamo=True, external_data=False, verbose=False,
    )  # fmt: skip
    onnx.checker.check_model(onnx.load(str(path)))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    st = stats_of(model)
    rand = (st["obs_mean"] + st["obs_std"] * rng.standard_normal((n_random, n_obs))).astype(np.float32)
    xs = rand if check_obs is None else np.concatenate([np.asarray(check_obs, np.float32), rand])
    worst = 0.0
    with torch.no_grad():
        for x in xs:
            x = x[None]
            ref = model(torch.from_numpy(x)).numpy()
            got = sess.run([ONNX_OUTPUT], {ONNX_INPUT: x})[0]
            worst = max(worst, float(np.abs(ref - got).max()))
    if not worst <= atol:
        raise RuntimeError(f"ONNX export parity failed: max |torch - onnxruntime| = {worst:.2e} > {atol:.0e}")
    return worst


def save_policy(model: PolicyBase, out_dir: str | Path, arm: ArmSpec, execution: dict,
                trained: bool, provenance: dict, metrics: dict, check_obs=None) -> dict:  # fmt: skip
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    st = stats_of(model)
    k = model.k
    act_mean = np.concatenate([st["act_mean"], np.zeros((k, 1), np.float32)], 1)
    act_std = np.concatenate([st["act_std"], np.ones((k, 1), np.float32)], 1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_onnx = Path(tmp) / "policy.onnx"
        parity = export_onnx(model, tmp_onnx, check_obs)
        metrics = dict(metrics, onnx_parity_max_abs_diff=parity, onnx_opset=OPSET)
        meta = PolicyMeta(
            policy_type=model.cfg.type, chunk_size=k, joint_names=list(arm.joint_names),
            arm_geometry=geometry_dict(arm),
            execution=execution,
            normalization={"obs_mean": st["obs_mean"], "obs_std": st["obs_std"],
                           "action_mean": act_mean, "action_std": act_std},
            trained=trained, config=model.cfg.to_dict(), provenance=provenance, metrics=metrics,
            spec_version=model.cfg.spec_version,
        ).to_json()  # fmt: skip
        (out_dir / "policy.onnx").write_bytes(tmp_onnx.read_bytes())
    (out_dir / "policy.json").write_text(json.dumps(meta, indent=1) + "\n")
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(
        state, str(out_dir / "policy.safetensors"), metadata={"format": "s1s2 policy", "type": model.cfg.type}
    )
    return meta


def load_model(onnx_path: str | Path) -> PolicyBase:
    """policy.onnx's torch twin: the config from policy.json, the weights from policy.safetensors
    (eval mode), for DAgger fine-tuning and eager benchmarks."""
    onnx_path = Path(onnx_path)
    meta = json.loads(onnx_path.with_suffix(".json").read_text())
    model = make_model(policy_config_from_dict(meta["config"]))
    model.load_state_dict(load_file(str(onnx_path.with_suffix(".safetensors"))))
    return model.eval()


__all__ = ["export_onnx", "save_policy", "load_model", "ACTION_DIM"]
