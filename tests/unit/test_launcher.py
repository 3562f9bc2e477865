"""The launcher against stand-in executables: waits for READY, names a node that dies, stops all."""

import os
import sys
import textwrap
import time

import pytest

from s1s2.launcher import Launcher, LaunchError, NodeSpec, StackConfig, node_command, wait_until
from s1s2.ros import READY_MARKER


def _fake_prefix(tmp_path, scripts: dict[str, str]):
    for name, body in scripts.items():
        d = tmp_path / "lib" / name
        d.mkdir(parents=True)
        exe = d / f"{name}_node"
        exe.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
        exe.chmod(0o755)
    return str(tmp_path)


GOOD = f"""
import signal, sys, time
signal.signal(signal.SIGINT, lambda *a: sys.exit(0))
time.sleep(0.3)
print("{READY_MARKER} good", flush=True)
while True:
    time.sleep(0.05)
"""

BAD = """
import sys, time
time.sleep(0.5)
print("[s1s2] CONFIG ERROR: parameter 'model_path': path 'x.onnx' does not exist", file=sys.stderr, flush=True)
sys.exit(2)
"""


@pytest.fixture
def prefix(tmp_path, monkeypatch):
    p = _fake_prefix(tmp_path, {"alpha": GOOD, "beta": GOOD, "broken": BAD})
    monkeypatch.setenv("AMENT_PREFIX_PATH", p + os.pathsep + os.environ.get("AMENT_PREFIX_PATH", ""))
    return p


def _stack(*pkgs):
    return StackConfig("t", tuple(NodeSpec(p, f"{p}_node", p, ()) for p in pkgs))


def test_waits_for_every_node_then_stops_them(prefix, tmp_path):
    launcher = Launcher(_stack("alpha", "beta"), log_dir=tmp_path / "logs", echo=False)
    launcher.start(ready_timeout=30)
    assert all(p.ready.is_set() for p in launcher.procs)
    assert launcher.failed() is None
    launcher.stop()
    assert [p.popen.returncode for p in launcher.procs] == [0, 0]  # SIGINT -> clean exit
    assert READY_MARKER in (tmp_path / "logs" / "alpha.log").read_text()


def test_names_the_node_that_died_and_why(prefix):
    launcher = Launcher(_stack("alpha", "broken"), echo=False)
    with pytest.raises(LaunchError) as err:
        launcher.start(ready_timeout=30)
    launcher.stop()
    msg = str(err.value)
    assert "'broken'" in msg and "code 2" in msg and "model_path" in msg
    assert all(p.popen.poll() is not None for p in launcher.procs)


def test_ready_timeout_names_the_slow_node(prefix, tmp_path):
    _fake_prefix(tmp_path / "slow", {"sleepy": "import time\ntime.sleep(60)\n"})
    os.environ["AMENT_PREFIX_PATH"] = str(tmp_path / "slow") + os.pathsep + os.environ["AMENT_PREFIX_PATH"]
    launcher = Launcher(_stack("alpha", "sleepy"), echo=False)
    t0 = time.monotonic()
    with pytest.raises(LaunchError, match="sleepy.*not ready"):
        launcher.start(ready_timeout=2)
    launcher.stop()
    assert time.monotonic() - t0 < 30


def test_missing_executable_is_named(prefix):
    with pytest.raises(LaunchError, match="'nope_node' of package 'nope'"):
        node_command(NodeSpec("nope", "nope_node", "nope", ()))


def test_command_carries_name_params_and_overrides(prefix):
    cmd = node_command(
        NodeSpec("alpha", "alpha_node", "renamed", ("config/recycling_sim.yaml",)), ["rate_hz:=5.0"]
    )
    assert cmd[1:4] == ["--ros-args", "-r", "__node:=renamed"]
    assert "--params-file" in cmd and cmd[-2:] == ["-p", "rate_hz:=5.0"]


# Prints READY, reports its restart count and cause, then exits on its own after a while (a crash).
CRASHY = f"""
import os, signal, sys, time
signal.signal(signal.SIGINT, lambda *a: sys.exit(0))
print("{READY_MARKER} crashy restarts=" + os.environ.get("S1S2_RESTARTS", "0")
      + " last_exit=" + os.environ.get("S1S2_LAST_EXIT", ""), flush=True)
time.sleep(0.5)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.fixture
def crash_prefix(prefix, tmp_path, monkeypatch):
    p = _fake_prefix(tmp_path / "crash", {"crashy": CRASHY})
    monkeypatch.setenv("AMENT_PREFIX_PATH", p + os.pathsep + os.environ["AMENT_PREFIX_PATH"])
    return p


def test_respawned_node_comes_back_with_its_restart_count_and_cause(crash_prefix, tmp_path):
    stack = StackConfig(
        "t", (NodeSpec("alpha", "alpha_node", "alpha", (), required=True),
              NodeSpec("crashy", "crashy_node", "crashy", (), respawn=True, respawn_delay=0.3))
    )  # fmt: skip
    launcher = Launcher(stack, log_dir=tmp_path / "logs", echo=False)
    launcher.start(ready_timeout=30)
    try:
        assert wait_until(
            lambda: sum(e.kind == "respawned" and e.node == "crashy" for e in launcher.events) >= 2
        )
        assert launcher.failed() is None and launcher.proc("alpha").popen.poll() is None  # the rest runs on
        exits = [e for e in launcher.events if e.kind == "exited"]
        assert exits and all(e.node == "crashy" and e.detail == "killed by SIGKILL" for e in exits)
        respawning = next(e for e in launcher.events if e.kind == "respawning")
        respawned = next(e for e in launcher.events if e.kind == "respawned")
        assert respawned.t - respawning.t >= 0.3  # the delay is kept
        assert wait_until(
            lambda: "restarts=2 last_exit=killed by SIGKILL" in (tmp_path / "logs" / "crashy.log").read_text()
        )
    finally:
        launcher.stop()
    assert launcher.proc("alpha").popen.returncode == 0


def test_required_node_exit_stops_the_stack(crash_prefix):
    stack = StackConfig(
        "t", (NodeSpec("alpha", "alpha_node", "alpha", ()), NodeSpec("crashy", "crashy_node", "crashy", (), required=True))
    )  # fmt: skip
    launcher = Launcher(stack, echo=False)
    launcher.start(ready_timeout=30)
    assert wait_until(lambda: launcher.failed() is not None)
    assert (
        "'crashy'" in launcher.failed() and "SIGKILL" in launcher.failed() and "required" in launcher.failed()
    )
    assert wait_until(lambda: launcher.proc("alpha").popen.poll() is not None)  # everything else stopped
    assert not any(e.kind == "respawned" for e in launcher.events)


def test_other_nodes_exit_is_logged_and_the_rest_runs_on(crash_prefix):
    stack = StackConfig(
        "t", (NodeSpec("alpha", "alpha_node", "alpha", ()), NodeSpec("crashy", "crashy_node", "crashy", ()))
    )
    launcher = Launcher(stack, echo=False)
    launcher.start(ready_timeout=30)
    try:
        assert wait_until(lambda: any(e.kind == "exited" for e in launcher.events))
        time.sleep(0.5)
        assert launcher.failed() is None and launcher.proc("alpha").popen.poll() is None
        assert not any(e.kind == "respawned" for e in launcher.events)
    finally:
        launcher.stop()
