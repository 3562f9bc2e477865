"""The System 1 policies (torch; training only). All share one interface:

    model(obs_raw (B, obs_dim)) -> actions_raw (B, K, ACTION_DIM)   # inference, exported to ONNX
    model.loss(obs_raw, offsets_raw (B, K, 3), suction (B, K) in {0, 1}) -> (loss, parts)

Normalisation is part of the model (`Normalizer` buffers: observation mean/std with clipping,
tip-offset mean/std per chunk step), so the exported graph takes raw observations and returns tip
offsets in metres and suction logits; the runtime cannot apply the wrong statistics.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from fast_policy.spec import ACTION_DIM, OBS_SLICES, obs_dim, obs_slices
from s1s2_training.policy.configuration import ACTConfig, FlowConfig, MLPConfig, PolicyConfigBase

TOKEN_GROUPS: dict[str, tuple[str, ...]] = {
    "arm": ("tip_pos", "tip_vel", "joint_pos", "joint_vel", "belt_speed"),
    "target": ("target_rel", "target_fine", "target_vel", "has_target"),
    "place": ("place_rel", "place_fine", "has_place"),
    "grip": ("suction", "holding"),
}


LATENT_GROUP = {"goal": ("goal_latent",)}  # spec v3's extra token


def _group_index(names: tuple[str, ...], version: int) -> list[int]:
    idx = []
    for n in names:
        s = obs_slices(version)[n]
        idx.extend(range(s.start, s.stop))
    return idx


class Normalizer(nn.Module):
    def __init__(self, k: int, obs_clip: float, n_obs: int):
        super().__init__()
        self.obs_clip = float(obs_clip)
        self.register_buffer("obs_mean", torch.zeros(n_obs))
        self.register_buffer("obs_std", torch.ones(n_obs))
        self.register_buffer("act_mean", torch.zeros(k, 3))
        self.register_buffer("act_std", torch.ones(k, 3))

    def set_stats(self, stats: dict) -> None:
        for name in ("obs_mean", "obs_std", "act_mean", "act_std"):
            getattr(self, name).copy_(torch.as_tensor(stats[name], dtype=torch.float32))

    def obs(self, obs_raw: torch.Tensor) -> torch.Tensor:
        return torch.clamp((obs_raw - self.obs_mean) / self.obs_std, -self.obs_clip, self.obs_clip)

    def act(self, offsets_raw: torch.Tensor) -> torch.Tensor:
        return (offsets_raw - self.act_mean) / self.act_std

    def unact(self, offsets_n: torch.Tensor) -> torch.Tensor:
        return offsets_n * self.act_std + self.act_mean


def _bce(logits: torch.Tensor, suction: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, suction)


class PolicyBase(nn.Module):
    cfg: PolicyConfigBase

    def __init__(self, cfg: PolicyConfigBase):
        super().__init__()
        self.cfg = cfg
        self.k = cfg.chunk_size
        self.obs_dim = obs_dim(cfg.spec_version)
        self.norm = Normalizer(cfg.chunk_size, cfg.obs_clip, self.obs_dim)
        keep = torch.ones(self.obs_dim)
        drop = list(cfg.drop_features)
        if cfg.obs_mode == "joint_absolute":
            drop += ["tip_pos", "tip_vel", "target_fine", "place_fine"]
        for f in drop:
            keep[obs_slices(cfg.spec_version)[f]] = 0.0
        self.register_buffer("keep", keep, persistent=False)
        self._absolute = cfg.obs_mode == "joint_absolute"

    def prep(self, obs_raw: torch.Tensor) -> torch.Tensor:
        """Ablation feature transforms (identity for the shipped configuration)."""
        if self._absolute:  # relative -> absolute world positions (tip + rel), zero when absent
            tip = obs_raw[:, OBS_SLICES["tip_pos"]]
            ht = obs_raw[:, OBS_SLICES["has_target"]]
            hp = obs_raw[:, OBS_SLICES["has_place"]]
            t, p = OBS_SLICES["target_rel"], OBS_SLICES["place_rel"]
            obs_raw = torch.cat(
                [obs_raw[:, : t.start], ht * (obs_raw[:, t] + tip), obs_raw[:, t.stop : p.start],
                 hp * (obs_raw[:, p] + tip), obs_raw[:, p.stop :]], dim=1,
            )  # fmt: skip
        if self.cfg.drop_features or self._absolute:
            obs_raw = obs_raw * self.keep
        return obs_raw

    def nobs(self, obs_raw: torch.Tensor) -> torch.Tensor:
        return self.norm.obs(self.prep(obs_raw))

    def _assemble(self, offsets_n: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.norm.unact(offsets_n), logits.unsqueeze(-1)], dim=-1)


# ----------------------------------------------------------------------------------- MLP
class MLPPolicy(PolicyBase):
    def __init__(self, cfg: MLPConfig):
        super().__init__(cfg)
        layers, d = [], self.obs_dim
        for _ in range(cfg.layers):
            layers += [nn.Linear(d, cfg.hidden), nn.GELU()]
            if cfg.dropout:
                layers.append(nn.Dropout(cfg.dropout))
            d = cfg.hidden
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(d, self.k * ACTION_DIM)

    def _raw(self, obs_raw):
        y = self.head(self.body(self.nobs(obs_raw))).reshape(-1, self.k, ACTION_DIM)
        return y[..., :3], y[..., 3]

    def forward(self, obs_raw):
        off, logit = self._raw(obs_raw)
        return self._assemble(off, logit)

    def loss(self, obs_raw, offsets_raw, suction):
        off, logit = self._raw(obs_raw)
        l1 = F.l1_loss(off, self.norm.act(offsets_raw))
        bce = _bce(logit, suction)
        return l1 + self.cfg.suction_loss_weight * bce, {"l1": l1.detach(), "bce": bce.detach()}


# ----------------------------------------------------------------------------------- ACT
class _Attention(nn.Module):
    """Plain matmul/softmax attention: a simple ONNX graph on any provider."""

    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        self.h, self.dh = heads, d // heads
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.h, self.dh).permute(2, 0, 3, 1, 4).unbind(0)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.dh), dim=-1)
        return self.out((self.drop(att) @ v).transpose(1, 2).reshape(b, t, d))


class _Block(nn.Module):
    def __init__(self, d: int, heads: int, ff: int, dropout: float):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = _Attention(d, heads, dropout)
        self.mlp = nn.Sequential(nn.Linear(d, ff), nn.GELU(), nn.Linear(ff, d), nn.Dropout(dropout))

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class ACTPolicy(PolicyBase):
    """ACT's chunk transformer: observation tokens (arm, target, place, grip, [goal latent: spec
    v3,] whole observation) [+ the CVAE latent token] + K learned action queries with learned position embeddings through
    a pre-LN transformer encoder; each query decodes to one step's tip offset and suction logit.
    The optional CVAE encoder (training only) reads [CLS, observation, expert chunk] and gives the
    latent z; inference uses z = 0 (the prior mean), as ACT does."""

    def __init__(self, cfg: ACTConfig):
        super().__init__(cfg)
        d = cfg.d_model
        groups = {**TOKEN_GROUPS, **(LATENT_GROUP if cfg.spec_version == 3 else {})}
        self.groups = [_group_index(g, cfg.spec_version) for g in groups.values()]
        for i, g in enumerate(self.groups):
            self.register_buffer(f"group{i}", torch.tensor(g, dtype=torch.long), persistent=False)
        self.embed = nn.ModuleList(nn.Linear(len(g), d) for g in self.groups)
        self.embed_all = nn.Linear(self.obs_dim, d)
        n_tok = len(self.groups) + 1 + (1 if cfg.use_vae else 0)
        self.n_tok = n_tok
        self.queries = nn.Parameter(torch.randn(self.k, d) * 0.02)
        self.pos = nn.Parameter(torch.randn(n_tok + self.k, d) * 0.02)
        self.blocks = nn.ModuleList(
            _Block(d, cfg.n_heads, cfg.ff_dim, cfg.dropout) for _ in range(cfg.n_layers)
        )
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, ACTION_DIM)
        if cfg.use_vae:
            self.z_proj = nn.Linear(cfg.latent_dim, d)
            self.vae_cls = nn.Parameter(torch.randn(1, d) * 0.02)
            self.vae_obs = nn.Linear(self.obs_dim, d)
            self.vae_act = nn.Linear(ACTION_DIM, d)
            self.vae_pos = nn.Parameter(torch.randn(2 + self.k, d) * 0.02)
            self.vae_blocks = nn.ModuleList(
                _Block(d, cfg.n_heads, cfg.ff_dim, cfg.dropout) for _ in range(cfg.vae_layers)
            )
            self.vae_out = nn.Linear(d, 2 * cfg.latent_dim)

    def _decode(self, obs_n, z):
        b = obs_n.shape[0]
        toks = [emb(obs_n[:, getattr(self, f"group{i}")]) for i, emb in enumerate(self.embed)]
        toks.append(self.embed_all(obs_n))
        if self.cfg.use_vae:
            toks.append(self.z_proj(z))
        x = (
            torch.cat([torch.stack(toks, dim=1), self.queries.unsqueeze(0).expand(b, -1, -1)], dim=1)
            + self.pos
        )
        for blk in self.blocks:
            x = blk(x)
        y = self.head(self.ln(x[:, self.n_tok :]))
        return y[..., :3], y[..., 3]

    def forward(self, obs_raw):
        obs_n = self.nobs(obs_raw)
        z = torch.zeros(obs_n.shape[0], self.cfg.latent_dim) if self.cfg.use_vae else None
        off, logit = self._decode(obs_n, z)
        return self._assemble(off, logit)

    def loss(self, obs_raw, offsets_raw, suction):
        obs_n = self.nobs(obs_raw)
        act_n = self.norm.act(offsets_raw)
        parts = {}
        z, kld = None, None
        if self.cfg.use_vae:
            b = obs_n.shape[0]
            a_tok = self.vae_act(torch.cat([act_n, suction.unsqueeze(-1) * 2 - 1], dim=-1))
            x = (
                torch.cat([self.vae_cls.expand(b, 1, -1), self.vae_obs(obs_n).unsqueeze(1), a_tok], 1)
                + self.vae_pos
            )
            for blk in self.vae_blocks:
                x = blk(x)
            mu, logvar = self.vae_out(x[:, 0]).chunk(2, dim=-1)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            kld = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).sum(-1).mean()
        off, logit = self._decode(obs_n, z)
        l1 = F.l1_loss(off, act_n)
        bce = _bce(logit, suction)
        loss = l1 + self.cfg.suction_loss_weight * bce
        parts = {"l1": l1.detach(), "bce": bce.detach()}
        if kld is not None:
            loss = loss + self.cfg.kl_weight * kld / (self.k * 3)
            parts["kld"] = kld.detach()
        return loss, parts


# ----------------------------------------------------------------------------------- flow
def _time_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(1000.0) * torch.arange(half, dtype=torch.float32) / half)
    ang = t.unsqueeze(-1) * freqs * 100.0
    return torch.cat([torch.sin(ang), torch.cos(ang)], dim=-1)


class _ResBlock(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.ln = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, d))

    def forward(self, x):
        return x + self.ff(self.ln(x))


class FlowPolicy(PolicyBase):
    """Flow matching (rectified flow) on the normalised K x 3 tip-offset chunk.

    Train: x0 ~ N(0, I), x1 = expert chunk, x_t = (1 - t) x0 + t x1, regress v(x_t, t, obs) on
    x1 - x0. Inference: x = 0 (the noise mean: deterministic, one fixed graph) and `flow_steps`
    Euler steps, unrolled in the exported graph. Suction logits come from a deterministic head on
    the observation encoding (binary; a flow over it buys nothing)."""

    def __init__(self, cfg: FlowConfig):
        super().__init__(cfg)
        h = cfg.hidden
        enc = [nn.Linear(self.obs_dim, h), nn.GELU()]
        for _ in range(cfg.enc_layers - 1):
            enc += [nn.Linear(h, h), nn.GELU()]
        self.enc = nn.Sequential(*enc)
        self.suction_head = nn.Linear(h, self.k)
        self.inp = nn.Linear(self.k * 3 + cfg.time_dim + h, h)
        self.blocks = nn.Sequential(*[_ResBlock(h) for _ in range(cfg.net_layers)])
        self.out = nn.Sequential(nn.LayerNorm(h), nn.Linear(h, self.k * 3))

    def velocity(self, x, t, cond):
        temb = _time_embedding(t, self.cfg.time_dim)
        return self.out(self.blocks(self.inp(torch.cat([x, temb, cond], dim=-1))))

    def forward(self, obs_raw):
        cond = self.enc(self.nobs(obs_raw))
        b = cond.shape[0]
        n = self.cfg.flow_steps
        x = torch.zeros(b, self.k * 3)
        for i in range(n):  # unrolled when exported
            t = torch.full((b,), i / n)
            x = x + self.velocity(x, t, cond) / n
        return self._assemble(x.reshape(b, self.k, 3), self.suction_head(cond))

    def loss(self, obs_raw, offsets_raw, suction):
        cond = self.enc(self.nobs(obs_raw))
        b = cond.shape[0]
        x1 = self.norm.act(offsets_raw).reshape(b, -1)
        x0 = torch.randn_like(x1)
        if self.cfg.time_sampling == "beta":
            u = torch.distributions.Beta(1.5, 1.0).sample((b,))
            t = 0.999 * (1.0 - u)  # pi0: more weight on the noisy end
        else:
            t = torch.rand(b)
        xt = (1 - t)[:, None] * x0 + t[:, None] * x1
        mse = F.mse_loss(self.velocity(xt, t, cond), x1 - x0)
        bce = _bce(self.suction_head(cond), suction)
        return mse + self.cfg.suction_loss_weight * bce, {"mse": mse.detach(), "bce": bce.detach()}


MODEL_TYPES = {"act": ACTPolicy, "flow": FlowPolicy, "mlp": MLPPolicy}


def make_model(cfg: PolicyConfigBase) -> PolicyBase:
    return MODEL_TYPES[cfg.type](cfg)
