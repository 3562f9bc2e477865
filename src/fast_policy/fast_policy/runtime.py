"""ONNX Runtime session for the System 1 policy (numpy + onnxruntime only; no torch).

- The model ships as `policy.onnx` with `policy.json` beside it (config, normalisation stats,
  joint names, chunk size, training provenance). Both are checked at load; any problem raises
  `ConfigError` naming the path and what is wrong, so the node stops at start with one line.
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

from fast_policy.spec import ACTION_DIM, N_JOINTS, OBS_DIM, ONNX_INPUT, ONNX_OUTPUT
from s1s2 import resolve_path
from s1s2.files import load_mapping
from s1s2.params import ConfigError
from s1s2.topics import LATENT_DIM

TRT = "TensorrtExecutionProvider"
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
DEFAULT_PROVIDERS = (TRT, CUDA, CPU)
META_FORMAT = 1


@dataclass
class PolicyMeta:
    """Contents of policy.json: everything the runtime needs besides the ONNX graph."""

    joint_names: list[str]
    chunk_size: int
    obs_mean: np.ndarray  # (OBS_DIM,)
    obs_std: np.ndarray  # (OBS_DIM,)
    action_mean: np.ndarray  # (K, N_JOINTS) joint targets (absolute, or deltas if action_relative)
    action_std: np.ndarray  # (K, N_JOINTS)
    trained: bool
    # True: joint outputs are deltas from the observed joint positions; False: absolute positions
    action_relative: bool = True
    config: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    path: str = ""

    def to_json(self) -> dict:
        return {
            "format": META_FORMAT,
            "obs_dim": OBS_DIM,
            "action_dim": ACTION_DIM,
            "latent_dim": LATENT_DIM,
            "joint_names": list(self.joint_names),
            "chunk_size": int(self.chunk_size),
            "trained": bool(self.trained),
            "action_relative": bool(self.action_relative),
            "obs_mean": np.asarray(self.obs_mean, float).tolist(),
            "obs_std": np.asarray(self.obs_std, float).tolist(),
            "action_mean": np.asarray(self.action_mean, float).tolist(),
            "action_std": np.asarray(self.action_std, float).tolist(),
            "config": self.config,
            "provenance": self.provenance,
            "metrics": self.metrics,
        }


def default_meta_path(model_path: str | Path) -> Path:
    return resolve_path(model_path).with_suffix(".json")


def load_policy_meta(path: str | Path) -> PolicyMeta:
    """Read and check policy.json; ConfigError names the path and the problem."""
    p = resolve_path(path)
    d = load_mapping(p, "policy metadata", ConfigError, "it ships beside the .onnx; run `make models`")
    missing = [
        k
        for k in ("joint_names", "chunk_size", "obs_mean", "obs_std", "action_mean", "action_std", "trained")
        if k not in d
    ]
    if missing:
        raise ConfigError(f"policy metadata {str(p)!r}: missing key(s) {', '.join(missing)}")
    if d.get("format", META_FORMAT) != META_FORMAT:
        raise ConfigError(
            f"policy metadata {str(p)!r}: format {d.get('format')!r}, this runtime reads {META_FORMAT}"
        )
    for key, want in (("obs_dim", OBS_DIM), ("action_dim", ACTION_DIM), ("latent_dim", LATENT_DIM)):
        if key in d and d[key] != want:
            raise ConfigError(f"policy metadata {str(p)!r}: {key} = {d[key]!r}, this runtime needs {want}")
    k = d["chunk_size"]
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ConfigError(f"policy metadata {str(p)!r}: chunk_size must be a positive integer, got {k!r}")
    names = d["joint_names"]
    if not (isinstance(names, list) and len(names) == N_JOINTS and all(isinstance(n, str) for n in names)):
        raise ConfigError(
            f"policy metadata {str(p)!r}: joint_names must be {N_JOINTS} strings, got {names!r}"
        )
    arrays = {}
    for key, shape in (
        ("obs_mean", (OBS_DIM,)),
        ("obs_std", (OBS_DIM,)),
        ("action_mean", (k, N_JOINTS)),
        ("action_std", (k, N_JOINTS)),
    ):
        try:
            a = np.asarray(d[key], dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"policy metadata {str(p)!r}: {key} is not numeric: {exc}") from exc
        if a.shape != shape or not np.all(np.isfinite(a)):
            raise ConfigError(
                f"policy metadata {str(p)!r}: {key} must be finite with shape {shape}, got {a.shape}"
            )
        if key.endswith("_std") and np.any(a <= 0):
            raise ConfigError(f"policy metadata {str(p)!r}: {key} must be > 0")
        arrays[key] = a
    return PolicyMeta(
        joint_names=names,
        chunk_size=k,
        trained=bool(d["trained"]),
        action_relative=bool(d.get("action_relative", True)),
        config=d.get("config", {}),
        provenance=d.get("provenance", {}),
        metrics=d.get("metrics", {}),
        path=str(p),
        **arrays,
    )


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
        log: Callable[[str], None] = print,
    ):
        self.model_path = resolve_path(model_path)
        if not self.model_path.is_file():
            raise ConfigError(f"parameter 'model_path': {str(self.model_path)!r} does not exist")
        self.meta = load_policy_meta(meta_path or default_meta_path(self.model_path))
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
        self._feed = np.zeros((1, OBS_DIM), dtype=np.float32)
        trained = "" if self.meta.trained else "; WARNING: model is UNTRAINED (trained=false in policy.json)"
        dropped = f"; dropped: {', '.join(self.dropped)}" if self.dropped else ""
        log(
            f"fast_policy: inference provider = {self.provider} (model {self.model_path.name}{dropped}){trained}"
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
        want_in, want_out = [1, OBS_DIM], [1, self.meta.chunk_size, ACTION_DIM]
        if len(ins) != 1 or ins[0].name != ONNX_INPUT or list(ins[0].shape) != want_in:
            got = [(i.name, i.shape) for i in ins]
            raise ConfigError(
                f"model {str(self.model_path)!r}: expected input {ONNX_INPUT!r} {want_in}, got {got}"
            )
        if len(outs) != 1 or outs[0].name != ONNX_OUTPUT or list(outs[0].shape) != want_out:
            got = [(o.name, o.shape) for o in outs]
            raise ConfigError(
                f"model {str(self.model_path)!r}: expected output {ONNX_OUTPUT!r} {want_out} "
                f"(chunk_size from policy.json), got {got}"
            )

    def __call__(self, obs_normalised: np.ndarray) -> np.ndarray:
        """Run the graph on one normalised observation (OBS_DIM,); returns (K, ACTION_DIM)."""
        self._feed[0] = obs_normalised
        return self.session.run([ONNX_OUTPUT], {ONNX_INPUT: self._feed})[0][0]

    def warmup(self, runs: int) -> float:
        """Run `runs` inferences (engine build / allocations happen here, not in the first tick);
        returns the last run's latency in seconds."""
        dt = 0.0
        for _ in range(max(0, runs)):
            t0 = time.perf_counter()
            self(np.zeros(OBS_DIM, dtype=np.float32))
            dt = time.perf_counter() - t0
        return dt


def _is_model_error(exc: Exception) -> bool:
    name = type(exc).__name__
    return name in ("InvalidProtobuf", "InvalidGraph", "NoSuchFile") or "Protobuf parsing failed" in str(exc)
