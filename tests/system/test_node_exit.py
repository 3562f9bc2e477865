"""A node with no timer of its own (failure_recorder) still exits cleanly on SIGINT / SIGTERM:
run_node spins with a timeout, so the Python signal handler gets to run (with spin() it sat in the
C-level wait until the launcher's SIGKILL, and the day's MCAP file never got its footer)."""

import os
import signal
import subprocess
import sys
import time

import pytest

from s1s2 import repo_root
from s1s2.ros import READY_MARKER

pytestmark = pytest.mark.system


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_timerless_node_exits_on_signal(tmp_path, sig):
    cmd = [
        sys.executable,
        "-m",
        "adapter_manager.failure_node",
        "--ros-args",
        "-p",
        f"output_dir:={tmp_path}",
    ]
    p = subprocess.Popen(cmd, cwd=repo_root(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env=os.environ.copy())  # fmt: skip
    try:
        end = time.monotonic() + 60
        lines = []
        while time.monotonic() < end:
            line = p.stdout.readline()
            lines.append(line)
            if READY_MARKER in line or (not line and p.poll() is not None):
                break
        assert any(READY_MARKER in x for x in lines), "".join(lines)
        time.sleep(0.5)
        p.send_signal(sig)
        code = p.wait(timeout=5.0)
        assert code == 0, "".join(lines) + p.stdout.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


_SIGNAL_IN_CALLBACK = """
import os, signal, sys, time
from rclpy.node import Node
from s1s2.ros import run_node

class Probe(Node):
    def __init__(self):
        super().__init__("s1s2_signal_probe")
        self.create_timer(0.05, self.tick)
        self.ticks = 0

    def tick(self):
        self.ticks += 1
        if self.ticks == 3:
            os.kill(os.getpid(), signal.SIGINT)  # the stop arrives while this callback runs
            for _ in range(2000):
                time.sleep(0)  # many bytecodes: a raising handler would interrupt this loop
            print("CALLBACK FINISHED", flush=True)

sys.exit(run_node(Probe, single_threaded=True))
"""


def test_a_signal_during_a_callback_lets_it_finish_and_exits_0():
    """A SIGINT that arrives while a callback runs in the main thread ends the spin loop after the
    callback: raising KeyboardInterrupt in the middle of it (inside an rclpy pybind11 call it came
    out as a RuntimeError) made the planner exit with code 1."""
    p = subprocess.run([sys.executable, "-c", _SIGNAL_IN_CALLBACK], cwd=repo_root(), capture_output=True,
                       text=True, timeout=60, env=os.environ.copy())  # fmt: skip
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    assert "CALLBACK FINISHED" in p.stdout, out
    assert "Traceback" not in out, out
