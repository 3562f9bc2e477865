"""Stop the whole stack seconds after start, under injected load, many times; count clean exits.

Each cycle does what `tests/system/test_stack.py::test_stop_right_after_start_under_load_is_clean`
does once per cycle: start the four nodes, inject goals, images and adapter swap requests at
50 Hz from another rclpy context, stop after 4 s, and record each node's exit code. A race in the
shutdown path shows up in a fraction of stops, so one test run cannot show it is gone; this does.

    python scripts/stop_under_load.py --cycles 16 [--burn] [--param vlm_planner:warm_adapter_slots:=true]

`--burn` runs a busy loop beside the stack (a loaded CI machine). Logs: runs/stop_under_load/<n>/.
Exit code: the number of cycles in which some node exited non-zero (0 = all clean).
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys

from s1s2 import repo_root
from s1s2.launcher import parse_overrides


def _burn() -> None:
    while True:
        sum(range(100_000))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=4.0, help="how long the stack runs before the stop")
    ap.add_argument("--burn", action="store_true", help="keep one core busy beside the stack")
    ap.add_argument("--param", action="append", default=[], metavar="NODE:PARAM:=VALUE")
    ap.add_argument("--stack", default="config/recycling_sim.yaml")
    a = ap.parse_args(argv)
    sys.path.insert(0, str(repo_root() / "tests" / "system"))
    from injector import stop_under_load  # the system tests' cycle

    burner = multiprocessing.Process(target=_burn, daemon=True) if a.burn else None
    if burner:
        burner.start()
    bad = 0
    try:
        for cycle in range(a.cycles):
            log_dir = repo_root() / "runs" / "stop_under_load" / str(cycle)
            codes, stop_s = stop_under_load(a.stack, log_dir, parse_overrides(a.param), a.seconds)
            failed = {n: c for n, c in codes.items() if c != 0}
            bad += bool(failed)
            print(f"cycle {cycle}: stop {stop_s:.1f} s, exit codes {codes}" + (f"  FAILED, logs in {log_dir}"
                  if failed else ""), flush=True)  # fmt: skip
    finally:
        if burner:
            burner.terminate()
    print(f"{a.cycles - bad} of {a.cycles} stops clean")
    return bad


if __name__ == "__main__":
    sys.exit(main())
