"""Configurations of the System 1 policies and of their training, apart from the model code
(like LeRobot's configuration_act.py). Every dataclass validates itself in __post_init__ and
names the bad field; `to_dict`/`from_dict` round-trip through policy.json (unknown keys refused).

Policies (all map a spec-v2 observation to a K-step chunk of tip offsets + suction logits):
- ACTConfig: ACT's chunk transformer (observation tokens + K learned action queries through a
  pre-LN transformer encoder), with ACT's optional CVAE (a style latent z inferred from the expert
  chunk during training, z = 0 at inference);
- FlowConfig: a flow-matching action head (rectified flow on the normalised chunk, conditioned on
  an observation encoding), `flow_steps` Euler steps unrolled in the ONNX graph; suction from a
  deterministic head on the same encoding;
- MLPConfig: a plain MLP baseline.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields


def _need(obj, cond: bool, name: str, what: str) -> None:
    if not cond:
        raise ValueError(f"{type(obj).__name__}.{name} = {getattr(obj, name)!r}: {what}")


def _pos_int(obj, *names: str) -> None:
    for n in names:
        v = getattr(obj, n)
        _need(obj, isinstance(v, int) and not isinstance(v, bool) and v >= 1, n, "must be a positive integer")


class _Serialisable:
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict):
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown field(s) {', '.join(unknown)}")
        return cls(**d)


@dataclass
class PolicyConfigBase(_Serialisable):
    type: str = ""
    chunk_size: int = 10  # K: tip waypoints for the next K ticks (50 Hz)
    obs_clip: float = 8.0  # normalised observations are clipped to +-this inside the graph
    std_floor: float = 1e-3  # normalisation: std below this (constant features) is raised to it
    suction_loss_weight: float = 0.3
    # ablations only (the shipped models use the defaults): observation fields zeroed inside the
    # model, and "joint_absolute" = the old observation style (joints + absolute world target and
    # place; no tip features, no relative or fine features), computed from the same spec-v2 input
    drop_features: tuple[str, ...] = ()
    obs_mode: str = "task"
    # observation spec (fast_policy.spec): 2 = the shipped task-space fields, 3 = + the goal latent
    spec_version: int = 2

    def __post_init__(self):
        from fast_policy.spec import SPEC_NAMES, obs_slices

        _need(self, self.spec_version in SPEC_NAMES, "spec_version", f"must be one of {list(SPEC_NAMES)}")
        self.drop_features = tuple(self.drop_features)
        for f in self.drop_features:
            _need(self, f in obs_slices(self.spec_version), "drop_features", f"unknown field {f!r}")
        _need(
            self,
            self.obs_mode in ("task", "joint_absolute"),
            "obs_mode",
            "must be 'task' or 'joint_absolute'",
        )
        _pos_int(self, "chunk_size")
        _need(self, self.chunk_size <= 100, "chunk_size", "must be <= 100")
        _need(self, self.obs_clip > 0 and math.isfinite(self.obs_clip), "obs_clip", "must be > 0")
        _need(self, self.std_floor > 0, "std_floor", "must be > 0")
        _need(self, self.suction_loss_weight >= 0, "suction_loss_weight", "must be >= 0")


@dataclass
class ACTConfig(PolicyConfigBase):
    type: str = "act"
    # sized for a 2-core CPU budget: 15 tokens (5 observation + K = 10 queries) cost ~10x an MLP
    # per sample; d_model 128 / 3 layers trains at ~1/6 of this speed
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    ff_dim: int = 128
    dropout: float = 0.0
    use_vae: bool = False  # ACT's CVAE: latent z from the expert chunk in training, 0 at inference
    latent_dim: int = 16
    kl_weight: float = 10.0  # ACT's beta (applied to the per-dim mean KL)
    vae_layers: int = 2

    def __post_init__(self):
        super().__post_init__()
        _need(self, self.type == "act", "type", "must be 'act'")
        _pos_int(self, "d_model", "n_heads", "n_layers", "ff_dim", "latent_dim", "vae_layers")
        _need(
            self,
            self.d_model % self.n_heads == 0,
            "d_model",
            f"must be divisible by n_heads = {self.n_heads}",
        )
        _need(self, 0.0 <= self.dropout < 1.0, "dropout", "must be in [0, 1)")
        _need(self, self.kl_weight >= 0, "kl_weight", "must be >= 0")


@dataclass
class FlowConfig(PolicyConfigBase):
    type: str = "flow"
    hidden: int = 256
    enc_layers: int = 2  # observation encoder depth
    net_layers: int = 3  # velocity network depth (residual blocks)
    time_dim: int = 32  # sinusoidal embedding of the flow time
    flow_steps: int = 8  # Euler steps at inference, unrolled in the ONNX graph
    init_noise_scale: float = 0.0  # 0: deterministic start at the noise mean (a fixed graph)
    time_sampling: str = "beta"  # "uniform" or "beta" (pi0: more weight near the data end)

    def __post_init__(self):
        super().__post_init__()
        _need(self, self.type == "flow", "type", "must be 'flow'")
        _pos_int(self, "hidden", "enc_layers", "net_layers", "time_dim", "flow_steps")
        _need(self, self.time_dim % 2 == 0, "time_dim", "must be even")
        _need(self, self.flow_steps <= 64, "flow_steps", "must be <= 64")
        _need(self, self.init_noise_scale == 0.0, "init_noise_scale", "only 0 (deterministic) is exported")
        _need(self, self.time_sampling in ("uniform", "beta"), "time_sampling", "must be 'uniform' or 'beta'")


@dataclass
class MLPConfig(PolicyConfigBase):
    type: str = "mlp"
    hidden: int = 256
    layers: int = 3
    dropout: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        _need(self, self.type == "mlp", "type", "must be 'mlp'")
        _pos_int(self, "hidden", "layers")
        _need(self, 0.0 <= self.dropout < 1.0, "dropout", "must be in [0, 1)")


CONFIG_TYPES = {"act": ACTConfig, "flow": FlowConfig, "mlp": MLPConfig}


def policy_config_from_dict(d: dict) -> PolicyConfigBase:
    t = d.get("type")
    if t not in CONFIG_TYPES:
        raise ValueError(f"policy config: type {t!r} unknown; valid: {', '.join(CONFIG_TYPES)}")
    return CONFIG_TYPES[t].from_dict(d)


def make_policy_config(kind: str, **overrides) -> PolicyConfigBase:
    if kind not in CONFIG_TYPES:
        raise ValueError(f"policy type {kind!r} unknown; valid: {', '.join(CONFIG_TYPES)}")
    return CONFIG_TYPES[kind](**overrides)


@dataclass
class TrainConfig(_Serialisable):
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 256
    max_steps: int = 20_000  # the budget (deterministic); the LR schedule anneals over it
    max_minutes: float = 15.0  # wall-clock safety net only: stops early (recorded) if exceeded
    warmup_frac: float = 0.03
    val_fraction: float = 0.1  # held-out share of episodes
    grad_clip: float = 1.0
    seed: int = 0
    threads: int = 1  # torch CPU threads (1: no spin-waiting on a small shared machine)

    def __post_init__(self):
        _need(self, self.lr > 0, "lr", "must be > 0")
        _need(self, self.weight_decay >= 0, "weight_decay", "must be >= 0")
        _pos_int(self, "batch_size", "max_steps", "threads")
        _need(self, self.max_minutes > 0, "max_minutes", "must be > 0")
        _need(self, 0 <= self.warmup_frac < 0.5, "warmup_frac", "must be in [0, 0.5)")
        _need(self, 0.0 < self.val_fraction < 0.5, "val_fraction", "must be in (0, 0.5)")
        _need(self, self.grad_clip > 0, "grad_clip", "must be > 0")
        _need(self, isinstance(self.seed, int) and self.seed >= 0, "seed", "must be a non-negative integer")
