"""Parameters of the `fast_policy` node (ROS-free ParamSpecs) and their conversion to core objects.

config/fast_policy.yaml sets them; its joint limits must equal the cell description's
(tests/unit/test_policy_config.py checks that).
"""

from __future__ import annotations

import math

from fast_policy.controller import CHUNK_MODES, ControllerConfig
from fast_policy.goal_tracker import GoalTracker
from fast_policy.runtime import DEFAULT_PROVIDERS
from fast_policy.safety import JointLimits
from fast_policy.spec import N_JOINTS
from s1s2.params import ConfigError, ParamSpec

NODE_NAME = "fast_policy"
_JOINTS = ["shoulder_pan", "shoulder_lift", "elbow", "wrist_pitch"]

SPECS: list[ParamSpec] = [
    ParamSpec(
        "model_path",
        "models/policy/policy.onnx",
        "policy ONNX file (policy.json with its stats must lie beside it); relative = repo root",
        read_only=True,
        must_exist=True,
    ),
    ParamSpec(
        "metadata_path", "", "policy.json path; '' = beside model_path with the same stem", read_only=True
    ),
    ParamSpec(
        "providers",
        list(DEFAULT_PROVIDERS),
        "onnxruntime execution providers in preference order; unavailable ones are dropped, CPU is the fallback",
        read_only=True,
    ),
    ParamSpec("trt_fp16", True, "TensorRT: build fp16 engines", read_only=True),
    ParamSpec(
        "trt_cache_dir",
        "~/.cache/s1s2/trt",
        "TensorRT engine + timing cache directory (persistent across starts)",
        read_only=True,
    ),
    ParamSpec(
        "intra_op_threads",
        1,
        "onnxruntime intra-op threads (1 = lowest jitter)",
        min=1,
        max=64,
        read_only=True,
    ),
    ParamSpec(
        "warmup_runs", 20, "inferences run before the node reports ready", min=0, max=10000, read_only=True
    ),
    ParamSpec("rate_hz", 50.0, "control loop rate", min=1.0, max=1000.0, read_only=True),
    ParamSpec("joint_names", list(_JOINTS), "arm joints, cell description order", read_only=True),
    ParamSpec("joint_lower", [-2.9, -0.6, -2.6, -2.6], "lower position limits (rad)", read_only=True),
    ParamSpec("joint_upper", [2.9, 1.9, 0.3, 2.6], "upper position limits (rad)", read_only=True),
    ParamSpec("max_velocity", [3.0, 2.5, 3.0, 4.0], "velocity limits (rad/s)", read_only=True),
    ParamSpec("max_acceleration", [12.0, 10.0, 12.0, 16.0], "acceleration limits (rad/s^2)", read_only=True),
    ParamSpec("chunk_mode", "temporal_ensemble", "how action chunks are executed", choices=CHUNK_MODES),
    ParamSpec("ensemble_decay", 0.01, "temporal ensembling weight decay m (ACT)", min=0.0, max=10.0),
    ParamSpec("suction_threshold", 0.5, "suction on above this probability", min=0.01, max=0.99),
    ParamSpec(
        "default_goal_valid_for_s", 2.0, "goal validity when a goal's valid_for is 0", min=0.05, max=60.0
    ),
    ParamSpec(
        "goal_timeout_margin_s",
        0.1,
        "extra seconds after header.stamp + valid_for before the goal counts as stale",
        min=0.0,
        max=10.0,
    ),
    ParamSpec("joint_state_timeout_s", 0.5, "hold when joint states are older than this", min=0.01, max=10.0),
    ParamSpec(
        "resync_threshold_rad",
        0.5,
        "restart the limiter from the measured state if command and measurement differ by more",
        min=0.01,
        max=10.0,
    ),
    ParamSpec("obs_clip", 10.0, "clip normalised observations to +-this", min=1.0, max=1000.0),
    ParamSpec("diagnostics_period_s", 1.0, "diagnostics publishing period", min=0.1, max=60.0),
    ParamSpec("log_throttle_s", 5.0, "minimum seconds between repeated warnings", min=0.0, max=600.0),
]


def _float_list(values: dict, name: str) -> list[float]:
    v = values[name]
    if not isinstance(v, (list, tuple)) or len(v) != N_JOINTS:
        raise ConfigError(f"parameter '{name}': expected {N_JOINTS} numbers, got {v!r}")
    out = []
    for x in v:
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
            raise ConfigError(f"parameter '{name}': expected {N_JOINTS} finite numbers, got {v!r}")
        out.append(float(x))
    return out


def joint_limits(values: dict) -> JointLimits:
    names = values["joint_names"]
    if (
        not isinstance(names, (list, tuple))
        or len(names) != N_JOINTS
        or not all(isinstance(n, str) for n in names)
    ):
        raise ConfigError(f"parameter 'joint_names': expected {N_JOINTS} names, got {names!r}")
    try:
        return JointLimits(
            tuple(names),
            *(
                _float_list(values, n)
                for n in ("joint_lower", "joint_upper", "max_velocity", "max_acceleration")
            ),
        )
    except ValueError as exc:
        raise ConfigError(f"parameters joint_*/max_*: {exc}") from exc


def providers(values: dict) -> list[str]:
    p = values["providers"]
    if not isinstance(p, (list, tuple)) or not p or not all(isinstance(x, str) for x in p):
        raise ConfigError(f"parameter 'providers': expected a non-empty list of names, got {p!r}")
    return list(p)


def controller_config(values: dict) -> ControllerConfig:
    try:
        return ControllerConfig(
            rate_hz=float(values["rate_hz"]),
            chunk_mode=values["chunk_mode"],
            ensemble_decay=float(values["ensemble_decay"]),
            suction_threshold=float(values["suction_threshold"]),
            obs_clip=float(values["obs_clip"]),
            resync_threshold_rad=float(values["resync_threshold_rad"]),
            joint_state_timeout_s=float(values["joint_state_timeout_s"]),
        )
    except ValueError as exc:
        raise ConfigError(f"parameter {exc}") from exc


def goal_tracker(values: dict) -> GoalTracker:
    return GoalTracker(float(values["default_goal_valid_for_s"]), float(values["goal_timeout_margin_s"]))
