"""`s1s2` command line. Sub-commands are thin: each hands its arguments to the package that owns it.

s1s2 up CONFIG            start the stack's nodes as separate processes (pip-only installs)
s1s2 demo [--duration S]  the headless demo: stack rates + simulated sorting score
s1s2 models [NAMES...]    regenerate the artifacts in models/ and their manifest
s1s2 sim ...              conveyor_sim tools (record, export, expert runs, SDF generation)
s1s2 policy ...           fast_policy tools (build-engine, benchmark)
s1s2 planner ...          vlm_planner tools
s1s2 adapters ...         adapter_manager tools
s1s2 memory ...           memory a fine-tuning / inference job needs, and whether it fits a device
s1s2 failover [--soak S]  what a System 2 crash costs: command gaps, hold, respawn, sorting with kills
s1s2 nightly ...          train, gate and register an adapter from the day's recorded failures
s1s2 nightly cycle        one full cycle: a day in new lighting, the nightly run, the next day
s1s2 nightly sheet        the day's failure frames as a label sheet for a person (real robots)
s1s2 shiftday run|table   shift days through the nodes per seed; manager ON vs OFF pooled, with targets
"""

from __future__ import annotations

import importlib
import sys


def parse_seeds(text: str) -> list[int]:
    """The --seeds argument of every command that runs seeds: "31-34" -> [31, 32, 33, 34];
    "3,5-6" -> [3, 5, 6]. ValueError names the bad part."""
    out: list[int] = []
    for part in str(text).split(","):
        a, _, b = part.strip().partition("-")
        try:
            lo, hi = int(a), int(b) if b else int(a)
        except ValueError:
            raise ValueError(f"bad seed range {part!r} in {text!r} (use e.g. 31-34 or 3,5-6)") from None
        if hi < lo:
            raise ValueError(f"bad seed range {part!r} in {text!r}: end before start")
        out += range(lo, hi + 1)
    return out


# sub-command -> "module:function" taking argv (list[str]) and returning an exit code
COMMANDS = {
    "up": "s1s2.launcher:main",
    "demo": "s1s2.demo:main",
    "models": "s1s2.models:main",
    "bench": "s1s2.bench:main",
    "sim": "conveyor_sim.cli:main",
    "policy": "fast_policy.cli:main",
    "planner": "vlm_planner.cli:main",
    "adapters": "adapter_manager.cli:main",
    "memory": "s1s2.memory:main",
    "failover": "s1s2.failover:main",
    "nightly": "s1s2_training.nightly:main",
    "shiftday": "s1s2.shiftday:main",
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd not in COMMANDS:
        print(f"s1s2: unknown command {cmd!r}; commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module, func = COMMANDS[cmd].split(":")
    return int(getattr(importlib.import_module(module), func)(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
