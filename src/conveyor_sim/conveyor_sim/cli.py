"""`s1s2 sim ...`: conveyor_sim tools.

s1s2 sim bench [--seconds S] [--width W --height H --camera-hz HZ]   real-time factor, render ms/frame
s1s2 sim sdf OUT.sdf [--lighting NAME] [--seed N]                     Gazebo world from the description
s1s2 sim mjcf OUT.xml                                                 MuJoCo model from the description
s1s2 sim record --episodes N --out DIR [--seconds S] [--seed N] [--domains a,b] [--no-camera]
s1s2 sim export DIR_OR_FILES... --out DIR                             MCAP -> policy.npz + planner.npz
s1s2 sim policy-dataset --episodes N --out FILE.npz [--seconds S]     expert rollouts -> policy.npz
s1s2 sim expert --duration S [--domains a,b] [--video OUT.mp4] [--seed N]   shift-day score table
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path


def _domains(s: str | None) -> list[str] | None:
    if not s:
        return None
    from conveyor_sim.lighting import get_domain

    names = [d.strip() for d in s.split(",") if d.strip()]
    for n in names:
        get_domain(n)
    return names


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="s1s2 sim", description="conveyor_sim tools")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bench", help="real-time factor and render time")
    b.add_argument("--seconds", type=float, default=20.0)
    b.add_argument("--width", type=int, default=320)
    b.add_argument("--height", type=int, default=240)
    b.add_argument("--camera-hz", type=float, default=10.0)
    b.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    s = sub.add_parser("sdf", help="write the Gazebo SDF world")
    s.add_argument("out", type=Path)
    s.add_argument("--lighting", default="daylight")
    s.add_argument("--seed", type=int, default=0)
    bc = sub.add_parser("bridge-config", help="write the ros_gz_bridge YAML")
    bc.add_argument("out", type=Path)
    m = sub.add_parser("mjcf", help="write the MuJoCo MJCF model")
    m.add_argument("out", type=Path)
    r = sub.add_parser("record", help="record expert episodes as MCAP")
    r.add_argument("--episodes", type=int, required=True)
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--seconds", type=float, default=30.0, help="simulated seconds per episode")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--domains", default=None, help="comma-separated lighting domains (default: all)")
    r.add_argument("--width", type=int, default=320)
    r.add_argument("--height", type=int, default=240)
    r.add_argument("--no-camera", action="store_true")
    e = sub.add_parser("export", help="MCAP episodes -> training sets")
    e.add_argument("inputs", nargs="+", type=Path, help="MCAP files or directories holding them")
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--horizon", type=int, default=10)
    p = sub.add_parser("policy-dataset", help="policy set straight from expert rollouts")
    p.add_argument("--episodes", type=int, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=0)
    x = sub.add_parser("expert", help="run the expert over a shift day and print scores")
    x.add_argument("--duration", type=float, default=240.0, help="simulated seconds")
    x.add_argument("--domains", default=None)
    x.add_argument("--seed", type=int, default=0)
    x.add_argument("--video", type=Path, default=None, help="write the video here (and a strip beside it)")
    x.add_argument("--out", type=Path, default=None, help="output directory (default runs/expert-<time>)")
    args = ap.parse_args(argv)

    try:
        if args.cmd == "bench":
            from conveyor_sim.bench import format_bench, run_bench

            res = run_bench(args.seconds, args.width, args.height, args.camera_hz)
            print(format_bench(res))
            if args.json:
                args.json.write_text(json.dumps(res, indent=2) + "\n")
        elif args.cmd == "sdf":
            from conveyor_sim.sdf import build_sdf

            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(build_sdf(lighting=args.lighting, seed=args.seed))
            print(f"wrote {args.out}")
        elif args.cmd == "bridge-config":
            from conveyor_sim.sdf import ros_gz_bridge_yaml

            args.out.write_text(ros_gz_bridge_yaml())
            print(f"wrote {args.out}")
        elif args.cmd == "mjcf":
            from conveyor_sim.mjcf import build_mjcf
            from s1s2.cell import DEFAULT_CELL

            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(build_mjcf(DEFAULT_CELL))
            print(f"wrote {args.out}")
        elif args.cmd == "record":
            from conveyor_sim.recording import record_episodes

            paths = record_episodes(
                args.episodes, args.out, seed=args.seed, episode_s=args.seconds, domains=_domains(args.domains),
                camera=not args.no_camera, width=args.width, height=args.height,
            )  # fmt: skip
            print(f"wrote {len(paths)} episodes to {args.out}")
        elif args.cmd == "export":
            from conveyor_sim.datasets import export_mcap

            files = []
            for pth in args.inputs:
                files += sorted(pth.glob("*.mcap")) if pth.is_dir() else [pth]
            res = export_mcap(files, args.out, horizon=args.horizon)
            print(json.dumps(res, indent=2))
        elif args.cmd == "policy-dataset":
            from conveyor_sim.datasets import make_policy_dataset

            t0 = time.perf_counter()
            res = make_policy_dataset(args.episodes, args.seed, args.out, episode_s=args.seconds)
            res["wall_s"] = round(time.perf_counter() - t0, 1)
            print(json.dumps(res, indent=2))
        elif args.cmd == "expert":
            from conveyor_sim.evaluation import run_expert_shift
            from s1s2 import repo_root

            out = args.out or (args.video.parent if args.video else None)
            out = out or repo_root() / "runs" / time.strftime("expert-%Y%m%d-%H%M%S")
            res = run_expert_shift(args.duration, args.seed, out, domains=_domains(args.domains), video=True)
            if args.video and res["video"] and Path(res["video"]) != args.video:
                shutil.move(res["video"], args.video)
                res["video"] = str(args.video)
            print(res["table"])
            print(f"video: {res['video']}  strip: {res['strip']}  "
                  f"({res['duration_s']:.0f} sim s in {res['wall_s']:.0f} s wall)")  # fmt: skip
            (Path(out) / "expert_scores.json").write_text(json.dumps(res, indent=2) + "\n")
    except ValueError as exc:  # bad domain names, bad counts: one line, exit 2
        print(f"s1s2 sim {args.cmd}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
