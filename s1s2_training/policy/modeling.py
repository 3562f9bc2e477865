"""The System 1 chunking policy (ACT-style action chunking, without ACT's CVAE).

Tokens: [proprio (joint pos/vel, suction), goal (target, place, has_goal), latent (System 2
embedding)] + K learned action queries, each with a learned position embedding, go through a
pre-LN transformer encoder; each query token is decoded to one future step: 4 normalised
joint-position targets (absolute by default; deltas with PolicyConfig.action_relative) + a suction
logit.

Attention is written with plain matmul/softmax so the ONNX export is simple (opset 18) and runs
on any onnxruntime provider.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from fast_policy.spec import ACTION_DIM, OBS_FIELDS
from s1s2_training.policy.configuration import PolicyConfig


def _slices() -> dict[str, slice]:
    out, i = {}, 0
    for name, n in OBS_FIELDS:
        out[name] = slice(i, i + n)
        i += n
    return out


_S = _slices()
PROPRIO = ("joint_pos", "joint_vel", "suction")
GOAL = ("goal_target", "goal_place", "has_goal")


class Attention(nn.Module):
    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        self.h, self.dh = heads, d // heads
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.h, self.dh).permute(2, 0, 3, 1, 4).unbind(0)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.dh), dim=-1)
        y = (self.drop(att) @ v).transpose(1, 2).reshape(b, t, d)
        return self.out(y)


class Block(nn.Module):
    def __init__(self, cfg: PolicyConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = Attention(cfg.d_model, cfg.n_heads, cfg.dropout)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.d_model, cfg.ff_dim),
            nn.GELU(),
            nn.Linear(cfg.ff_dim, cfg.d_model),
            nn.Dropout(cfg.dropout),
        )

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class ChunkPolicy(nn.Module):
    """obs (B, OBS_DIM) normalised -> actions (B, K, 5)."""

    def __init__(self, cfg: PolicyConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        n_prop = sum(_S[f].stop - _S[f].start for f in PROPRIO)
        n_goal = sum(_S[f].stop - _S[f].start for f in GOAL)
        self.proprio = nn.Linear(n_prop, d)
        self.goal = nn.Linear(n_goal, d)
        self.latent = nn.Linear(cfg.latent_dim, d)
        self.queries = nn.Parameter(torch.randn(cfg.chunk_size, d) * 0.02)
        self.pos = nn.Parameter(torch.randn(3 + cfg.chunk_size, d) * 0.02)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, ACTION_DIM)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        b = obs.shape[0]
        prop = torch.cat([obs[:, _S[f]] for f in PROPRIO], dim=-1)
        goal = torch.cat([obs[:, _S[f]] for f in GOAL], dim=-1)
        tokens = torch.stack(
            [self.proprio(prop), self.goal(goal), self.latent(obs[:, _S["goal_latent"]])], dim=1
        )
        x = torch.cat([tokens, self.queries.unsqueeze(0).expand(b, -1, -1)], dim=1) + self.pos
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.ln(x[:, 3:]))
