"""ONNX Runtime session for the System 1 policy (numpy + onnxruntime only; no torch).

- The model ships as `policy.onnx` (raw observation in, raw action chunk out: normalisation is
  inside the graph) with `policy.json` beside it (format 2: the observation/action spec and its
  version, chunk size, the arm geometry it was trained for, the recommended chunk execution, the
  normalisation statistics, config, provenance, metrics). Both are checked at load; any problem
  (another spec version, ONNX inputs that do not match, another arm) raises `ConfigError` with one
  line naming the file and the mismatch, so the node refuses to start.
- Providers come from config in preference order. Names this onnxruntime build lacks are dropped;
  GPU providers that are listed but cannot start (no GPU, no CUDA/TensorRT libraries) make
  onnxruntime fall back, or session creation fail, in which case we retry on CPU. The provider
  actually used is read back from `session.get_providers()` and reported in one line.
- TensorRT: fp16 optional, persistent engine cache and timing cache in `trt_cache_dir`, so only the
  first start on a machine pays for the engine build (or run `s1s2 policy build-engine` ahead of time).
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from fast_policy.spec import (
    ACTION_DIM,
    ACTION_FIELDS,
    N_JOINTS,
    ONNX_INPUT,
    ONNX_OUTPUT,
    SPEC_NAMES,
    SPEC_VERSION,
    obs_dim,
    obs_fields,
    spec_dict,
)  # fmt: skip
from s1s2 import resolve_path
from s1s2.cell import ArmSpec
from s1s2.files import load_mapping
from s1s2.kinematics import geometry_mismatch
from s1s2.params import ConfigError

TRT = "TensorrtExecutionProvider"
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
DEFAULT_PROVIDERS = (TRT, CUDA, CPU)
META_FORMAT = 2
POLICY_TYPES = ("act", "flow", "mlp")
EXECUTION_KEYS = ("chunk_mode", "aim_index", "suction_index")


@dataclass
class PolicyMeta:
    """Contents of policy.json: everything the runtime needs besides the ONNX graph."""

    policy_type: str
    chunk_size: int
    joint_names: list[str]
    arm_geometry: dict  # s1s2.kinematics.geometry_dict of the arm it was trained for
    execution: dict  # recommended ControllerConfig values: chunk_mode, aim_index, suction_index
    normalization: dict  # obs_mean/obs_std (obs_dim), action_mean/action_std (K x ACTION_DIM)
    trained: bool
    config: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    path: str = ""
    spec_version: int = SPEC_VERSION  # 3: the observation carries the goal latent

    @property
    def obs_dim(self) -> int:
        return obs_dim(self.spec_version)

    def to_json(self) -> dict:
        return {
            "format": META_FORMAT,
            "spec": spec_dict(self.chunk_size, self.spec_version),
            "policy_type": self.policy_type,
            "chunk_size": int(self.chunk_size),
            "joint_names": list(self.joint_names),
            "arm_geometry": dict(self.arm_geometry),
            "execution": dict(self.execution),
            "normalization": {k: np.asarray(v, float).tolist() for k, v in self.normalization.items()},
            "trained": bool(self.trained),
            "config": self.config,
            "provenance": self.provenance,
            "metrics": self.metrics,
        }


def default_meta_path(model_path: str | Path) -> Path:
    return resolve_path(model_path).with_suffix(".json")


def load_policy_meta(path: str | Path, arm: ArmSpec | None = None) -> PolicyMeta:
    """Read and check policy.json; ConfigError names the file and the mismatch in one line.
    `arm`: the arm this runtime drives; a model trained for another arm is refused."""
    p = resolve_path(path)
    d = load_mapping(p, "policy metadata", ConfigError, "it ships beside the .onnx; run `s1s2 models policy`")
    where = f"policy metadata {str(p)!r}"
    spec = d.get("spec") if isinstance(d.get("spec"), dict) else {}
    version = spec.get("spec_version", d.get("spec_version", 1))
    if not isinstance(version, int) or isinstance(version, bool) or version not in SPEC_NAMES:
        known = ", ".join(f"{v} ({n})" for v, n in SPEC_NAMES.items())
        raise ConfigError(
            f"{where}: spec_version {version!r}, this runtime reads spec_version {known}; "
            "rebuild the model with `s1s2 models policy`"
        )
    if d.get("format") != META_FORMAT:
        raise ConfigError(f"{where}: format {d.get('format')!r}, this runtime reads {META_FORMAT}")
    for key, want in (
        ("obs_fields", [list(f) for f in obs_fields(version)]),
        ("action_fields", [list(f) for f in ACTION_FIELDS]),
    ):
        if spec.get(key) != want:
            raise ConfigError(f"{where}: spec.{key} {spec.get(key)!r} differ from this runtime's {want!r}")
    missing = [k for k in ("policy_type", "chunk_size", "joint_names", "arm_geometry", "execution", "trained")
               if k not in d]  # fmt: skip
    if missing:
        raise ConfigError(f"{where}: missing key(s) {', '.join(missing)}")
    k = d["chunk_size"]
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 200 or spec.get("chunk_size") != k:
        raise ConfigError(
            f"{where}: chunk_size must be an integer in [1, 200] equal to spec.chunk_size, got {k!r}"
        )
    if d["policy_type"] not in POLICY_TYPES:
        raise ConfigError(
            f"{where}: policy_type {d['policy_type']!r} unknown; valid: {', '.join(POLICY_TYPES)}"
        )
    names = d["joint_names"]
    if not (isinstance(names, list) and len(names) == N_JOINTS and all(isinstance(n, str) for n in names)):
        raise ConfigError(f"{where}: joint_names must be {N_JOINTS} strings, got {names!r}")
    if not isinstance(d["arm_geometry"], dict):
        raise ConfigError(f"{where}: arm_geometry must be a mapping, got {d['arm_geometry']!r}")
    if arm is not None:
        diff = geometry_mismatch(d["arm_geometry"], arm)
        if diff:
            raise ConfigError(f"{where}: trained for another arm than the cell's ({diff})")
    ex = d["execution"]
    if not isinstance(ex, dict) or not set(ex) <= set(EXECUTION_KEYS):
        raise ConfigError(
            f"{where}: execution must be a mapping with keys among {EXECUTION_KEYS}, got {ex!r}"
        )
    norm = {}
    n_obs = obs_dim(version)
    for key, shape in (("obs_mean", (n_obs,)), ("obs_std", (n_obs,)),
                       ("action_mean", (k, ACTION_DIM)), ("action_std", (k, ACTION_DIM))):  # fmt: skip
        try:
            a = np.asarray(d.get("normalization", {})[key], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: normalization.{key} missing or not numeric ({exc})") from exc
        if a.shape != shape or not np.all(np.isfinite(a)):
            raise ConfigError(
                f"{where}: normalization.{key} must be finite with shape {shape}, got {a.shape}"
            )
        norm[key] = a
    return PolicyMeta(
        policy_type=d["policy_type"], chunk_size=k, joint_names=names, arm_geometry=d["arm_geometry"],
        execution=dict(ex), normalization=norm, trained=bool(d["trained"]), config=d.get("config", {}),
        provenance=d.get("provenance", {}), metrics=d.get("metrics", {}), path=str(p), spec_version=version,
    )  # fmt: skip


def check_providers(requested) -> tuple[list[str], list[str]]:
    """Split requested provider names into (in this onnxruntime build, dropped-with-reason).

    An unknown name is a ConfigError (a typo should not silently run on CPU)."""
    requested = list(requested)
    if not requested:
        raise ConfigError("parameter 'providers': empty list; use e.g. ['CPUExecutionProvider']")
    known = set(ort.get_all_providers())
    unknown = [p for p in requested if p not in known]
    if unknown:
        raise ConfigError(
            f"parameter 'providers': unknown provider(s) {', '.join(map(repr, unknown))}; "
            f"e.g. {', '.join(DEFAULT_PROVIDERS)}"
        )
    available = set(ort.get_available_providers())
    usable = [p for p in requested if p in available]
    dropped = [f"{p} (not in this onnxruntime build)" for p in requested if p not in available]
    return usable, dropped


def trt_options(cache_dir: str | Path, fp16: bool) -> dict:
    d = str(resolve_path(cache_dir))
    return {
        "trt_fp16_enable": bool(fp16),
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": d,
        "trt_timing_cache_enable": True,
        "trt_timing_cache_path": d,
        "trt_max_workspace_size": 1 << 30,
    }


class PolicySession:
    """One ONNX Runtime session for the policy with the provider actually in use in `provider`."""

    def __init__(
        self,
        model_path: str | Path,
        meta_path: str | Path | None = None,
        providers=DEFAULT_PROVIDERS,
        trt_fp16: bool = True,
        trt_cache_dir: str | Path = "~/.cache/s1s2/trt",
        intra_op_threads: int = 1,
        arm: ArmSpec | None = None,
        log: Callable[[str], None] = print,
    ):
        self.model_path = resolve_path(model_path)
        if not self.model_path.is_file():
            raise ConfigError(f"parameter 'model_path': {str(self.model_path)!r} does not exist")
        self.meta = load_policy_meta(meta_path or default_meta_path(self.model_path), arm)
        self.requested = list(providers)
        usable, self.dropped = check_providers(self.requested)
        self.trt_cache_dir = resolve_path(trt_cache_dir)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(intra_op_threads)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        self.session = self._create(opts, usable, trt_fp16)
        self.provider = self.session.get_providers()[0]
        for p in usable:
            if p not in self.session.get_providers() and p != CPU:
                self.dropped.append(f"{p} (failed to start: no GPU, driver or CUDA/TensorRT libraries?)")
        self._check_io()
        self._feed = np.zeros((1, self.meta.obs_dim), dtype=np.float32)
        trained = "" if self.meta.trained else "; WARNING: model is UNTRAINED (trained=false in policy.json)"
        dropped = f"; dropped: {', '.join(self.dropped)}" if self.dropped else ""
        log(
            f"fast_policy: {self.meta.policy_type} policy (spec v{self.meta.spec_version}, K={self.meta.chunk_size}), "
            f"inference provider = {self.provider} (model {self.model_path.name}{dropped}){trained}"
        )

    def _create(self, opts, usable: list[str], trt_fp16: bool) -> ort.InferenceSession:
        gpu = [p for p in usable if p != CPU]
        if gpu:
            plist = []
            for p in usable:
                if p == TRT:
                    self.trt_cache_dir.mkdir(parents=True, exist_ok=True)
                    plist.append((p, trt_options(self.trt_cache_dir, trt_fp16)))
                else:
                    plist.append(p)
            # onnxruntime prints a multi-line "EP Error ... falling back" and logs C++ errors when a
            # listed GPU provider cannot start; we report that ourselves in one line instead.
            ort.set_default_logger_severity(4)
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    return ort.InferenceSession(str(self.model_path), sess_options=opts, providers=plist)
            except Exception as exc:  # noqa: BLE001 - GPU start-up failures come in many types
                if _is_model_error(exc):
                    raise ConfigError(
                        f"parameter 'model_path': cannot load {str(self.model_path)!r}: {exc}"
                    ) from exc
                self.dropped.append(
                    f"{'/'.join(gpu)} (session creation failed: {str(exc).splitlines()[0][:120]})"
                )
            finally:
                ort.set_default_logger_severity(3)
        try:
            return ort.InferenceSession(str(self.model_path), sess_options=opts, providers=[CPU])
        except Exception as exc:  # noqa: BLE001 - protobuf / graph errors
            raise ConfigError(f"parameter 'model_path': cannot load {str(self.model_path)!r}: {exc}") from exc

    def _check_io(self) -> None:
        ins, outs = self.session.get_inputs(), self.session.get_outputs()
        want_in, want_out = [1, self.meta.obs_dim], [1, self.meta.chunk_size, ACTION_DIM]
        got_in = [(i.name, list(i.shape)) for i in ins]
        got_out = [(o.name, list(o.shape)) for o in outs]
        if got_in != [(ONNX_INPUT, want_in)]:
            raise ConfigError(
                f"model {str(self.model_path)!r}: inputs {got_in} do not match policy.json "
                f"(spec v{self.meta.spec_version} needs {ONNX_INPUT!r} {want_in})"
            )
        if got_out != [(ONNX_OUTPUT, want_out)]:
            raise ConfigError(
                f"model {str(self.model_path)!r}: outputs {got_out} do not match policy.json "
                f"(needs {ONNX_OUTPUT!r} {want_out}, chunk_size {self.meta.chunk_size})"
            )

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """Run the graph on one raw observation (obs_dim,); returns the raw chunk (K, ACTION_DIM).
        Normalisation is inside the graph."""
        self._feed[0] = obs
        return self.session.run([ONNX_OUTPUT], {ONNX_INPUT: self._feed})[0][0]

    def warmup(self, runs: int) -> float:
        """Run `runs` inferences (engine build / allocations happen here, not in the first tick);
        returns the last run's latency in seconds."""
        dt = 0.0
        for _ in range(max(0, runs)):
            t0 = time.perf_counter()
            self(np.zeros(self.meta.obs_dim, dtype=np.float32))
            dt = time.perf_counter() - t0
        return dt


def _is_model_error(exc: Exception) -> bool:
    name = type(exc).__name__
    return name in ("InvalidProtobuf", "InvalidGraph", "NoSuchFile") or "Protobuf parsing failed" in str(exc)
