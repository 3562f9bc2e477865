"""Does a process joining the DDS graph stall System 1's publisher? (docs/benchmarks.md)

    source scripts/env.sh && python scripts/dds_join_stall.py [--joins 6] [--prios 70,0]

Starts the cell and fast_policy, a SCHED_FIFO 70 subscriber on /joint_commands for the whole window,
and every 6 s a group of short-lived subscriber processes (one per priority in --prios, started
together). Prints the command gaps > 30 ms the long-lived subscriber saw and fast_policy's own
figures: missed deadlines and the longest publish() in its tick.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from s1s2.launcher import Launcher
from s1s2.monitor import MonitorThread
from s1s2.stack import StackConfig, load_stack


def probe(seconds: float, fifo: int, out: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "s1s2.probe", "--seconds", str(seconds), "--fifo", str(fifo), "--out", out]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--joins", type=int, default=6)
    ap.add_argument(
        "--prios", default="70,0", help="SCHED_FIFO priority of each joining subscriber (0 = normal)"
    )
    a = ap.parse_args()
    prios = [int(x) for x in a.prios.split(",")]
    by = {n.name: n for n in load_stack("config/recycling_sim.yaml").nodes}
    launcher = Launcher(StackConfig("alone", (by["conveyor_sim"], by["fast_policy"])), echo=False)
    launcher.start(ready_timeout=240)
    mon = MonitorThread()
    try:
        time.sleep(4)
        with tempfile.TemporaryDirectory() as tmp:
            main_probe = probe(a.joins * 8.0 + 6, 70, f"{tmp}/main.json")
            main_probe.stdout.readline()  # subscribed
            time.sleep(3)
            for k in range(a.joins):
                group = [probe(3.0, f, f"{tmp}/join{k}_{f}.json") for f in prios]
                for p in group:
                    p.wait(60)
                time.sleep(2)
            main_probe.wait(120)
            time.sleep(1.2)  # a diagnostics message after the window
            arr = np.asarray(json.loads(Path(f"{tmp}/main.json").read_text())["arrivals"])
        diag = next((v for k, v in mon.node.diagnostics.items() if k.startswith("fast_policy")), {})
    finally:
        mon.close()
        launcher.stop()
    per = np.diff(arr) * 1e3
    gaps = [(round(float(arr[i] - arr[0]), 2), round(float(per[i]), 1)) for i in np.where(per > 30)[0]]
    print(f"{a.joins} joins of {prios}: command gaps > 30 ms at a SCHED_FIFO 70 subscriber (s, ms): {gaps}")
    print(
        {k: diag.get(k) for k in ("missed_deadlines", "publish_p99_ms", "publish_max_ms", "tick_time_p99_ms")}
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
