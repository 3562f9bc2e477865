"""Closed-loop evaluation of an exported policy in the MuJoCo cell, through the same runtime the
robot uses (onnxruntime `PolicySession` + `Controller` + `SafetyLimiter`; no torch).

Goals come from an oracle System 2: the scripted expert's target selection on ground truth
(`ExpertDriver.compute`, whose action is discarded), turned into world-frame goals exactly like
the demonstrations were. So this measures System 1 alone, not the planner. The expert's own score
on the same seeds is reported beside it.

    python -m s1s2_training.policy.evaluate --model models/policy/policy.onnx --episodes 3
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from tqdm import tqdm

from fast_policy.controller import Controller, ControllerConfig
from fast_policy.goal_tracker import GoalData, GoalTracker
from fast_policy.runtime import CPU, PolicySession
from fast_policy.safety import JointLimits
from s1s2.topics import CONTROL_DT, WORLD_FRAME


def _score(sim) -> dict:
    t = sim.score.totals()
    return {"correct": t.correct, "wrong_bin": t.wrong_bin, "missed": t.missed, "dropped": t.dropped}


def closed_loop(
    model_path, n_episodes: int = 3, seed: int = 1000, episode_s: float = 30.0, progress=True
) -> dict:
    from conveyor_sim.cell import CellSim, SimConfig
    from conveyor_sim.expert import ExpertDriver
    from conveyor_sim.oracle import Oracle

    sess = PolicySession(model_path, providers=[CPU], log=lambda _m: None)
    sim = CellSim(SimConfig(seed=seed, render_enabled=False))
    limits = JointLimits.from_arm(sim.desc.arm)
    names = sim.desc.arm.joint_names
    zero3 = np.zeros(3)
    policy_scores, expert_scores, tick_s, holds = [], [], [], 0
    n_ticks = int(round(episode_s / CONTROL_DT))
    try:
        for ep in tqdm(range(n_episodes), desc="closed loop", unit="ep", disable=not progress):
            # the expert alone on this seed: the reference score
            sim.reset(seed + ep)
            drv = ExpertDriver(sim, CONTROL_DT)
            for _ in range(n_ticks):
                drv.tick()
                sim.step(CONTROL_DT)
            expert_scores.append(_score(sim))
            # the policy on the same seed, with oracle goals
            sim.reset(seed + ep)
            oracle = Oracle(sim.desc)
            ctrl = Controller(
                sess, sess.meta, limits, ControllerConfig(rate_hz=1.0 / CONTROL_DT), GoalTracker()
            )
            for _ in range(n_ticks):
                now = sim.time
                g = oracle.goal_for(sim)
                ctrl.on_goal(
                    GoalData(
                        stamp_s=now,
                        frame_id=WORLD_FRAME,
                        target_label=g.label or "",
                        target_xyz=tuple(g.pick_world if g.pick_world is not None else zero3),
                        place_xyz=tuple(g.place_world if g.place_world is not None else zero3),
                        latent=g.latent.tolist(),
                        valid_for_s=1.0,
                    )
                )
                ctrl.on_joint_state(names, sim.joint_positions(), sim.joint_velocities(), now)
                t0 = time.perf_counter()
                cmd = ctrl.tick(now)
                tick_s.append(time.perf_counter() - t0)
                sim.command_joints(cmd.positions)
                sim.set_suction(cmd.suction)
                sim.step(CONTROL_DT)
            holds += ctrl.holds
            policy_scores.append(_score(sim))
    finally:
        sim.close()

    def total(scores):
        return {k: int(sum(s[k] for s in scores)) for k in scores[0]}

    pol, exp = total(policy_scores), total(expert_scores)
    items = sum(pol.values())
    ms = np.asarray(tick_s) * 1e3
    return {
        "episodes": n_episodes,
        "episode_s": episode_s,
        "seeds": [seed + i for i in range(n_episodes)],
        "goal_source": "oracle (scripted expert's target selection on ground truth)",
        "policy": pol,
        "expert": exp,
        "policy_success_rate": round(pol["correct"] / items, 3) if items else 0.0,
        "expert_success_rate": round(exp["correct"] / max(1, sum(exp.values())), 3),
        "holds": holds,
        "tick_ms_p50": round(float(np.percentile(ms, 50)), 3),
        "tick_ms_p99": round(float(np.percentile(ms, 99)), 3),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="models/policy/policy.onnx")
    ap.add_argument("--episodes", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--episode-s", type=float, default=30.0)
    args = ap.parse_args(argv)
    print(json.dumps(closed_loop(args.model, args.episodes, args.seed, args.episode_s), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
