"""Test helpers for the fast_policy tests: a tiny linear ONNX policy + policy.json, built with
onnx.helper (no torch), and goal/limits factories."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from fast_policy.goal_tracker import GoalData
from fast_policy.runtime import PolicyMeta
from fast_policy.spec import ACTION_DIM, OBS_DIM
from s1s2.topics import LATENT_DIM

JOINTS = ["shoulder_pan", "shoulder_lift", "elbow", "wrist_pitch"]


def tiny_meta(k: int = 10, trained: bool = False, execution: dict | None = None) -> PolicyMeta:
    from s1s2.cell import DEFAULT_CELL
    from s1s2.kinematics import geometry_dict

    return PolicyMeta(
        policy_type="mlp",
        chunk_size=k,
        joint_names=list(JOINTS),
        arm_geometry=geometry_dict(DEFAULT_CELL.arm),
        execution={"chunk_mode": "aim", "aim_index": -1, "suction_index": 0}
        if execution is None
        else execution,
        normalization={
            "obs_mean": np.zeros(OBS_DIM, np.float32),
            "obs_std": np.ones(OBS_DIM, np.float32),
            "action_mean": np.zeros((k, ACTION_DIM), np.float32),
            "action_std": np.ones((k, ACTION_DIM), np.float32),
        },
        trained=trained,
        provenance={"source": "tests/unit/policy_helpers.py"},
    )


def write_tiny_policy(
    out_dir: Path,
    k: int = 10,
    bias: float = 0.0,
    seed: int = 0,
    obs_dim: int = OBS_DIM,
    meta: dict | None = None,
) -> Path:
    """obs (1,OBS_DIM) -> obs @ W + b -> (1,K,ACTION_DIM) with small W (tip offsets of a few mm).
    bias=nan gives a policy that outputs NaN; obs_dim/meta make mismatching files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array(
        (rng.standard_normal((obs_dim, k * ACTION_DIM)) * 0.001).astype(np.float32), "W"
    )
    b = numpy_helper.from_array(np.full((k * ACTION_DIM,), bias, np.float32), "B")
    shape = numpy_helper.from_array(np.array([1, k, ACTION_DIM], np.int64), "shape")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["obs", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "B"], ["y"]),
            helper.make_node("Reshape", ["y", "shape"], ["actions"]),
        ],
        "tiny_policy",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, obs_dim])],
        [helper.make_tensor_value_info("actions", TensorProto.FLOAT, [1, k, ACTION_DIM])],
        [w, b, shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    path = out_dir / "policy.onnx"
    onnx.save(model, str(path))
    (out_dir / "policy.json").write_text(json.dumps(tiny_meta(k).to_json() if meta is None else meta))
    return path


def goal(
    stamp: float, frame: str = "world", label: str = "pet_bottle", latent=None, valid_for: float = 1.0, **kw
):
    return GoalData(
        stamp_s=stamp,
        frame_id=frame,
        target_label=label,
        target_xyz=kw.pop("target", (0.1, -0.2, 0.32)),
        place_xyz=kw.pop("place", (-0.5, -0.95, 0.5)),
        latent=[0.1] * LATENT_DIM if latent is None else latent,
        valid_for_s=valid_for,
        plan_id=kw.pop("plan_id", "test-1"),
        **kw,
    )


def cell_limits():
    from fast_policy.safety import JointLimits
    from s1s2.cell import DEFAULT_CELL

    return JointLimits.from_arm(DEFAULT_CELL.arm)
