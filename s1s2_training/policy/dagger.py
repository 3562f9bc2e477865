"""DAgger for the System 1 policy: roll out the current policy in the sim with oracle goals, label
every visited state with the scripted expert's action chunk, aggregate, retrain.

Behaviour cloning alone (0 of 13 items closed loop) drifts into states the expert never visits.
Here the executed command comes from the policy, except in random blocks of ticks where the
expert drives (probability `beta`, so later phases such as transport are visited even by a weak
policy); expert-driven commands get a little Gaussian noise (DART) so the data covers recoveries.

Labels: the expert is `ScriptedExpert` via `ExpertDriver` (ground-truth target selection; its
phase memory follows the rolled-out state). Its internal command is re-synced every tick to the
command actually sent, and the K-step label is its rate-limited path from there toward the goal
it chose this tick (`ScriptedExpert.plan`).

    python -m s1s2_training.policy.dagger --demos demos.npz --out /tmp/dagger
"""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from fast_policy.controller import Controller, ControllerConfig
from fast_policy.goal_tracker import GoalData, GoalTracker
from fast_policy.runtime import CPU, PolicySession
from fast_policy.safety import JointLimits
from s1s2.topics import CONTROL_DT, WORLD_FRAME

SUCTION_PHASES = ("descend", "lift", "transport")
EPISODES = 20  # policy rollouts per DAgger round (30 s each, about 2 s of CPU each)
DART_EPISODES = 20  # noisy expert rollouts added to the demonstrations before the first fit
NOISE_RAD = 0.02  # DART: Gaussian noise on the executed expert command (the label stays clean)
BETA = 0.3  # share of 1 s blocks in which the expert drives during DAgger rollouts
FIRST_MINUTES = 4.0  # training time cap of the first fit (from scratch)
FINETUNE_MINUTES = 2.0  # per DAgger round (fine-tuning, keeps the normalisation stats)


class _LabellingExpert:
    """Labels visited states with the expert: its command follows what was really sent, and its
    K-step label is its own rate-limited path toward the goal it chose (ScriptedExpert.plan)."""

    def __init__(self, drv):
        self.drv = drv
        self.last_cmd: np.ndarray | None = None

    def compute(self):
        if self.last_cmd is not None:
            self.drv.expert.sync_command(self.last_cmd)
        return self.drv.compute()

    def chunk(self, k: int) -> np.ndarray:
        return self.drv.expert.plan(k)


def collect(
    model_path,
    n_episodes: int,
    seed: int,
    beta: float = BETA,
    block_ticks: int = 50,
    noise_rad: float = NOISE_RAD,
    episode_s: float = 30.0,
    k: int = 10,
    episode_offset: int = 0,
    progress: bool = True,
) -> tuple[dict[str, np.ndarray], dict]:
    """Policy rollouts relabelled by the expert, in the `data.SCHEMA` layout. Returns (arrays, score)."""
    from conveyor_sim.cell import CellSim, SimConfig
    from conveyor_sim.expert import ExpertDriver

    rng = np.random.default_rng(seed)
    sess = PolicySession(model_path, providers=[CPU], log=lambda _m: None) if model_path else None
    sim = CellSim(SimConfig(seed=seed, render_enabled=False))
    limits = JointLimits.from_arm(sim.desc.arm)
    names, zero3 = sim.desc.arm.joint_names, np.zeros(3)
    rows = {key: [] for key in ("joint_pos", "joint_vel", "suction", "goal_target", "goal_place")}
    rows |= {key: [] for key in ("goal_latent", "has_goal", "action_joint_pos", "action_suction")}
    rows["episode_index"] = []
    scores = []
    n_ticks = int(round(episode_s / CONTROL_DT))
    try:
        for ep in tqdm(range(n_episodes), desc="dagger rollouts", unit="ep", disable=not progress):
            sim.reset(seed + ep)
            drv = ExpertDriver(sim, CONTROL_DT)
            lab = _LabellingExpert(drv)
            ctrl = (
                Controller(sess, sess.meta, limits, ControllerConfig(rate_hz=1.0 / CONTROL_DT), GoalTracker())
                if sess
                else None
            )
            expert_drives = True
            for t in range(n_ticks):
                if t % block_ticks == 0:
                    was = expert_drives
                    expert_drives = ctrl is None or rng.random() < beta
                    if was and not expert_drives and lab.last_cmd is not None:
                        # hand over: the limiter starts from the last command actually sent
                        ctrl.restart_from(lab.last_cmd, sim.joint_velocities())
                now = sim.time
                q, qd, suction = sim.joint_positions(), sim.joint_velocities(), sim.suction
                act = lab.compute()
                g = drv.last_goal
                label = g.label
                target = g.pick_world if g.pick_world is not None else zero3
                place_ = g.place_world if g.place_world is not None else zero3
                latent = g.latent
                rows["joint_pos"].append(q)
                rows["joint_vel"].append(qd)
                rows["suction"].append(float(suction))
                rows["goal_target"].append(target)
                rows["goal_place"].append(place_)
                rows["goal_latent"].append(latent)
                rows["has_goal"].append(float(label is not None))
                rows["action_joint_pos"].append(lab.chunk(k))
                # suction by phase: the expert keeps whatever suction it sees while approaching
                # (it never gets there with suction on itself); a policy that switched on early
                # must learn to switch off
                rows["action_suction"].append(np.full(k, float(act.phase in SUCTION_PHASES)))
                rows["episode_index"].append(episode_offset + ep)
                if ctrl is not None:
                    ctrl.on_goal(
                        GoalData(
                            stamp_s=now,
                            frame_id=WORLD_FRAME,
                            target_label=label or "",
                            target_xyz=tuple(target),
                            place_xyz=tuple(place_),
                            latent=latent.tolist(),
                            valid_for_s=1.0,
                        )
                    )
                    ctrl.on_joint_state(names, q, qd, now)
                if expert_drives:
                    cmd_q = act.q + rng.normal(0.0, noise_rad, act.q.shape)
                    cmd_s = act.suction
                    if ctrl is not None:
                        ctrl.suction = cmd_s
                else:
                    cmd = ctrl.tick(now)
                    cmd_q, cmd_s = cmd.positions, cmd.suction
                lab.last_cmd = np.asarray(cmd_q, float).copy()
                sim.command_joints(cmd_q)
                sim.set_suction(cmd_s)
                sim.step(CONTROL_DT)
            scores.append(sim.score.totals().as_dict())
    finally:
        sim.close()
    arrays = {
        key: np.asarray(v, np.int64 if key == "episode_index" else np.float32) for key, v in rows.items()
    }
    total = {
        key: sum(s[key] for s in scores) for key in ("correct", "wrong_bin", "missed", "dropped", "total")
    }
    return arrays, total


def run(
    demos,
    work_dir,
    cfg=None,
    iters: int = 2,
    episodes: int = EPISODES,
    dart_episodes: int = DART_EPISODES,
    seed: int = 0,
    first_minutes: float = FIRST_MINUTES,
    finetune_minutes: float = FINETUNE_MINUTES,
    beta: float = BETA,
    eval_episodes: int = 3,
    progress: bool = True,
) -> tuple[object, dict, dict, list[dict]]:
    """BC on demos + DART-noised expert rollouts, then `iters` DAgger rounds (fine-tuning).
    Returns (model, stats, train metrics of the last round, per-round log)."""
    from dataclasses import replace
    from pathlib import Path

    import torch

    from s1s2_training.policy.configuration import PolicyConfig
    from s1s2_training.policy.evaluate import closed_loop
    from s1s2_training.policy.export import save_policy
    from s1s2_training.policy.train import train

    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    cfg = cfg or PolicyConfig(seed=seed)
    paths = [Path(demos)]
    arr, score = collect(
        None, dart_episodes, 3000 + seed, beta=1.0, episode_offset=100_000, progress=progress
    )
    np.savez_compressed(work / "dart.npz", **arr)
    paths.append(work / "dart.npz")
    log = [
        {
            "round": 0,
            "data": "demos + DART expert rollouts",
            "rows": int(len(arr["joint_pos"])),
            "score": score,
        }
    ]
    model, st, metrics = train(replace(cfg, max_minutes=first_minutes), paths, progress)
    for r in range(iters + 1):
        path = work / f"round{r}"
        save_policy(model, st, path, trained=True, provenance={"dagger_round": r}, metrics=metrics)
        torch.save({"state_dict": model.state_dict(), "stats": st}, path / "model.pt")
        if eval_episodes:
            cl = closed_loop(path / "policy.onnx", eval_episodes, 1000, progress=False)
            log[-1]["closed_loop"] = {"policy": cl["policy"], "expert": cl["expert"]}
        print(log[-1], flush=True)
        if r == iters:
            break
        arr, score = collect(
            path / "policy.onnx", episodes, 4000 + 100 * r + seed, beta=beta,
            episode_offset=200_000 + 1000 * r, progress=progress,
        )  # fmt: skip
        np.savez_compressed(work / f"dagger{r + 1}.npz", **arr)
        paths.append(work / f"dagger{r + 1}.npz")
        log.append({"round": r + 1, "rows": int(len(arr["joint_pos"])), "rollout_score": score})
        ft = replace(cfg, max_minutes=finetune_minutes, lr=cfg.lr * 0.3)
        model, st, metrics = train(ft, paths, progress, init=(model, st))
    return model, st, metrics, log


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demos", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--iters", type=int, default=2)
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--first-minutes", type=float, default=4.0)
    ap.add_argument("--finetune-minutes", type=float, default=2.0)
    a = ap.parse_args()
    run(a.demos, a.out, iters=a.iters, episodes=a.episodes, first_minutes=a.first_minutes,
        finetune_minutes=a.finetune_minutes)  # fmt: skip
