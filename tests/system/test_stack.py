"""System tier: the whole stack as separate OS processes over DDS on loopback (this run's own
ROS_DOMAIN_ID, set in tests/conftest.py), observed by an independent subscriber.

Tolerances are the product targets, wide enough for a loaded 2-core machine: rates are averaged
over a 30 s window; detailed timing belongs to the benchmarks, not here."""

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from s1s2.launcher import Launcher, load_stack
from s1s2.metrics import within

pytestmark = [pytest.mark.system, pytest.mark.slow]

WINDOW_S = 30.0
WARMUP_S = 8.0


@pytest.fixture(scope="module")
def stack_report(tmp_path_factory):
    from injector import Injector

    from s1s2.monitor import MonitorThread

    log_dir = tmp_path_factory.mktemp("stack_logs")
    launcher = Launcher(load_stack("config/recycling_sim.yaml"), log_dir=log_dir, echo=False)
    monitor = injector = None
    try:
        launcher.start(ready_timeout=240.0)
        monitor = MonitorThread()
        time.sleep(WARMUP_S)
        report = monitor.measure(WINDOW_S)
        report["failed"] = launcher.failed()
        report["camera_rate_param"] = _camera_rate_param()
        # Outside traffic (goals, images, swap requests) that keeps going while the stack stops:
        # a normal shutdown under load must log no traceback.
        injector = Injector()
        time.sleep(3.0)
    finally:
        # stop before the tests run: later tests start their own stacks and count node processes
        if monitor is not None:
            monitor.close()
        launcher.stop()
        if injector is not None:
            report["injected"] = injector.sent
            injector.close()
    report["exit_codes"] = {p.spec.name: p.popen.returncode for p in launcher.procs}
    report["logs"] = {f.stem: f.read_text() for f in sorted(log_dir.glob("*.log"))}
    return report


def _camera_rate_param() -> float:
    import yaml

    from s1s2.cell import load_cell

    with open("config/conveyor_sim.yaml") as f:
        params = yaml.safe_load(f)["conveyor_sim"]["ros__parameters"]
    return float(params["camera_rate_hz"]) or load_cell(params["cell"]).camera.rate_hz


def test_all_nodes_stay_up(stack_report):
    assert stack_report["failed"] is None, stack_report["failed"]


def test_normal_shutdown_under_load_is_clean(stack_report):
    """Ctrl-C while goals, images and swap requests pour in: every node exits 0 and no node log
    holds a traceback or an rclpy error (timers and threads stop before the context goes)."""
    assert stack_report["injected"] > 20
    assert stack_report["exit_codes"] == dict.fromkeys(stack_report["logs"], 0), stack_report["exit_codes"]
    assert set(stack_report["logs"]) == {"conveyor_sim", "vlm_planner", "fast_policy", "adapter_manager"}
    _assert_clean_logs(stack_report["logs"])


def _assert_clean_logs(logs: dict[str, str]) -> None:
    for name, text in logs.items():
        for bad in ("Traceback", "RCLError", "context is invalid", "Exception"):
            assert bad not in text, f"{name}: {bad}\n" + text[-3000:]


def test_stop_right_after_start_under_load_is_clean(tmp_path):
    """The race seen before the fix (conveyor_sim's render thread publishing into a context that
    rclpy's signal handler had already shut down) hit 3 of 6 such cycles; now 0 of 6."""
    from injector import stop_under_load

    for cycle in range(2):
        log_dir = tmp_path / f"cycle{cycle}"
        codes, _ = stop_under_load("config/recycling_sim.yaml", log_dir)
        logs = {f.stem: f.read_text() for f in log_dir.glob("*.log")}
        for name, code in codes.items():
            if code != 0:  # pytest shows captured output in full, where it cuts an assert message
                print(f"----- {name} exited with {code}; its log ends:\n{logs.get(name, '')[-6000:]}")
        assert codes == {n: 0 for n in ("conveyor_sim", "vlm_planner", "fast_policy", "adapter_manager")}
        _assert_clean_logs(logs)


def test_goal_rate_is_1hz(stack_report):
    r = stack_report["goal"]
    assert within(r["rate_hz"], 1.0, 0.10), r


def test_command_rate_is_50hz(stack_report):
    # on System 1's own clock (DDS source stamps and publication numbers): this test's process
    # receives on a loaded 2-core box and can pause itself (docs/failure_isolation.md)
    c = stack_report["command_stream"]
    assert within(c["published_hz"], 50.0, 0.02) and c["one_publisher"], c
    assert c["longest_pause_ms"] < 100.0, c
    # and another process on the graph received them
    assert c["received"] >= 0.9 * c["published"], c
    assert within(stack_report["command"]["rate_hz"], 50.0, 0.10), stack_report["command"]
    assert stack_report["bad_commands"] == 0


def test_camera_rate_is_as_configured(stack_report):
    r = stack_report["camera"]
    assert within(r["rate_hz"], stack_report["camera_rate_param"], 0.10), r


def test_goal_age_at_policy_under_1_5_s(stack_report):
    ga = stack_report["goal_age"]
    assert ga["samples"] > 100, ga
    # p99: one scheduling blip on a loaded 2-core box must not decide the run; the max is reported
    assert ga["p99_s"] < 1.5, ga


def _env():
    return dict(os.environ, PYTHONUNBUFFERED="1")


def test_launcher_names_the_node_and_parameter_that_stopped_it():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "s1s2.cli",
            "up",
            "config/recycling_sim.yaml",
            "--duration",
            "5",
            "--param",
            "fast_policy:model_path:=models/policy/does_not_exist.onnx",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(),
    )
    assert proc.returncode != 0
    assert "fast_policy" in proc.stderr
    assert "model_path" in proc.stderr and "does_not_exist.onnx" in proc.stderr


def _as_background_job():
    # what `s1s2 up ... &` in a non-interactive shell (a script, CI) gets: SIGINT ignored
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_ctrl_c_shuts_everything_down_cleanly():
    proc = subprocess.Popen(
        [sys.executable, "-m", "s1s2.cli", "up", "config/recycling_sim.yaml"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(),
        start_new_session=True,
        preexec_fn=_as_background_job,  # the launcher must still stop on SIGINT
    )
    pids_before: set[int] = set()
    try:
        out = []
        deadline = time.monotonic() + 240
        for line in proc.stdout:
            out.append(line)
            if "nodes of" in line and "ready" in line:
                break
            assert time.monotonic() < deadline, "".join(out[-20:])
        # this launcher's nodes only (each runs in its own session, as the launcher's child):
        # other stacks on a shared machine must not decide the test
        pids_before = _node_pids(proc.pid)
        assert pids_before, "no node processes found while the stack runs"
        os.killpg(proc.pid, signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, "".join(out[-20:]) + rest
        time.sleep(1.0)
        assert not {p for p in pids_before if _alive(p)}, "node processes left running after Ctrl-C"
    finally:  # never leave a stack behind for the next test or run, whatever failed
        for pid in [proc.pid, *pids_before]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _node_pids(parent: int) -> set[int]:
    out = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True).stdout
    pids = {int(p) for p in out.split()}
    pattern = re.compile(r"lib/(conveyor_sim|vlm_planner|fast_policy|adapter_manager)/")
    return {p for p in pids if pattern.search(_cmdline(p))}


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    """Running (a zombie awaiting its reaper counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False
