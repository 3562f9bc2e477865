"""s1s2: System 1 / System 2 robot stack. Shared, ROS-free helpers and the command line."""

import os
from pathlib import Path

__version__ = "0.1.0"


def repo_root() -> Path:
    """Root that relative model/config paths resolve against: $S1S2_ROOT, else this checkout."""
    env = os.environ.get("S1S2_ROOT")
    return Path(env) if env else Path(__file__).resolve().parent.parent


def resolve_path(path: str | os.PathLike) -> Path:
    """Absolute paths stay; relative ones are taken from the repo root (not the cwd of a node)."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else repo_root() / p
