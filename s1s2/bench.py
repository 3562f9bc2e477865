"""`s1s2 bench` (`make bench`): run each area's benchmark and collect the output in one report.

Timings on a shared 2-core machine are noisy; each area's benchmark compares alternatives side by
side in one run (ratios) and prints its own numbers. This only runs them and keeps the record.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from s1s2 import repo_root

BENCHES = {
    "sim": ["sim", "bench"],  # real-time factor, render ms/frame
    "policy": ["policy", "bench"],  # per-tick inference latency per provider
    "planner": ["planner", "bench"],  # plan latency, adapter swap latency, 4-bit memory
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="s1s2 bench", description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help=f"subset of {', '.join(BENCHES)}")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    out = args.out or repo_root() / "runs" / time.strftime("bench-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    report = [f"# s1s2 benchmark report ({time.strftime('%Y-%m-%d %H:%M:%S')})", ""]
    code = 0
    for name in args.names or list(BENCHES):
        cmd = [sys.executable, "-m", "s1s2.cli", *BENCHES[name]]
        print(f"[bench] {' '.join(['s1s2', *BENCHES[name]])}", flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        print(proc.stdout, end="", flush=True)
        report += [f"## {name}", "", f"`s1s2 {' '.join(BENCHES[name])}` (exit {proc.returncode})", "", "```"]
        report += [proc.stdout.rstrip(), "```", ""]
        if proc.returncode != 0:
            code = 1
            print(proc.stderr[-2000:], file=sys.stderr)
    (out / "report.md").write_text("\n".join(report) + "\n")
    print(f"[bench] report: {out / 'report.md'}")
    return code
