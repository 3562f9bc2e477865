"""Demonstrations for the System 1 policy, recorded through the deployment execution path.

Every episode runs `rollout.run_episode`: the Controller (aim point -> IK -> SafetyLimiter) moves
the arm, fed by an oracle System 2; the scripted expert (`conveyor_sim.expert`) labels every tick with
its action chunk. Per episode: belt speed uniform in `belt_speed_range`, goal timing per-tick or
1 Hz planner-like (latency, pick-point noise, belt frame) with probability `planner_fraction`.

- Expert episodes (`policy_path=None`): the expert drives, with DART noise on the aim point.
- DAgger episodes: the policy (ONNX, through the same controller) drives, the expert drives
  random 1 s blocks with probability `beta`; every visited state gets the expert's label.

Arrays (N rows at 50 Hz): obs (N, obs_dim of CollectConfig.spec_version) f32, act (N, K, 4) f32 (tip offsets in m + the expert's
suction logit +-6), phase (N,) i8 (expert phase index), episode (N,) i64 (the sim seed),
belt_speed (N,) f32, planner (N,) bool.

Your own demonstrations: `from_raw` (CLI: `python -m s1s2_training.policy.data --from-raw
policy.npz --out train.npz`) turns a joint-space tick log (the schema of `s1s2 sim export` /
`s1s2 sim policy-dataset`, docs/policy.md) into these arrays. Labels are the forward kinematics of
the next K commanded joint positions relative to the current tip, and +-6 suction logits of the
next K suction commands; phase is unknown there (-1).
"""

from __future__ import annotations

import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from s1s2_training.policy.parallel import run_tasks, worker_session, worker_sim
from s1s2_training.policy.rollout import (
    OUTCOMES,
    DartConfig,
    EpisodeSpec,
    ExpertParams,
    GoalTiming,
    run_episode,
)

ARRAYS = ("obs", "act", "phase", "episode", "belt_speed", "planner")


@dataclass
class CollectConfig:
    n_episodes: int
    seed_base: int  # episode i runs the sim with seed seed_base + i
    chunk_size: int = 10
    episode_s: float = 30.0
    belt_speed_range: tuple[float, float] = (0.05, 0.17)
    planner_fraction: float = 0.5
    planner_noise_range: tuple[float, float] = (0.0, 0.02)  # std per axis, drawn per episode
    dart: DartConfig | None = field(default_factory=DartConfig)
    beta: float = 0.3  # DAgger: chance that the expert drives a 1 s block
    expert: ExpertParams = field(default_factory=ExpertParams)
    raw_expert: bool = False  # ABLATION: record the old way (expert drives joints directly, no limiter)
    spec_version: int = 2  # observation spec of the recorded rows (3: + the goal latent)

    def __post_init__(self):
        if not (isinstance(self.n_episodes, int) and self.n_episodes >= 1):
            raise ValueError(f"CollectConfig.n_episodes must be a positive int, got {self.n_episodes!r}")
        lo, hi = self.belt_speed_range
        if not 0 <= lo <= hi <= 1:
            raise ValueError(
                f"CollectConfig.belt_speed_range must be 0 <= lo <= hi <= 1, got {self.belt_speed_range}"
            )
        if not 0 <= self.planner_fraction <= 1:
            raise ValueError(
                f"CollectConfig.planner_fraction must be in [0, 1], got {self.planner_fraction!r}"
            )
        if not 0 <= self.beta <= 1:
            raise ValueError(f"CollectConfig.beta must be in [0, 1], got {self.beta!r}")


def episode_spec(cfg: CollectConfig, i: int) -> EpisodeSpec:
    seed = cfg.seed_base + i
    rng = np.random.default_rng([seed, 3])
    speed = float(rng.uniform(*cfg.belt_speed_range))
    if rng.random() < cfg.planner_fraction:
        goals = GoalTiming.planner(float(rng.uniform(*cfg.planner_noise_range)))
    else:
        goals = GoalTiming.per_tick()
    return EpisodeSpec(seed, speed, cfg.episode_s, goals)


def _collect_one(task) -> tuple[dict, dict]:
    cfg, i, policy_path = task
    ep = episode_spec(cfg, i)
    policy = None
    if policy_path is not None:
        from fast_policy.controller import OnnxPolicySource

        policy = OnnxPolicySource(worker_session(str(policy_path)))
    if cfg.raw_expert:
        from s1s2_training.policy.rollout import run_raw_expert_episode

        res = run_raw_expert_episode(worker_sim(), ep, cfg.chunk_size, cfg.expert)
    else:
        res = run_episode(
            worker_sim(), ep, cfg.chunk_size, policy=policy, expert_params=cfg.expert, label=True,
            beta=cfg.beta if policy is not None else 1.0, dart=cfg.dart, obs_version=cfg.spec_version,
        )  # fmt: skip
    n = len(res.rows["obs"])
    rows = dict(res.rows)
    rows["episode"] = np.full(n, ep.seed, np.int64)
    rows["belt_speed"] = np.full(n, ep.belt_speed, np.float32)
    rows["planner"] = np.full(n, ep.goals.timing == "planner", bool)
    return rows, res.score


def collect(
    cfg: CollectConfig, policy_path=None, pool=None, progress=True, desc="expert+DART"
) -> tuple[dict, dict]:
    """Roll out cfg.n_episodes; returns (arrays, summed score)."""
    policy_path = None if policy_path is None else str(Path(policy_path).resolve())
    tasks = [(cfg, i, policy_path) for i in range(cfg.n_episodes)]
    out = run_tasks(_collect_one, tasks, pool, progress, desc)
    arrays = {k: np.concatenate([r[k] for r, _ in out]) for k in ARRAYS}
    score = {k: int(sum(s[k] for _, s in out)) for k in OUTCOMES}
    return arrays, score


def save(path: str | Path, arrays: dict, meta: dict | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path


def load(path: str | Path) -> dict:
    """A dataset written by `save`, checked: every array present, same row count, finite values."""
    try:
        with np.load(path) as z:
            files = set(z.files)
            arrays = {k: z[k] for k in ARRAYS if k in files}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as e:
        raise ValueError(f"policy dataset {str(path)!r}: cannot read ({e})") from None
    missing = [k for k in ARRAYS if k not in arrays]
    if missing:
        raise ValueError(f"policy dataset {str(path)!r}: missing array(s) {', '.join(missing)}")
    rows = {k: len(v) for k, v in arrays.items()}
    if len(set(rows.values())) != 1:
        raise ValueError(f"policy dataset {str(path)!r}: arrays differ in row count {rows}")
    for k in ("obs", "act", "belt_speed"):
        bad = ~np.isfinite(arrays[k])
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise ValueError(f"policy dataset {str(path)!r}: {k} contains NaN/inf (first at row {row})")
    return arrays


RAW_ARRAYS = (
    "joint_pos", "joint_vel", "suction", "holding", "goal_target", "goal_target_vel", "goal_place",
    "has_goal", "belt_speed", "action_joint_pos", "action_suction", "episode_index",
)  # fmt: skip


def from_raw(raw: dict, chunk_size: int = 10, arm=None) -> dict:
    """A joint-space tick log (RAW_ARRAYS) -> training arrays (ARRAYS), through the same
    `build_observation` the runtime uses."""
    from conveyor_sim.expert import SUCTION_LOGIT
    from fast_policy.spec import build_observation
    from s1s2 import kinematics as kin
    from s1s2.cell import DEFAULT_CELL

    arm = arm or DEFAULT_CELL.arm
    missing = [k for k in RAW_ARRAYS if k not in raw]
    if missing:
        raise ValueError(f"raw policy log: missing array(s) {', '.join(missing)} (schema: docs/policy.md)")
    n = len(raw["joint_pos"])
    for k in RAW_ARRAYS:
        a = np.asarray(raw[k])
        if len(a) != n:
            raise ValueError(f"raw policy log: {k} has {len(a)} rows, joint_pos has {n}")
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise ValueError(
                f"raw policy log: {k} contains NaN/inf (first at row {int(np.argwhere(~np.isfinite(a))[0][0])})"
            )
    aq = np.asarray(raw["action_joint_pos"], np.float64)
    if aq.ndim != 3 or aq.shape[2] != len(arm.joints) or aq.shape[1] < chunk_size:
        raise ValueError(
            f"raw policy log: action_joint_pos shape {aq.shape}, need (N, >={chunk_size}, {len(arm.joints)})"
        )
    q = np.asarray(raw["joint_pos"], np.float64)
    qd = np.asarray(raw["joint_vel"], np.float64)
    tip = kin.forward_batch(arm, q)
    tip_vel = np.stack([kin.tip_velocity(arm, a, b) for a, b in zip(q, qd, strict=True)])
    holding = np.asarray(raw["holding"], np.float64)
    has_goal = np.asarray(raw["has_goal"], np.float64)
    place = np.asarray(raw["goal_place"], np.float64)
    obs = build_observation(
        tip, tip_vel, raw["goal_target"], raw["goal_target_vel"], place,
        (has_goal > 0.5) & (holding < 0.5), np.any(place != 0, axis=1), raw["suction"], holding, q, qd,
        raw["belt_speed"],
    )  # fmt: skip
    fut = kin.forward_batch(arm, aq[:, :chunk_size].reshape(-1, aq.shape[2])).reshape(n, chunk_size, 3)
    act = np.zeros((n, chunk_size, 4), np.float32)
    act[..., :3] = fut - tip[:, None, :]
    act[..., 3] = np.where(
        np.asarray(raw["action_suction"])[:, :chunk_size] > 0.5, SUCTION_LOGIT, -SUCTION_LOGIT
    )
    return {
        "obs": obs,
        "act": act,
        "phase": np.full(n, -1, np.int8),
        "episode": np.asarray(raw["episode_index"], np.int64),
        "belt_speed": np.asarray(raw["belt_speed"], np.float32),
        "planner": np.zeros(n, bool),
    }


def concat(parts: list[dict]) -> dict:
    return {k: np.concatenate([p[k] for p in parts]) for k in ARRAYS}


def describe(cfg: CollectConfig) -> dict:
    d = asdict(cfg)
    return d


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="convert a joint-space tick log to System 1 training arrays")
    ap.add_argument(
        "--from-raw", type=Path, required=True, help="policy.npz from s1s2 sim export / policy-dataset"
    )
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--chunk-size", type=int, default=10)
    a = ap.parse_args(argv)
    try:
        with np.load(a.from_raw) as z:
            raw = {k: z[k] for k in z.files}
        arrays = from_raw(raw, a.chunk_size)
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        print(f"policy data: {a.from_raw}: {e}")
        return 2
    save(a.out, arrays)
    print(f"policy data: {len(arrays['obs'])} rows, {len(np.unique(arrays['episode']))} episodes -> {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
