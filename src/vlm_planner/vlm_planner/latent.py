"""The goal latent: a projection of the VLM's pooled final hidden state.

    h      = mean over the prompt tokens (image + text, attention mask) of the language model's
             last-layer hidden state during the prefill of generation      (hidden_size,)
    z      = h @ P                                                            (32,)
    latent = z / ||z||_2                  (all zeros if ||z|| is 0 or h is not finite)

P (hidden_size x 32) is saved next to the model as `latent_projection.safetensors` (tensor
"projection", metadata: seed, pooling, trained, layout).

* The project's trained sim VLM (s1s2_training.vlm.pretrain): P is TRAINED jointly with the model
  (MSE) so that z ~= latent_target(class, pick point), the documented layout below, and
  `decode_latent` reads class, bin and pick point back from a published latent. Domain adapters
  are trained through the same frozen P (s1s2_training.vlm.finetune), so the meaning stays.
* A model folder without that file (a user's hub model): P is drawn once from N(0, 1/32) with
  torch's generator seeded by `latent_seed`: a stable fingerprint of scene + instruction.

Trained layout (z before normalisation): `s1s2.latent` (latent_target, decode_latent), shared
with the oracle and the spec-v3 System 1 policy.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from s1s2.latent import LAYOUT, decode_latent, latent_target  # noqa: F401 - the layout's home
from s1s2.topics import LATENT_DIM

PROJECTION_FILE = "latent_projection.safetensors"
POOLING = "mean of last-layer hidden state over prompt tokens (prefill), then @P, then L2-normalised"


def make_projection(hidden_size: int, seed: int, latent_dim: int = LATENT_DIM) -> np.ndarray:
    import torch

    g = torch.Generator().manual_seed(int(seed))
    return (torch.randn(hidden_size, latent_dim, generator=g) / latent_dim**0.5).numpy().astype(np.float32)


def save_projection(path: Path, projection: np.ndarray, seed: int, trained: bool = False) -> None:
    import torch
    from safetensors.torch import save_file

    meta = {"seed": seed, "latent_dim": int(projection.shape[1]), "pooling": POOLING}
    if trained:
        meta.update(trained=True, layout=LAYOUT)
    save_file(
        {"projection": torch.from_numpy(np.ascontiguousarray(projection, dtype=np.float32))},
        str(path),
        # One metadata key: safetensors writes a map's keys in no fixed order; a rebuild stays byte-identical.
        metadata={"s1s2_latent": json.dumps(meta, sort_keys=True)},
    )


def load_projection(model_dir: Path | None, hidden_size: int, seed: int) -> tuple[np.ndarray, str]:
    """(P, where it came from). Falls back to the seeded projection if the file is absent."""
    if model_dir is not None and (model_dir / PROJECTION_FILE).is_file():
        from safetensors.numpy import load_file

        p = load_file(str(model_dir / PROJECTION_FILE))["projection"].astype(np.float32)
        if p.shape != (hidden_size, LATENT_DIM):
            raise ValueError(
                f"{model_dir / PROJECTION_FILE}: projection shape {p.shape}, "
                f"expected ({hidden_size}, {LATENT_DIM}) for this model"
            )
        return p, str(model_dir / PROJECTION_FILE)
    return make_projection(hidden_size, seed), f"generated from latent_seed={seed}"


def project(pooled: np.ndarray, projection: np.ndarray) -> np.ndarray:
    pooled = np.asarray(pooled, dtype=np.float64)
    if not np.all(np.isfinite(pooled)):
        return np.zeros(projection.shape[1], dtype=np.float32)
    z = pooled @ projection.astype(np.float64)
    n = float(np.linalg.norm(z))
    if not np.isfinite(n) or n < 1e-12:
        return np.zeros(projection.shape[1], dtype=np.float32)
    return (z / n).astype(np.float32)
