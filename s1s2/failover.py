"""`s1s2 failover`: what a System 2 crash costs, measured on a running stack (over DDS, wall clock).

    s1s2 failover [--stack config/recycling_oracle.yaml] [--node oracle_planner] [--soak 300]

1. One kill. The stack runs with goals that carry targets (by default the oracle stack: the
   learned System 1 tracking the ORACLE System 2); after `--settle` s the System 2 process is
   killed with SIGKILL by its pid. Measured from an outside subscriber:
   - /joint_commands through the crash: rate and largest gap, from 2 s before the kill to the end;
   - every command within the arm's position, velocity and acceleration limits (per tick);
   - the hold: when the arm stops once the last goal is stale, relative to that goal's
     stamp + valid_for (System 1 holds at stamp + valid_for + goal_timeout_margin_s, then
     decelerates within the acceleration limit);
   - the respawn: exit -> process ready, and exit -> first goal received again;
   - tracking again: first fresh goal with a target -> the first command that moves the arm.
2. `--soak S`: S seconds of sorting on one seed with System 2 killed every `--every` s, and the
   same S seconds on the same seed with no kill (items sorted correctly, wrong, missed, dropped).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from pathlib import Path

import numpy as np

from s1s2.launcher import Launcher, LaunchError, load_stack, wait_until

OUTCOMES = ("correct", "wrong_bin", "missed", "dropped")
MOVE_RAD = 1e-5  # a command that differs from the previous one by more than this moves the arm


def _reset(monitor, seed: int) -> None:
    from s1s2 import topics
    from s1s2_interfaces.srv import ResetSim

    cli = monitor.node.create_client(ResetSim, topics.RESET_SIM_SERVICE)
    if not cli.wait_for_service(timeout_sec=10.0):
        raise LaunchError("the cell's reset service did not appear")
    fut = cli.call_async(ResetSim.Request(seed=int(seed)))
    if not wait_until(fut.done, 10.0) or not fut.result().success:
        raise LaunchError(f"the cell did not reset to seed {seed}")


class _Run:
    """A started stack + a monitor keeping every command; wall-clock (time.time) throughout."""

    def __init__(self, stack, overrides, log_dir):
        from s1s2.monitor import MonitorThread

        self.launcher = Launcher(stack, overrides, log_dir=log_dir, echo=False)
        self.launcher.start(240.0)
        self.monitor = MonitorThread(keep_commands=True)
        # launcher events are stamped with time.monotonic(); convert to wall time
        self.mono_to_wall = time.time() - time.monotonic()

    def kill(self, name: str) -> float:
        t = time.time()
        os.kill(self.launcher.proc(name).popen.pid, signal.SIGKILL)
        return t

    def events(self, name: str) -> list[tuple[float, str, str]]:
        return [(e.t + self.mono_to_wall, e.kind, e.detail) for e in self.launcher.events if e.node == name]

    def close(self) -> None:
        self.monitor.close()
        self.launcher.stop()


def _limits_violations(t: np.ndarray, cmds: np.ndarray, lim, dt: float) -> dict:
    """Commands are positions, one per control tick. The receiver may miss one (depth-1 QoS) or
    get two late together, so each step is divided by the ticks it spans (receive-time gap /
    period, at least 1); acceleration is checked only across steps that each span one tick."""
    tol = 1e-6
    pos = int(np.sum((cmds < lim.lower - tol) | (cmds > lim.upper + tol)))
    ticks = np.maximum(1, np.round(np.diff(t) / dt))
    v = np.diff(cmds, axis=0) / (ticks[:, None] * dt)
    vel = int(np.sum(np.abs(v) > lim.max_velocity * (1 + 1e-6) + 1e-9))
    single = (ticks[1:] == 1) & (ticks[:-1] == 1)
    a = np.diff(v, axis=0)[single] / dt
    acc = int(np.sum(np.abs(a) > lim.max_acceleration * (1 + 1e-6) + 1e-6))
    return {"position": pos, "velocity": vel, "acceleration": acc, "commands": int(len(cmds)),
            "acceleration_checked_steps": int(single.sum())}  # fmt: skip


def one_kill(stack, node: str, overrides, log_dir, settle_s: float, after_s: float, seed: int) -> dict:
    from fast_policy.safety import JointLimits
    from s1s2.cell import DEFAULT_CELL
    from s1s2.topics import CONTROL_DT

    run = _Run(stack, overrides, log_dir)
    try:
        _reset(run.monitor, seed)
        time.sleep(settle_s)
        mon = run.monitor.node
        t_kill = run.kill(node)
        time.sleep(after_s)
        failed = run.launcher.failed()
        events = run.events(node)
    finally:
        run.close()
    if failed:
        raise LaunchError(failed)
    cmds = [(t, q) for t, q in mon.commands if t >= t_kill - 2.0]
    t_cmd = np.array([t for t, _ in cmds])
    q = np.array([q for _, q in cmds])
    gaps = np.diff(t_cmd)
    before = [g for g in mon.goal_log if g[0] < t_kill]
    after = [g for g in mon.goal_log if g[0] > t_kill]
    valid_for = float(
        mon.goals[len(before) - 1].valid_for.sec + mon.goals[len(before) - 1].valid_for.nanosec * 1e-9
    )
    last_stamp = before[-1][1]
    stale_at = last_stamp + valid_for
    # the arm is held: from the first command after which it stays still until the next fresh goal.
    # That goal can reach System 1 before this monitor (a new participant is discovered by each
    # process on its own; seen 0.25 s apart), so motion in the last 0.5 s before it is not counted.
    t_back = after[0][0] if after else t_cmd[-1]
    moving = np.r_[True, np.any(np.abs(np.diff(q, axis=0)) > MOVE_RAD, axis=1)]
    idx = np.where((t_cmd > t_kill) & (t_cmd < t_back - 0.5) & moving)[0]
    t_still = float(t_cmd[idx[-1] + 1]) if len(idx) and idx[-1] + 1 < len(t_cmd) else float("nan")
    first_target = next((g for g in after if g[2]), None)
    t_track = float("nan")
    if first_target is not None:
        # System 1's own record: when its current streak of policy ticks began (node clock = wall)
        resumed = [float(v["mode_since_s"]) for t, n, v in mon.diagnostics_history
                   if n.startswith("fast_policy") and v.get("mode") == "policy" and t > first_target[0]
                   and float(v.get("mode_since_s", "nan")) > t_kill]  # fmt: skip
        t_track = (min(resumed) - first_target[0]) if resumed else float("nan")
    worst = np.argsort(gaps)[::-1][:3]
    exited = next((t for t, k, _ in events if k == "exited"), float("nan"))
    respawned = next((t for t, k, _ in events if k == "respawned"), float("nan"))
    ready = next((t for t, k, d in events if k == "ready" and d == "restart 1"), float("nan"))
    lim = JointLimits.from_arm(DEFAULT_CELL.arm)

    def diag(prefix: str, key: str) -> list[float]:
        return [float(v[key]) for t, n, v in mon.diagnostics_history
                if n.startswith(prefix) and key in v and t >= t_kill - 2.0]  # fmt: skip

    missed = diag("fast_policy", "missed_deadlines")
    deadlines = diag("conveyor_sim", "command_deadlines_missed")
    return {
        "node_killed": node,
        "commands": {
            "rate_hz": round(len(t_cmd) / (t_cmd[-1] - t_cmd[0]), 2),
            "max_gap_ms": round(float(gaps.max()) * 1e3, 1),
            "p99_gap_ms": round(float(np.percentile(gaps, 99)) * 1e3, 1),
            "gaps_over_40ms": int(np.sum(gaps > 0.040)),
            "largest_gaps_ms_at_s_after_kill": [
                [round(float(gaps[i]) * 1e3, 1), round(float(t_cmd[i] - t_kill), 2)] for i in worst
            ],  # fmt: skip
            "window_s": round(float(t_cmd[-1] - t_cmd[0]), 1),
        },
        # the same window as System 1 sent it (DDS source stamps and publication numbers)
        "commands_sent": {
            k: round(v, 2) if isinstance(v, float) else v
            for k, v in mon.command_stream(t_kill - 2.0, time.time()).items()
        },  # fmt: skip
        # the sender's own view (the monitor above is an ordinary process: its receive times
        # include its own scheduling) and the cell's: deadline events of its 40 ms watchdog
        "fast_policy_missed_deadlines": (missed[-1] - missed[0]) if missed else None,
        "fast_policy_tick_lateness_max_ms": max(diag("fast_policy", "tick_lateness_max_ms"), default=None),
        "fast_policy_tick_time_p99_ms_max": max(diag("fast_policy", "tick_time_p99_ms"), default=None),
        "fast_policy_publish_p99_ms_max": max(diag("fast_policy", "publish_p99_ms"), default=None),
        "fast_policy_gc_pause_max_ms": max(diag("fast_policy", "gc_pause_max_ms"), default=None),
        "cell_command_deadlines_missed": (deadlines[-1] - deadlines[0]) if deadlines else None,
        "limit_violations": _limits_violations(t_cmd, q, lim, CONTROL_DT),
        "nan_commands": mon.bad_commands,
        "hold": {
            "last_goal_stamp_to_kill_s": round(t_kill - last_stamp, 2),
            "valid_for_s": valid_for,
            "arm_still_after_stale_s": round(t_still - stale_at, 2),
            "arm_still_after_kill_s": round(t_still - t_kill, 2),
        },
        "respawn": {
            "exit_to_respawned_s": round(respawned - exited, 2),
            "exit_to_ready_s": round(ready - exited, 2),
            "kill_to_first_goal_s": round(after[0][0] - t_kill, 2) if after else None,
        },
        # first goal with a target after the restart -> System 1 back in policy mode (from holding)
        "policy_resumed_after_first_target_goal_s": None if np.isnan(t_track) else round(t_track, 3),
        "node_events": [[round(t - t_kill, 2), k, d] for t, k, d in events],
    }


def soak(
    stack, node: str, overrides, log_dir, duration_s: float, every_s: float, seed: int, kills: bool
) -> dict:
    run = _Run(stack, overrides, log_dir)
    killed = []
    try:
        _reset(run.monitor, seed)
        t0 = time.time()
        next_kill = t0 + every_s
        while time.time() - t0 < duration_s:
            if kills and time.time() >= next_kill:
                wait_until(lambda: run.launcher.proc(node).popen.poll() is None, 30.0)
                killed.append(round(run.kill(node) - t0, 1))
                next_kill += every_s
            time.sleep(0.05)
        events = [ev for t, ev in run.monitor.node.sort_events if t0 <= t <= t0 + duration_s]
        failed = run.launcher.failed()
    finally:
        run.close()
    if failed:
        raise LaunchError(failed)
    counts = dict.fromkeys(OUTCOMES, 0)
    for ev in events:
        counts[OUTCOMES[ev.outcome]] += 1
    return {"kills_at_s": killed, "duration_s": duration_s, "seed": seed, **counts}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="s1s2 failover", description=__doc__.splitlines()[0])
    ap.add_argument("--stack", default="config/recycling_oracle.yaml")
    ap.add_argument(
        "--node", default=None, help="System 2 node to kill (default: oracle_planner or vlm_planner)"
    )
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--settle", type=float, default=12.0, help="seconds of sorting before the kill")
    ap.add_argument("--after", type=float, default=25.0, help="seconds measured after the kill")
    ap.add_argument("--soak", type=float, default=0.0, help="also run S s with kills every --every s vs none")
    ap.add_argument("--every", type=float, default=60.0)
    ap.add_argument("--param", action="append", default=[], metavar="NODE:PARAM:=VALUE")
    ap.add_argument("--log-dir", type=Path, default=Path("runs/failover"))
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args(argv)
    stack = load_stack(a.stack)
    names = [n.name for n in stack.nodes]
    node = a.node or next((n for n in ("oracle_planner", "vlm_planner") if n in names), None)
    if node not in names:
        print(f"s1s2 failover: node {node!r} is not in {a.stack} (nodes: {', '.join(names)})")
        return 2
    over: dict[str, list[str]] = {}
    for p in a.param:
        n, _, rest = p.partition(":")
        over.setdefault(n, []).append(rest)
    res = {"stack": a.stack, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    res["one_kill"] = one_kill(stack, node, over, a.log_dir / "one_kill", a.settle, a.after, a.seed)
    print(json.dumps(res["one_kill"], indent=1), flush=True)
    if a.soak > 0:
        res["soak_kills"] = soak(stack, node, over, a.log_dir / "soak_kills", a.soak, a.every, a.seed, True)
        print("with kills:", json.dumps(res["soak_kills"]), flush=True)
        res["soak_no_kills"] = soak(
            stack, node, over, a.log_dir / "soak_none", a.soak, a.every, a.seed, False
        )
        print("no kills:  ", json.dumps(res["soak_no_kills"]), flush=True)
        base = max(1, res["soak_no_kills"]["correct"])
        res["soak_ratio"] = round(res["soak_kills"]["correct"] / base, 3)
        print(f"sorted with kills / without: {res['soak_ratio']}")
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
