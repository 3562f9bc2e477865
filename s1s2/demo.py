"""`s1s2 demo` (what `make demo` runs): the headless demo on the embedded default.

1. Brings the whole stack up as separate ROS 2 processes (sim, planner, policy, adapter manager),
   measures from an independent subscriber the goal, command and camera rates and the goal age,
   and shuts it down.
2. Sorting through the ROS nodes at their real rates over a "shift day" of lighting domains
   (s1s2.shiftday), scored per domain (correct / wrong bin / missed / dropped), on the same seed:
   - the default stack: trained planner + learned policy + adapter manager (manager ON);
   - the same without the adapter manager (manager OFF: the planner's base model only);
   - the learned policy with the ORACLE System 2 (ground-truth goals with a planner's timing):
     System 1 on its own, labelled as oracle goals;
   - the scripted expert (the cell drives itself from ground truth): the reference.
3. The scripted expert in the bare sim over a shift day, with a video and an image strip.
4. Prints a summary and leaves it, the logs and the media in runs/demo-<time>/.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from s1s2 import repo_root
from s1s2.launcher import Launcher, LaunchError, load_stack

TARGETS = {"goal": 1.0, "command": 50.0}


def run_stack(config: str, duration: float, warmup: float, run_dir: Path) -> dict:
    from s1s2.monitor import MonitorThread

    stack = load_stack(config)
    launcher = Launcher(stack, log_dir=run_dir / "logs", echo=False)
    monitor = None
    try:
        t0 = time.monotonic()
        launcher.start()
        ready_s = time.monotonic() - t0
        print(
            f"[demo] {len(stack.nodes)} nodes ready in {ready_s:.1f} s; warming up {warmup:.0f} s", flush=True
        )
        monitor = MonitorThread()
        time.sleep(warmup)
        print(f"[demo] measuring for {duration:.0f} s ...", flush=True)
        report = monitor.measure(duration)
        failed = launcher.failed()
        if failed:
            raise LaunchError(failed)
        report["ready_seconds"] = round(ready_s, 1)
        report["plot"] = plot_timing(monitor.node, run_dir / "stack_timing.png")
        report["diagnostics"] = monitor.node.diagnostics
        report["goals_received"] = len(monitor.node.goals)
        if monitor.node.goals:
            g = monitor.node.goals[-1]
            report["last_goal"] = {
                "target_label": g.target_label,
                "confidence": g.confidence,
                "adapter_id": g.adapter_id,
                "model_id": g.model_id,
                "latent_dim": len(g.latent),
            }
        return report
    finally:
        if monitor is not None:
            monitor.close()
        launcher.stop()


def plot_timing(node, path: Path) -> str:
    """Command inter-arrival histogram and goal age over time, as seen by the monitor."""
    import numpy as np

    from s1s2.bench import save_plot

    cmd = np.diff(np.asarray(node.meters["command"].times)) * 1e3
    ages = np.asarray(node.goal_ages) if node.goal_ages else np.zeros((0, 2))

    def draw(plt):
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6))
        ax1.hist(cmd, bins=60, color="tab:blue")
        ax1.axvline(20.0, color="k", ls="--", lw=1, label="20 ms (50 Hz)")
        ax1.set(xlabel="period between joint commands (ms)", ylabel="count", title="System 1 command timing")
        ax1.legend()
        if len(ages):
            ax2.plot(ages[:, 0] - ages[0, 0], ages[:, 1], lw=0.8, color="tab:orange")
        ax2.axhline(1.5, color="r", ls="--", lw=1, label="1.5 s target")
        ax2.set(
            xlabel="time (s)", ylabel="goal age at each command (s)", title="System 2 goal age at System 1"
        )
        ax2.legend()
        return fig

    save_plot(path, draw)
    return str(path)


def run_expert(duration: float, seed: int, run_dir: Path) -> dict:
    from conveyor_sim.evaluation import run_expert_shift

    return run_expert_shift(duration_s=duration, seed=seed, out_dir=run_dir)


SHIFT_RUNS = ("manager ON", "manager OFF", "ORACLE goals", "scripted expert")


def run_shift_days(schedule, seed: int, run_dir: Path, names: tuple[str, ...] = SHIFT_RUNS) -> dict:
    """The shift-day runs of step 2 (`names`, a subset of SHIFT_RUNS), same schedule and seed."""
    from s1s2.shiftday import run_shift_day
    from s1s2.stack import StackConfig, load_stack

    full = load_stack("config/recycling_sim.yaml")
    no_manager = StackConfig("manager_off", tuple(n for n in full.nodes if n.name != "adapter_manager"))
    runs = {
        "manager ON": ("config/recycling_sim.yaml", {}),
        "manager OFF": (no_manager, {}),
        "ORACLE goals": ("config/recycling_oracle.yaml", {}),
        "scripted expert": ("config/recycling_oracle.yaml", {"conveyor_sim": ["controller:=expert"]}),
    }
    out = {}
    for name in names:
        stack, overrides = runs[name]
        print(f"[demo] shift day: {name} ({sum(s for _, s in schedule):.0f} s) ...", flush=True)
        try:
            out[name] = run_shift_day(
                stack, schedule, seed, overrides, log_dir=run_dir / "logs" / name.replace(" ", "_")
            )
        except LaunchError as exc:
            out[name] = {"error": str(exc)}
    return out


def _fmt(v, nd=2) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{nd}f}"


def format_stack(report: dict) -> list[str]:
    lines = ["Stack rates (independent subscriber over DDS):"]
    for key, label in (
        ("goal", "goal (System 2)"),
        ("command", "joint commands (System 1)"),
        ("camera", "camera"),
    ):
        r = report[key]
        target = TARGETS.get(key)
        tgt = f"  target {target:g} Hz" if target else ""
        lines.append(
            f"  {label:28s} {_fmt(r['rate_hz'])} Hz  ({r['count']} msgs, period p99 "
            f"{_fmt(r.get('period_p99_ms'), 1)} ms){tgt}"
        )
        cs = report.get("command_stream", {})
        if key == "command" and "published_hz" in cs:  # the same stream on System 1's own clock
            lines.append(
                f"  {'  as System 1 sent them':28s} {_fmt(cs['published_hz'])} Hz  (longest interval "
                f"{_fmt(cs['longest_pause_ms'], 1)} ms; {cs['lost']} of {cs['published']} lost on the way)"
            )
    ga = report["goal_age"]
    lines.append(
        f"  goal age at each command     p50 {_fmt(ga['p50_s'])} s, p99 {_fmt(ga['p99_s'])} s, max {_fmt(ga['max_s'])} s"
    )
    if "last_goal" in report:
        g = report["last_goal"]
        lines.append(
            f"  last goal: target={g['target_label'] or '(none: hold)'} confidence={_fmt(g['confidence'])} "
            f"adapter={g['adapter_id'] or '(base)'} latent_dim={g['latent_dim']}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="s1s2 demo", description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of stack measurement (default 60)")
    ap.add_argument("--warmup", type=float, default=10.0)
    ap.add_argument("--sim-duration", type=float, default=240.0, help="simulated seconds of expert sorting")
    ap.add_argument(
        "--domain-s", type=float, default=30.0, help="seconds per lighting domain in the shift days"
    )
    ap.add_argument("--skip-shift", action="store_true", help="skip the shift-day sorting runs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--config", default="config/recycling_sim.yaml")
    ap.add_argument("--out", type=Path, default=None, help="run directory (default runs/demo-<time>)")
    ap.add_argument("--skip-stack", action="store_true")
    ap.add_argument("--skip-expert", action="store_true")
    args = ap.parse_args(argv)

    run_dir = args.out or repo_root() / "runs" / time.strftime("demo-%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    summary: dict = {"run_dir": str(run_dir), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    lines: list[str] = []
    code = 0
    if not args.skip_stack:
        try:
            summary["stack"] = run_stack(args.config, args.duration, args.warmup, run_dir)
            lines += format_stack(summary["stack"])
        except LaunchError as exc:
            print(f"[demo] stack failed: {exc}", file=sys.stderr)
            summary["stack_error"] = str(exc)
            code = 1
    if not args.skip_shift:
        from conveyor_sim.lighting import DOMAINS
        from s1s2.shiftday import causes_text, failures_text, table

        schedule = [(d, args.domain_s) for d in DOMAINS]
        shifts = run_shift_days(schedule, args.seed, run_dir)
        summary["shift_days"] = shifts
        ok = {k: v for k, v in shifts.items() if "error" not in v}
        lines += ["", f"Sorting through the ROS nodes, shift day of {len(schedule)} domains x {args.domain_s:g} s, "
                  f"seed {args.seed} (correct/total, w = wrong bin, m = missed, d = dropped):", ""]  # fmt: skip
        lines += table(ok, list(DOMAINS))
        for k, v in shifts.items():
            if "error" in v:
                lines.append(f"{k}: FAILED: {v['error'][:300]}")
                code = 1
        if "manager ON" in ok:
            lines.append(f"adapter swaps with the manager on: {ok['manager ON']['adapter_swaps']} "
                         f"({len(schedule) - 1} lighting changes)")  # fmt: skip
        lines.append("Not sorted right, by light and class:")
        lines += [f"  {k}: {failures_text(v)}" for k, v in ok.items()]
        lines.append("Why (s1s2.shiftday.ItemTrace: never named / wrong class = System 2; named, not picked / "
                     "lost after grasp / placed wrong / picked unnamed = System 1):")  # fmt: skip
        lines += [f"  {k}: {causes_text(v)}" for k, v in ok.items()]
        lines.append("ORACLE goals = ground truth with a planner's timing (1 Hz, 0.3-0.5 s latency, 1.5 cm noise): "
                     "System 1 evaluated on its own.")  # fmt: skip
    if not args.skip_expert:
        print(f"[demo] expert sorting over a shift day ({args.sim_duration:.0f} simulated s) ...", flush=True)
        summary["expert"] = run_expert(args.sim_duration, args.seed, run_dir)
        lines += ["", "Scripted expert sorting (MuJoCo, per lighting domain):"]
        lines += summary["expert"].get("table", "").splitlines()
    lines += ["", f"Outputs: {run_dir}"]
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    (run_dir / "summary.txt").write_text("\n".join(lines) + "\n")
    print("\n" + "\n".join(lines), flush=True)
    return code
