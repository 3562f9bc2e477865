"""System tier, failure isolation: the planner is killed (SIGKILL, by pid) in a running stack.
System 1 keeps commanding at 50 Hz and holds once the last goal is stale; the planner respawns,
goals resume and the adapter manager re-applies the context's adapter to the new process. Then
the adapter manager is killed: the planner keeps its adapter and the manager comes back.

System 1's cadence is read on its own clock (DDS source timestamps and publication numbers): this
test's process receives on a loaded 2-core box and can pause itself. Other timing assertions are
loose; the measured figures (command gaps, time to hold, time to respawn) are printed and reported by `s1s2 failover`."""

import os
import signal
import time

import pytest

from s1s2.launcher import Launcher, load_stack, wait_until
from s1s2.stack import StackConfig
from s1s2.topics import CONTROL_DT

pytestmark = [pytest.mark.system, pytest.mark.slow]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from s1s2.monitor import MonitorThread

    stack = load_stack("config/recycling_sim.yaml")
    launcher = Launcher(stack, log_dir=tmp_path_factory.mktemp("failover_logs"), echo=False)
    monitor = None
    out: dict = {"launcher": launcher}
    try:
        launcher.start(ready_timeout=240.0)
        monitor = MonitorThread()
        node = monitor.node
        out["monitor"] = node
        out["gc_pauses"] = monitor.gc_pauses
        # the adapter manager has applied the context's adapter (daylight lighting -> "daylight")
        assert wait_until(
            lambda: node.planner_status and node.planner_status[-1][1].active_adapter == "daylight", 60
        )
        started0 = node.planner_status[-1][1].started
        time.sleep(3.0)
        out["t_kill_planner"] = time.time()
        os.kill(launcher.proc("vlm_planner").popen.pid, signal.SIGKILL)
        out["respawned"] = wait_until(
            lambda: any(
                e.kind == "ready" and e.node == "vlm_planner" and e.detail == "restart 1"
                for e in launcher.events
            ),
            120,
        )
        # the new process (another start time) runs the context's adapter again, and plans
        out["reapplied"] = wait_until(
            lambda: any(
                m.started != started0 and m.active_adapter == "daylight" for _, m in node.planner_status
            ),
            60,
        )
        out["goals_after"] = wait_until(
            lambda: any(t > out["t_kill_planner"] + 1.0 for t in node.meters["goal"].times[-3:]), 60
        )
        time.sleep(2.0)
        # the adapter manager dies: the planner keeps its adapter
        out["t_kill_manager"] = time.time()
        os.kill(launcher.proc("adapter_manager").popen.pid, signal.SIGKILL)
        out["manager_back"] = wait_until(
            lambda: any(
                e.kind == "ready" and e.node == "adapter_manager" and e.detail == "restart 1"
                for e in launcher.events
            ),
            60,
        )
        time.sleep(3.0)
        out["t_end"] = time.time()
        out["failed"] = launcher.failed()
    finally:
        if monitor is not None:
            monitor.close()
        launcher.stop()
    return out


def test_system1_keeps_commanding_through_the_planner_crash(run):
    t0, t1 = run["t_kill_planner"] - 2.0, run["t_end"]
    c = run["monitor"].command_stream(t0, t1)
    gc_max = max((d for t, _, d in run["gc_pauses"] if t0 <= t <= t1), default=0.0)
    print(f"System 1 published {c['published']} commands in {t1 - t0:.1f} s ({c['published_hz']:.2f} Hz), "
          f"longest pause {c['longest_pause_ms']:.1f} ms; received {c['received']} ({c['lost']} lost), "
          f"longest receive gap {c['longest_receive_gap_ms']:.1f} ms; this process's longest GC pause "
          f"{gc_max * 1e3:.1f} ms")  # fmt: skip
    # where a pause fell, and System 1's own account of its loop (a failure must say which side)
    pause_at = c["longest_pause_at"]
    print(f"longest pause began {pause_at - run['t_kill_planner']:+.2f} s from the planner kill, "
          f"{pause_at - run['t_kill_manager']:+.2f} s from the manager kill")  # fmt: skip
    fp = run["monitor"].node_diagnostics("fast_policy")
    print("fast_policy:", {k: fp.get(k) for k in ("scheduling", "missed_deadlines", "tick_lateness_max_since_start_ms",
                                                  "tick_time_p99_ms", "publish_max_ms", "gc_pause_max_ms")})  # fmt: skip
    assert run["failed"] is None
    assert c["one_publisher"]  # System 1 never restarted
    # 50 Hz throughout on System 1's own clock, never a pause a limiter would notice as a stop
    assert c["published_hz"] > 0.98 / CONTROL_DT
    assert c["longest_pause_ms"] < 100.0  # five periods; 21 ms measured, also under load
    # and another process on the graph received them (this one shares 2 cores with a planner
    # loading torch, so it is held to less: its own pauses are not System 1's)
    assert c["received"] / (t1 - t0) > 45.0


def test_system1_holds_once_the_last_goal_is_stale(run):
    kill = run["t_kill_planner"]
    reasons = [
        (t - kill, v.get("hold_reason", ""))
        for t, name, v in run["monitor"].diagnostics_history
        if name.startswith("fast_policy") and t > kill
    ]
    stale = [dt for dt, r in reasons if r == "goal stale"]
    assert stale, reasons[:20]
    assert stale[0] < 3.0 + 0.1 + 1.5  # valid_for 3 s + margin 0.1 s + one 1 Hz diagnostics period


def test_planner_respawns_goals_resume_and_the_adapter_is_reapplied(run):
    assert run["respawned"] and run["goals_after"] and run["reapplied"]
    events = [e for e in run["launcher"].events if e.node == "vlm_planner" and e.kind != "ready"]
    assert [e.kind for e in events][:3] == ["exited", "respawning", "respawned"]
    assert events[0].detail == "killed by SIGKILL"
    ready = next(e for e in run["launcher"].events if e.node == "vlm_planner" and e.detail == "restart 1")
    print(
        f"planner exit -> respawned {events[2].t - events[0].t:.2f} s, -> ready {ready.t - events[0].t:.2f} s"
    )
    restarts = [v for _, n, v in run["monitor"].diagnostics_history if n.startswith("vlm_planner")]
    assert any(v.get("restarts") == "1" and v.get("last_exit") == "killed by SIGKILL" for v in restarts)
    manager = [v for _, n, v in run["monitor"].diagnostics_history if n.startswith("adapter_manager")]
    assert any(v.get("planner_restarts_seen") == "1" for v in manager)


def test_adapter_manager_crash_leaves_the_planners_adapter(run):
    assert run["manager_back"]
    after = [m.active_adapter for t, m in run["monitor"].planner_status if t > run["t_kill_manager"]]
    assert after and set(after) == {"daylight"}


def test_stack_config_policy_is_what_this_test_relies_on():
    nodes = {n.name: n for n in load_stack("config/recycling_sim.yaml").nodes}
    assert isinstance(load_stack("config/recycling_sim.yaml"), StackConfig)
    assert nodes["vlm_planner"].respawn and nodes["adapter_manager"].respawn and nodes["fast_policy"].required
