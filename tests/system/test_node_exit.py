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
