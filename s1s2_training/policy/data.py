"""Behaviour-cloning data: the policy `.npz` schema, loading, episode split and normalisation stats.

Schema (N samples at 50 Hz, K = chunk size; `conveyor_sim.datasets.make_policy_dataset` writes it):
    joint_pos (N,4) f32, joint_vel (N,4) f32, suction (N,) f32, goal_target (N,3) f32 (pick point,
    world frame, now), goal_place (N,3) f32, goal_latent (N,32) f32, has_goal (N,) f32,
    action_joint_pos (N,K,4) f32 (next K commanded joint positions), action_suction (N,K) f32,
    episode_index (N,) i64
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fast_policy.spec import N_JOINTS, OBS_DIM, build_observation
from s1s2.topics import LATENT_DIM

SCHEMA: dict[str, tuple] = {
    "joint_pos": (N_JOINTS,),
    "joint_vel": (N_JOINTS,),
    "suction": (),
    "goal_target": (3,),
    "goal_place": (3,),
    "goal_latent": (LATENT_DIM,),
    "has_goal": (),
    "action_joint_pos": (None, N_JOINTS),  # None = K
    "action_suction": (None,),
    "episode_index": (),
}


@dataclass
class BCData:
    obs: np.ndarray  # (N, OBS_DIM) raw
    target: np.ndarray  # (N, K, 4) action_joint_pos (absolute), or action_joint_pos - joint_pos (relative)
    suction: np.ndarray  # (N, K)
    episode: np.ndarray  # (N,)

    @property
    def chunk_size(self) -> int:
        return self.target.shape[1]

    def subset(self, mask: np.ndarray) -> BCData:
        return BCData(self.obs[mask], self.target[mask], self.suction[mask], self.episode[mask])


def load_npz(path: str | Path, chunk_size: int | None = None, relative: bool = True) -> BCData:
    """Load and check a dataset; ValueError names the file and the bad array."""
    path = Path(path)
    try:
        z = np.load(path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"policy dataset {str(path)!r}: cannot read ({exc})") from exc
    with z:
        missing = [k for k in SCHEMA if k not in z.files]
        if missing:
            raise ValueError(f"policy dataset {str(path)!r}: missing array(s) {', '.join(missing)}")
        arr = {k: z[k] for k in SCHEMA}
    n = arr["joint_pos"].shape[0]
    k = arr["action_joint_pos"].shape[1] if arr["action_joint_pos"].ndim == 3 else -1
    for name, shape in SCHEMA.items():
        want = (n, *(k if s is None else s for s in shape))
        if arr[name].shape != want:
            raise ValueError(
                f"policy dataset {str(path)!r}: {name} has shape {arr[name].shape}, expected {want}"
            )
        if name != "episode_index" and not np.all(np.isfinite(arr[name])):
            raise ValueError(f"policy dataset {str(path)!r}: {name} contains NaN/inf")
    if chunk_size is not None and k != chunk_size:
        raise ValueError(f"policy dataset {str(path)!r}: chunk size {k}, the config wants {chunk_size}")
    if n == 0:
        raise ValueError(f"policy dataset {str(path)!r}: no samples")
    obs = build_observation(
        arr["joint_pos"],
        arr["joint_vel"],
        arr["suction"],
        arr["goal_target"],
        arr["goal_place"],
        arr["has_goal"],
        arr["goal_latent"],
    )
    assert obs.shape == (n, OBS_DIM)
    target = arr["action_joint_pos"] - (arr["joint_pos"][:, None, :] if relative else 0.0)
    target = target.astype(np.float32)
    return BCData(
        obs, target, arr["action_suction"].astype(np.float32), arr["episode_index"].astype(np.int64)
    )


def split_episodes(data: BCData, val_fraction: float, seed: int) -> tuple[BCData, BCData]:
    """Hold out whole episodes (neighbouring samples of one episode are nearly identical)."""
    eps = np.unique(data.episode)
    if len(eps) < 2:
        raise ValueError(f"need at least 2 episodes to hold some out for validation, got {len(eps)}")
    rng = np.random.default_rng(seed)
    n_val = max(1, int(round(len(eps) * val_fraction)))
    val_eps = rng.choice(eps, size=n_val, replace=False)
    is_val = np.isin(data.episode, val_eps)
    return data.subset(~is_val), data.subset(is_val)


def stats(data: BCData, std_floor: float) -> dict[str, np.ndarray]:
    return {
        "obs_mean": data.obs.mean(0),
        "obs_std": np.maximum(data.obs.std(0), std_floor),
        "action_mean": data.target.mean(0),
        "action_std": np.maximum(data.target.std(0), std_floor * 0.1),  # relative targets can be small (rad)
    }


def synthetic_npz(
    path: str | Path, n_episodes: int = 4, steps: int = 60, chunk_size: int = 10, seed: int = 0
):
    """A tiny dataset in the schema for tests: the 'expert' moves joints linearly towards a goal-
    dependent pose. Not a stand-in for the real demos."""
    rng = np.random.default_rng(seed)
    rows = {k: [] for k in SCHEMA}
    for ep in range(n_episodes):
        target = rng.uniform(-0.5, 0.5, 3).astype(np.float32)
        goal_q = np.array([target[0], 0.5 + target[1], -1.0 + target[2], -0.5], np.float32)
        q = rng.uniform(-0.3, 0.3, N_JOINTS).astype(np.float32)
        traj = [q]
        for _ in range(steps + chunk_size):
            q = q + np.clip(goal_q - q, -0.04, 0.04)
            traj.append(q)
        traj = np.array(traj)
        latent = rng.standard_normal(LATENT_DIM).astype(np.float32)
        for t in range(steps):
            rows["joint_pos"].append(traj[t])
            rows["joint_vel"].append((traj[t + 1] - traj[t]) * 50)
            rows["suction"].append(np.float32(t > steps // 2))
            rows["goal_target"].append(target)
            rows["goal_place"].append(np.array([-0.5, -0.95, 0.5], np.float32))
            rows["goal_latent"].append(latent)
            rows["has_goal"].append(np.float32(1.0))
            rows["action_joint_pos"].append(traj[t + 1 : t + 1 + chunk_size])
            rows["action_suction"].append(
                np.array([float(t + i > steps // 2) for i in range(chunk_size)], np.float32)
            )
            rows["episode_index"].append(ep)
    out = {k: np.asarray(v, np.int64 if k == "episode_index" else np.float32) for k, v in rows.items()}
    np.savez_compressed(path, **out)
    return Path(path)
