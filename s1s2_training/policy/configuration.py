"""`PolicyConfig`: hyper-parameters of the System 1 chunking policy, kept apart from the model code
(like LeRobot's configuration_act.py). Validated on construction; a bad value is named."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from fast_policy.spec import N_JOINTS
from s1s2.topics import LATENT_DIM


@dataclass
class PolicyConfig:
    # model: a small transformer encoder over [proprio, goal, latent] tokens + K action queries
    chunk_size: int = 10  # K: joint targets for the next K ticks (50 Hz)
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 3
    ff_dim: int = 192
    dropout: float = 0.1
    # joint targets as absolute positions (ACT) or as deltas from the observed positions; deltas
    # learn the servo lead from joint velocity, a positive feedback loop in closed loop
    action_relative: bool = False
    # fixed by the runtime interface (s1s2_interfaces Goal LATENT_DIM, 4-joint arm)
    latent_dim: int = LATENT_DIM
    n_joints: int = N_JOINTS
    # training
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 256
    epochs: int = 40
    max_minutes: float = 5.0  # wall-clock cap for training on a CPU
    suction_loss_weight: float = 0.5
    val_fraction: float = 0.15  # held-out share of episodes
    std_floor: float = 1e-2  # normalisation: std below this (constant features) is raised to it
    seed: int = 0
    threads: int = 1  # torch CPU threads; 1 is fastest on a small, busy machine (no spin-waiting)

    def __post_init__(self):
        def need(cond: bool, name: str, what: str):
            if not cond:
                raise ValueError(f"PolicyConfig.{name} = {getattr(self, name)!r}: {what}")

        for name in (
            "chunk_size",
            "d_model",
            "n_heads",
            "n_layers",
            "ff_dim",
            "batch_size",
            "epochs",
            "threads",
        ):
            v = getattr(self, name)
            need(
                isinstance(v, int) and not isinstance(v, bool) and v >= 1, name, "must be a positive integer"
            )
        need(self.chunk_size <= 100, "chunk_size", "must be <= 100")
        need(self.d_model % self.n_heads == 0, "d_model", f"must be divisible by n_heads = {self.n_heads}")
        need(0.0 <= self.dropout < 1.0, "dropout", "must be in [0, 1)")
        need(self.latent_dim == LATENT_DIM, "latent_dim", f"must be {LATENT_DIM} (Goal.LATENT_DIM)")
        need(self.n_joints == N_JOINTS, "n_joints", f"must be {N_JOINTS} (the cell's arm)")
        need(self.lr > 0, "lr", "must be > 0")
        need(self.weight_decay >= 0, "weight_decay", "must be >= 0")
        need(self.max_minutes > 0, "max_minutes", "must be > 0")
        need(self.suction_loss_weight >= 0, "suction_loss_weight", "must be >= 0")
        need(0.0 < self.val_fraction < 0.5, "val_fraction", "must be in (0, 0.5)")
        need(self.std_floor > 0, "std_floor", "must be > 0")
        need(isinstance(self.seed, int) and self.seed >= 0, "seed", "must be a non-negative integer")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> PolicyConfig:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"PolicyConfig: unknown field(s) {', '.join(unknown)}")
        return cls(**d)
