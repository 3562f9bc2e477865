"""Parameters of the `fast_policy` node: one dataclass, `FastPolicyConfig` (the controller's
settings plus the node's own), the single source of every default, range and description.

The joint limits and the arm's geometry (kinematics) are not parameters: they are the arm's, read
from the cell description (`cell`, config/cell.yaml), the same file the simulator is built from.
By default the chunk execution (chunk_mode, aim_index, suction_index) is the one policy.json
records (`execution_from_model`).
"""

from __future__ import annotations

from dataclasses import dataclass

from fast_policy.controller import ControllerConfig
from fast_policy.goal_tracker import GoalTracker
from fast_policy.runtime import DEFAULT_PROVIDERS
from fast_policy.safety import JointLimits
from s1s2.cell import DEFAULT_CELL_PATH, ArmSpec, CellError, load_cell
from s1s2.params import ConfigError, check_fields, param

NODE_NAME = "fast_policy"


@dataclass
class FastPolicyConfig(ControllerConfig):
    model_path: str = param(
        "models/policy/policy.onnx",
        "policy ONNX file (policy.json with its stats must lie beside it); relative = repo root",
        read_only=True,
        must_exist=True,
    )
    metadata_path: str = param(
        "", "policy.json path; '' = beside model_path with the same stem", read_only=True
    )  # fmt: skip
    providers: list = param(
        list(DEFAULT_PROVIDERS),
        "onnxruntime execution providers in preference order; unavailable ones are dropped, CPU is the fallback",
        read_only=True,
    )
    trt_fp16: bool = param(True, "TensorRT: build fp16 engines", read_only=True)
    trt_cache_dir: str = param(
        "~/.cache/s1s2/trt", "TensorRT engine + timing cache directory (persistent across starts)", read_only=True
    )  # fmt: skip
    intra_op_threads: int = param(
        1, "onnxruntime intra-op threads (1 = lowest jitter)", min=1, max=64, read_only=True
    )  # fmt: skip
    warmup_runs: int = param(
        20, "inferences run before the node reports ready", min=0, max=10000, read_only=True
    )  # fmt: skip
    cell: str = param(
        DEFAULT_CELL_PATH,
        "cell description YAML: the arm's joint names and position/velocity/acceleration limits",
        read_only=True,
        must_exist=True,
    )
    default_goal_valid_for_s: float = param(
        2.0, "goal validity when a goal's valid_for is 0", min=0.05, max=60.0
    )  # fmt: skip
    goal_timeout_margin_s: float = param(
        0.03, "extra seconds after header.stamp + valid_for before the goal counts as stale (clock skew between "
        "the planner and System 1); the arm then decelerates to a hold within its limits", min=0.0, max=10.0
    )  # fmt: skip
    realtime_priority: int = param(
        80, "SCHED_FIFO priority of the control-loop thread (0 = normal scheduling); needs root or "
        "CAP_SYS_NICE + an rtprio limit, else one log line and normal priority", min=0, max=99, read_only=True,
    )  # fmt: skip
    switch_interval_s: float = param(
        0.0005, "Python thread switch interval: how long another thread of the node may hold the GIL "
        "while the control loop waits for it", min=0.0001, max=0.05, read_only=True,
    )  # fmt: skip
    gc_freeze: bool = param(
        True, "freeze the start-up heap (gc.freeze) so garbage collections stay short", read_only=True
    )  # fmt: skip
    drain_budget_s: float = param(
        0.004, "after each tick, the loop thread runs incoming callbacks for at most this long",
        min=0.0005, max=0.015, read_only=True,
    )  # fmt: skip
    diagnostics_period_s: float = param(1.0, "diagnostics publishing period", min=0.1, max=60.0)
    stall_warn_plans: int = param(
        20, "diagnostics WARN when System 1 has pursued this many plans' targets without a grasp: the arm "
        "is not picking what System 2 names (at 1 Hz, longer than an item takes to cross the camera's view at "
        "0.1 m/s; normal shift days peak at 4-11); 0 = off",
        min=0, max=100000,
    )  # fmt: skip
    log_throttle_s: float = param(5.0, "minimum seconds between repeated warnings", min=0.0, max=600.0)

    def __post_init__(self):
        check_fields(self)
        if not self.providers or not all(isinstance(x, str) for x in self.providers):
            raise ConfigError(
                f"parameter 'providers': expected a non-empty list of names, got {self.providers!r}"
            )

    def controller_config(self) -> ControllerConfig:
        return ControllerConfig(**{k: getattr(self, k) for k in ControllerConfig.__dataclass_fields__})

    def arm(self) -> ArmSpec:
        try:
            return load_cell(self.cell).arm
        except CellError as exc:
            raise ConfigError(f"parameter 'cell': {exc}") from exc

    def joint_limits(self) -> JointLimits:
        return JointLimits.from_arm(self.arm())

    def goal_tracker(self) -> GoalTracker:
        return GoalTracker(self.default_goal_valid_for_s, self.goal_timeout_margin_s)
