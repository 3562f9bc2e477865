"""`s1s2 policy ...`: System 1 tools (no torch).

s1s2 policy build-engine --model M --cache-dir D [--no-fp16]
    Build the TensorRT engine (and timing cache) ahead of time into D, so the node's first start
    on a robot does not pay for it. Exits non-zero, saying why, where TensorRT cannot run.
s1s2 policy bench [--model M] [--runs N] [--providers P ...]
    Inference latency (p50/p99 over N runs) per usable provider: the bare ONNX call and a full
    controller tick (kinematics, observation, ONNX, chunk execution, IK, safety limiter).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from fast_policy.controller import Controller, ControllerConfig, OnnxPolicySource
from fast_policy.goal_tracker import GoalData
from fast_policy.runtime import CPU, DEFAULT_PROVIDERS, TRT, PolicySession, check_providers
from fast_policy.safety import JointLimits
from fast_policy.spec import OBS_DIM
from s1s2 import resolve_path
from s1s2.params import ConfigError
from s1s2.topics import LATENT_DIM, WORLD_FRAME

DEFAULT_MODEL = "models/policy/policy.onnx"
DEFAULT_CACHE = "~/.cache/s1s2/trt"


def build_engine(args) -> int:
    usable, dropped = check_providers([TRT])
    if not usable:
        print(
            f"build-engine: TensorRT is not available here: {'; '.join(dropped)}. Nothing built.",
            file=sys.stderr,
        )
        return 1
    try:
        sess = PolicySession(args.model, providers=[TRT], trt_fp16=args.fp16, trt_cache_dir=args.cache_dir)
    except ConfigError as exc:
        print(f"build-engine: {exc}", file=sys.stderr)
        return 2
    if sess.provider != TRT:
        print(
            f"build-engine: TensorRT could not start on this machine ({'; '.join(sess.dropped)}); "
            "no engine built. Run this on the robot's GPU.",
            file=sys.stderr,
        )
        return 1
    t0 = time.perf_counter()
    sess.warmup(3)
    files = sorted(p.name for p in resolve_path(args.cache_dir).iterdir())
    print(f"build-engine: TensorRT engine ready in {time.perf_counter() - t0:.1f} s (fp16={args.fp16})")
    print(f"build-engine: cache {resolve_path(args.cache_dir)}: {', '.join(files) or '(empty)'}")
    return 0


def _cell_arm():
    # the bench must not depend on a ROS parameter file: the default cell description's arm
    from s1s2.cell import DEFAULT_CELL

    return DEFAULT_CELL.arm


def _pct(xs) -> str:
    a = np.asarray(xs) * 1e3
    return f"p50 {np.percentile(a, 50):7.3f} ms  p99 {np.percentile(a, 99):7.3f} ms  max {a.max():7.3f} ms"


def bench(args) -> int:
    usable, dropped = check_providers(args.providers)
    for d in dropped:
        print(f"skip {d}")
    print(f"model {resolve_path(args.model)}; {args.runs} runs per provider; intra_op_threads {args.threads}")
    rng = np.random.default_rng(0)
    ok = False
    for prov in usable:
        providers = [prov] if prov == CPU else [prov, CPU]
        try:
            sess = PolicySession(
                args.model,
                providers=providers,
                trt_cache_dir=args.cache_dir,
                intra_op_threads=args.threads,
                log=lambda _m: None,
            )
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if sess.provider != prov:
            print(f"skip {prov} (could not start here; fell back to {sess.provider})")
            continue
        ok = True
        sess.warmup(args.warmup)
        obs = rng.standard_normal((args.runs, OBS_DIM)).astype(np.float32)
        onnx_t = []
        for o in obs:
            t0 = time.perf_counter()
            sess(o)
            onnx_t.append(time.perf_counter() - t0)
        arm = _cell_arm()
        ccfg = ControllerConfig().with_execution(sess.meta.execution)
        ctrl = Controller(OnnxPolicySource(sess), sess.meta.chunk_size, JointLimits.from_arm(arm), arm, ccfg)
        home = arm.home()
        now = 1000.0
        goal = GoalData(
            now, WORLD_FRAME, "pet_bottle", (0.1, -0.2, 0.32), (-0.5, -0.95, 0.5), [0.0] * LATENT_DIM, 60.0
        )
        ctrl.on_goal(goal)
        tick_t = []
        for i in range(args.runs):
            now += 0.02
            ctrl.on_joint_state(ctrl.limits.names, home + 0.01 * np.sin(i / 10), np.zeros(4), now)
            ctrl.on_vacuum(False, now)
            t0 = time.perf_counter()
            cmd = ctrl.tick(now)
            tick_t.append(time.perf_counter() - t0)
            assert cmd is not None and cmd.mode == "policy", cmd
        print(f"{prov:28s} onnx run : {_pct(onnx_t)}")
        print(f"{prov:28s} full tick: {_pct(tick_t)}  (50 Hz budget 20 ms)")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="s1s2 policy", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    be = sub.add_parser("build-engine", help="build the TensorRT engine ahead of time")
    be.add_argument("--model", default=DEFAULT_MODEL)
    be.add_argument("--cache-dir", default=DEFAULT_CACHE)
    be.add_argument("--no-fp16", dest="fp16", action="store_false")
    b = sub.add_parser("bench", help="inference latency per provider")
    b.add_argument("--model", default=DEFAULT_MODEL)
    b.add_argument("--runs", type=int, default=2000)
    b.add_argument("--warmup", type=int, default=50)
    b.add_argument("--threads", type=int, default=1)
    b.add_argument("--providers", nargs="+", default=list(DEFAULT_PROVIDERS))
    b.add_argument("--cache-dir", default=DEFAULT_CACHE)
    args = ap.parse_args(argv)
    if args.cmd == "build-engine":
        return build_engine(args)
    return bench(args)
