"""The stack description (config/recycling_sim.yaml and friends): which nodes run, with which
parameter files, and what happens when one exits. ROS-free; read by both launchers, `s1s2 up`
(s1s2.launcher) and `ros2 launch launch/recycling_sim.launch.py`, so they cannot disagree.

Lifecycle policy per node, with the same meaning in both launchers:
- `required: true`: the whole stack stops when this node exits (launch: `on_exit=Shutdown()`).
  The motor-loop node and the cell are required: without them nothing commands or simulates the arm.
- `respawn: true` + `respawn_delay` (s): the node is started again that long after it exited
  (launch_ros `Node(respawn=True, respawn_delay=...)`). The planner and the adapter manager
  respawn: System 1 holds safely while they are gone and resumes on the first fresh goal.
- neither: the exit is logged and the rest keeps running.
`simulator: true` marks the node that a Gazebo world replaces (ros2 launch ... with_mujoco:=false).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from s1s2 import resolve_path


class LaunchError(RuntimeError):
    pass


@dataclass(frozen=True)
class NodeSpec:
    package: str
    executable: str
    name: str
    parameters: tuple[str, ...]
    prefix: str = ""  # command prefix, as launch_ros Node(prefix=...), e.g. "nice -n -10"
    required: bool = False  # the stack stops when this node exits
    respawn: bool = False  # started again `respawn_delay` seconds after it exits
    respawn_delay: float = 0.0
    simulator: bool = False  # the simulated cell (not started when Gazebo provides it)


@dataclass(frozen=True)
class StackConfig:
    name: str
    nodes: tuple[NodeSpec, ...]


_KEYS = {
    "package",
    "executable",
    "name",
    "parameters",
    "prefix",
    "required",
    "respawn",
    "respawn_delay",
    "simulator",
}


def load_stack(path: str | os.PathLike) -> StackConfig:
    """Parse and check a stack YAML; LaunchError names the file, the node and the problem."""
    import yaml

    p = resolve_path(path)
    if not p.is_file():
        raise LaunchError(f"stack config {str(path)!r} not found (looked at {p})")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise LaunchError(f"stack config {p}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list) or not data["nodes"]:
        raise LaunchError(f"stack config {p}: needs a non-empty 'nodes' list")
    nodes = []
    for i, entry in enumerate(data["nodes"]):
        if not isinstance(entry, dict):
            raise LaunchError(f"stack config {p}: node #{i} is not a mapping")
        missing = [k for k in ("package", "executable", "name") if not isinstance(entry.get(k), str)]
        if missing:
            raise LaunchError(f"stack config {p}: node #{i} lacks {', '.join(missing)}")
        where = f"stack config {p}: node {entry['name']!r}"
        unknown = sorted(set(entry) - _KEYS)
        if unknown:
            raise LaunchError(
                f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}"
            )
        params = tuple(entry.get("parameters") or ())
        for pf in params:
            if not resolve_path(pf).is_file():
                raise LaunchError(f"{where}: parameter file {pf!r} not found")
        prefix = entry.get("prefix", "")
        if not isinstance(prefix, str):
            raise LaunchError(f"{where}: prefix must be a string, got {prefix!r}")
        flags = {k: entry.get(k, False) for k in ("required", "respawn", "simulator")}
        for k, v in flags.items():
            if not isinstance(v, bool):
                raise LaunchError(f"{where}: {k} must be true or false, got {v!r}")
        if flags["required"] and flags["respawn"]:
            raise LaunchError(f"{where}: a node is either required (its exit stops the stack) or respawned")
        delay = entry.get("respawn_delay", 0.0)
        if (
            isinstance(delay, bool)
            or not isinstance(delay, (int, float))
            or not math.isfinite(delay)
            or delay < 0
        ):
            raise LaunchError(f"{where}: respawn_delay must be a number of seconds >= 0, got {delay!r}")
        nodes.append(
            NodeSpec(entry["package"], entry["executable"], entry["name"], params, prefix,
                     respawn_delay=float(delay), **flags)
        )  # fmt: skip
    names = [n.name for n in nodes]
    if len(set(names)) != len(names):
        raise LaunchError(f"stack config {p}: duplicate node names in {names}")
    return StackConfig(str(data.get("name", p.stem)), tuple(nodes))
