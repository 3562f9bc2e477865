"""Honest closed-loop evaluation of exported System 1 policies (no torch).

Every policy episode runs through the deployment path: onnxruntime `PolicySession` ->
`Controller` (aim point, IK, SafetyLimiter, goal/vacuum handling) -> the MuJoCo cell. Goals come
from the oracle System 2 (`conveyor_sim.oracle.OraclePlanner`) in two timings:
- "tick": a fresh, exact goal every control tick;
- "planner": 1 Hz, stamped with the image time, 0.3-0.5 s latency, Gaussian pick-point noise
  (default 1.5 cm std per axis), belt frame, valid for 3 s; `--p-other P`: a plan names another
  item on the belt with chance P (a System 2 that confuses items).
Reference: today's scripted expert (joint space, ground truth, no limiter) on the same seeds,
belt speeds and episode length. Reported per belt speed: correct / wrong_bin / missed / dropped
COUNTS and correct as a share of the expert's correct count (never a rate over scored items).

    python -m s1s2_training.policy.evaluate --model runs/act/policy.onnx --model runs/flow/policy.onnx \
        --seeds 1000-1011 --speeds 0.06,0.10,0.15 --out eval.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from s1s2.cli import parse_seeds
from s1s2_training.policy.parallel import make_pool, run_tasks, worker_session, worker_sim
from s1s2_training.policy.rollout import (
    OUTCOMES,
    TIMINGS,
    EpisodeSpec,
    ExpertParams,
    GoalTiming,
    run_episode,
    run_reference_expert,
)  # fmt: skip

TEST_SEEDS = tuple(range(1000, 1012))  # held out from the policy: never used to train or tune it
DEV_SEEDS = tuple(range(2000, 2012))  # for tuning decisions
# The whole stack's end-to-end set: held out from every model. TEST_SEEDS are held out from the
# policy but are sim VLM training scenes (s1s2_training.vlm.data: TRAIN_DEFAULT_SEED0 1000..), and
# DEV_SEEDS are adapter training scenes (DOMAIN_TRAIN_DEFAULT_SEED0 2000..); checked by a test.
STACK_TEST_SEEDS = tuple(range(3000, 3012))
SPEEDS = (0.06, 0.10, 0.15)


def _goal_timing(timing: str, noise_m: float, p_other: float = 0.0) -> GoalTiming:
    return GoalTiming.per_tick() if timing == "tick" else GoalTiming.planner(noise_m, p_other)


def _warnings(sim) -> int:
    """MuJoCo warnings in this episode, and its auto-resets (an instability resets the physics
    state, and with it MuJoCo's own warning counters: the cell counts them)."""
    return int(sum(int(w.number) for w in sim.data.warning)) + int(sim.physics_resets)


def _run(task) -> dict:
    kind, model, speed, seed, goals, episode_s, ctrl_over = task
    sim = worker_sim()
    ep = EpisodeSpec(seed, speed, episode_s, goals)
    if kind == "reference":
        return {"score": run_reference_expert(sim, ep), "sim_warnings": _warnings(sim)}
    from fast_policy.controller import ControllerConfig, OnnxPolicySource

    if kind == "expert":
        res = run_episode(
            sim, ep, 10, ControllerConfig(**ctrl_over), policy=None, expert_params=ExpertParams()
        )
    else:
        sess = worker_session(model)
        ex = dict(sess.meta.execution)
        ex.update(ctrl_over)
        cfg = ControllerConfig(**{k: v for k, v in ex.items() if k in ControllerConfig.__dataclass_fields__})
        res = run_episode(sim, ep, sess.meta.chunk_size, cfg, policy=OnnxPolicySource(sess), beta=0.0,
                          time_ticks=True, obs_version=sess.meta.spec_version)  # fmt: skip
    out = {
        "score": res.score,
        "holds": res.holds,
        "ik_fallbacks": res.ik_fallbacks,
        "carry_max_s": round(res.carry_max_s, 2),
        "carry_timeouts": res.carry_timeouts,
        "sim_warnings": _warnings(sim),
    }
    if res.tick_s:
        out["tick_ms"] = (np.asarray(res.tick_s) * 1e3).astype(np.float32)
        out["tick_cpu_ms"] = (np.asarray(res.tick_cpu_s) * 1e3).astype(np.float32)
    return out


def _sum(results: list[dict]) -> dict:
    return {k: int(sum(r["score"][k] for r in results)) for k in OUTCOMES}


def evaluate(
    models: dict[str, str],
    seeds=TEST_SEEDS,
    speeds=SPEEDS,
    timings=TIMINGS,
    noise_m: float = 0.015,
    episode_s: float = 30.0,
    workers: int = 2,
    controller_expert: bool = False,
    controller_overrides: dict | None = None,
    pool=None,
    progress: bool = True,
    p_other: float = 0.0,
) -> dict:
    """models: name -> policy.onnx path. Returns the nested result dict (see module doc).
    `p_other`: the planner timing's chance that a plan names another item on the belt."""
    over = controller_overrides or {}
    models = {k: str(Path(v).resolve()) for k, v in models.items()}
    goals = {tm: _goal_timing(tm, noise_m, p_other) for tm in ("tick", *timings)}  # bad values fail here
    tasks, keys = [], []
    for sp in speeds:
        for s in seeds:
            tasks.append(("reference", None, sp, s, goals["tick"], episode_s, over))
            keys.append(("reference", "tick", sp))
            if controller_expert:
                for tm in timings:
                    tasks.append(("expert", None, sp, s, goals[tm], episode_s, over))
                    keys.append(("expert_controller", tm, sp))
            for name, path in models.items():
                for tm in timings:
                    tasks.append(("policy", str(path), sp, s, goals[tm], episode_s, over))
                    keys.append((name, tm, sp))
    own = pool is None and workers > 1
    pool = make_pool(workers) if own else pool
    t0 = time.monotonic()
    try:
        results = run_tasks(_run, tasks, pool, progress, "closed-loop eval")
    finally:
        if own:
            pool.shutdown()
    groups: dict = {}
    for key, r in zip(keys, results, strict=True):
        groups.setdefault(key, []).append(r)
    ref = {f"{sp:.2f}": _sum(groups[("reference", "tick", sp)]) for sp in speeds}
    for sp in speeds:
        ref[f"{sp:.2f}"]["sim_warnings"] = int(
            sum(r["sim_warnings"] for r in groups[("reference", "tick", sp)])
        )
    out = {
        "seeds": list(seeds),
        "speeds": list(speeds),
        "episode_s": episode_s,
        "planner_goals": {
            "rate_hz": 1.0,
            "latency_s": [0.3, 0.5],
            "noise_std_m_per_axis": noise_m,
            "p_other_item": p_other,
            "frame": "belt",
            "valid_for_s": 3.0,
        },  # fmt: skip
        "controller_overrides": over,
        "reference_expert": ref,
        "policies": {},
        "wall_seconds": round(time.monotonic() - t0, 1),
    }
    names = (["expert_controller"] if controller_expert else []) + list(models)
    for name in names:
        entry = {}
        ticks, cticks = [], []
        for tm in timings:
            per = {}
            for sp in speeds:
                rs = groups[(name, tm, sp)]
                c = _sum(rs)
                c["vs_expert"] = round(c["correct"] / max(1, ref[f"{sp:.2f}"]["correct"]), 3)
                c["holds"] = int(sum(r.get("holds", 0) for r in rs))
                c["sim_warnings"] = int(sum(r.get("sim_warnings", 0) for r in rs))
                c["carry_timeouts"] = int(sum(r.get("carry_timeouts", 0) for r in rs))
                c["carry_max_s"] = max((r.get("carry_max_s", 0.0) for r in rs), default=0.0)
                per[f"{sp:.2f}"] = c
                ticks += [r["tick_ms"] for r in rs if "tick_ms" in r]
                cticks += [r["tick_cpu_ms"] for r in rs if "tick_cpu_ms" in r]
            tot = {k: sum(per[s][k] for s in per) for k in OUTCOMES}
            tot["vs_expert"] = round(tot["correct"] / max(1, sum(ref[s]["correct"] for s in ref)), 3)
            per["total"] = tot
            entry[tm] = per
        if ticks:
            t = np.concatenate(ticks)
            c = np.concatenate(cticks)
            entry["tick_ms"] = {"p50": round(float(np.percentile(t, 50)), 3),
                                "p99": round(float(np.percentile(t, 99)), 3), "n": int(len(t)),
                                "cpu_p50": round(float(np.percentile(c, 50)), 3),
                                "cpu_p99": round(float(np.percentile(c, 99)), 3)}  # fmt: skip
        entry["model"] = str(models.get(name, "scripted expert through the controller"))
        out["policies"][name] = entry
    return out


def table(res: dict) -> str:
    """Markdown table: one row per (policy, goal timing, speed)."""
    rows = ["| policy | goals | belt m/s | correct | wrong_bin | missed | dropped | expert correct | vs expert |",
            "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    ref = res["reference_expert"]
    for sp, c in ref.items():
        rows.append(f"| scripted expert (reference) | ground truth | {sp} | {c['correct']} | {c['wrong_bin']} | "
                    f"{c['missed']} | {c['dropped']} | {c['correct']} | 1.000 |")  # fmt: skip
    for name, entry in res["policies"].items():
        for tm in TIMINGS:
            if tm not in entry:
                continue
            for sp, c in entry[tm].items():
                e = sum(r["correct"] for r in ref.values()) if sp == "total" else ref[sp]["correct"]
                rows.append(f"| {name} | {tm} | {sp} | {c['correct']} | {c['wrong_bin']} | {c['missed']} | "
                            f"{c['dropped']} | {e} | {c['vs_expert']:.3f} |")  # fmt: skip
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", default=[], help="name=path/policy.onnx (repeatable)")
    ap.add_argument("--seeds", default="1000-1011")
    ap.add_argument("--speeds", default="0.06,0.10,0.15")
    ap.add_argument("--timings", default="tick,planner")
    ap.add_argument("--noise", type=float, default=0.015)
    ap.add_argument(
        "--p-other",
        type=float,
        default=0.0,
        help="planner timing: chance a plan names another item on the belt (a System 2 that confuses items)",
    )
    ap.add_argument("--episode-s", type=float, default=30.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--controller-expert", action="store_true")
    ap.add_argument("--override", action="append", default=[], help="ControllerConfig field=value")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args(argv)
    models = {}
    for m in a.model:
        name, _, path = m.rpartition("=")
        models[name or Path(path).parent.name] = path
    over = {}
    for o in a.override:
        k, _, v = o.partition("=")
        over[k] = json.loads(v) if v not in ("aim", "temporal_ensemble") else v
    res = evaluate(models, parse_seeds(a.seeds), [float(s) for s in a.speeds.split(",")], a.timings.split(","),
                   a.noise, a.episode_s, a.workers, a.controller_expert, over, p_other=a.p_other)  # fmt: skip
    print(table(res))
    for name, e in res["policies"].items():
        if "tick_ms" in e:
            print(f"{name}: controller tick p50 {e['tick_ms']['p50']} ms, p99 {e['tick_ms']['p99']} ms")
        for tm in TIMINGS:
            for sp, c in e.get(tm, {}).items():
                if "carry_max_s" in c:
                    print(f"{name} {tm} {sp}: longest carry {c['carry_max_s']:.2f} s, "
                          f"scripted places {c['carry_timeouts']}")  # fmt: skip
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
