"""`s1s2 up CONFIG`: start the stack's nodes on a pip-only install (no `ros2 launch` here).

Each node runs as its own OS process through the same console script `ros2 launch` uses
(`<prefix>/lib/<package>/<executable>`), with the same ROS parameter YAML files. The launcher waits
for every node's READY line, prints which node failed and why if one dies, and shuts everything
down cleanly on Ctrl-C. It is a convenience, not a second launch system: no conditions, no
substitutions, no composition.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from s1s2 import resolve_path
from s1s2.ros import READY_MARKER


class LaunchError(RuntimeError):
    pass


@dataclass(frozen=True)
class NodeSpec:
    package: str
    executable: str
    name: str
    parameters: tuple[str, ...]
    prefix: str = ""  # command prefix, as launch_ros Node(prefix=...), e.g. "nice -n -10"


@dataclass(frozen=True)
class StackConfig:
    name: str
    nodes: tuple[NodeSpec, ...]


def load_stack(path: str | os.PathLike) -> StackConfig:
    """Parse and check a stack YAML (see config/recycling_sim.yaml)."""
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
        missing = [k for k in ("package", "executable", "name") if not isinstance(entry.get(k), str)]
        if missing:
            raise LaunchError(f"stack config {p}: node #{i} lacks {', '.join(missing)}")
        params = tuple(entry.get("parameters") or ())
        for pf in params:
            if not resolve_path(pf).is_file():
                raise LaunchError(
                    f"stack config {p}: node {entry['name']!r}: parameter file {pf!r} not found"
                )
        prefix = entry.get("prefix", "")
        if not isinstance(prefix, str):
            raise LaunchError(
                f"stack config {p}: node {entry['name']!r}: prefix must be a string, got {prefix!r}"
            )
        nodes.append(NodeSpec(entry["package"], entry["executable"], entry["name"], params, prefix))
    names = [n.name for n in nodes]
    if len(set(names)) != len(names):
        raise LaunchError(f"stack config {p}: duplicate node names in {names}")
    return StackConfig(str(data.get("name", p.stem)), tuple(nodes))


def find_executable(package: str, executable: str) -> Path:
    """Locate `<prefix>/lib/<package>/<executable>` on AMENT_PREFIX_PATH, as ros2 run does."""
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    for prefix in prefixes:
        candidate = Path(prefix) / "lib" / package / executable
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise LaunchError(
        f"executable {executable!r} of package {package!r} not found on AMENT_PREFIX_PATH "
        f"({len(prefixes)} prefixes); build the workspace (make setup) and source scripts/env.sh"
    )


def node_command(node: NodeSpec, overrides: list[str] | None = None) -> list[str]:
    cmd = shlex.split(node.prefix) + [
        str(find_executable(node.package, node.executable)),
        "--ros-args",
        "-r",
        f"__node:={node.name}",
    ]
    for pf in node.parameters:
        cmd += ["--params-file", str(resolve_path(pf))]
    for ov in overrides or []:
        cmd += ["-p", ov]
    return cmd


@dataclass
class _Proc:
    spec: NodeSpec
    popen: subprocess.Popen
    ready: threading.Event = field(default_factory=threading.Event)
    tail: deque = field(default_factory=lambda: deque(maxlen=20))
    ready_time: float | None = None


class Launcher:
    """Start, watch and stop the nodes of one stack."""

    def __init__(
        self,
        stack: StackConfig,
        overrides: dict[str, list[str]] | None = None,
        log_dir: Path | None = None,
        echo: bool = True,
    ):
        self.stack = stack
        self.overrides = overrides or {}
        self.log_dir = log_dir
        self.echo = echo
        self.procs: list[_Proc] = []
        self._lock = threading.Lock()

    def _pump(self, proc: _Proc) -> None:
        log = open(self.log_dir / f"{proc.spec.name}.log", "w") if self.log_dir else None  # noqa: SIM115
        try:
            for raw in proc.popen.stdout:
                line = raw.rstrip("\n")
                proc.tail.append(line)
                if log:
                    log.write(line + "\n")
                    log.flush()
                if line.startswith(READY_MARKER) and not proc.ready.is_set():
                    proc.ready_time = time.monotonic()
                    proc.ready.set()
                if self.echo:
                    with self._lock:
                        print(f"[{proc.spec.name}] {line}", flush=True)
        finally:
            if log:
                log.close()

    def start(self, ready_timeout: float = 180.0) -> None:
        """Start every node and wait until each prints READY. Raises LaunchError naming the failed node."""
        if self.log_dir:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        for spec in self.stack.nodes:
            cmd = node_command(spec, self.overrides.get(spec.name))
            popen = subprocess.Popen(
                cmd,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                bufsize=1,
                env=env,
                start_new_session=True,  # our own SIGINT handling; Ctrl-C is forwarded explicitly
            )
            proc = _Proc(spec, popen)
            threading.Thread(target=self._pump, args=(proc,), daemon=True).start()
            self.procs.append(proc)
        deadline = time.monotonic() + ready_timeout
        while not all(p.ready.is_set() for p in self.procs):
            failed = self.failed()
            if failed:
                raise LaunchError(failed)
            if time.monotonic() > deadline:
                waiting = [p.spec.name for p in self.procs if not p.ready.is_set()]
                raise LaunchError(f"node(s) {', '.join(waiting)} not ready after {ready_timeout:.0f} s")
            time.sleep(0.1)

    def failed(self) -> str | None:
        """A one-paragraph report of the first node that exited, or None if all run."""
        for p in self.procs:
            code = p.popen.poll()
            if code is not None:
                time.sleep(0.2)  # let the pump thread drain the last lines
                last = "\n    ".join(list(p.tail)[-8:]) or "(no output)"
                return f"node {p.spec.name!r} ({p.spec.package}/{p.spec.executable}) exited with code {code}:\n    {last}"
        return None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGINT every node (the rclpy way to ask for a clean exit), then escalate if needed."""
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGTERM, 3.0), (signal.SIGKILL, 2.0)):
            alive = [p for p in self.procs if p.popen.poll() is None]
            if not alive:
                return
            for p in alive:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.popen.pid, sig)
            end = time.monotonic() + wait
            while time.monotonic() < end and any(p.popen.poll() is None for p in alive):
                time.sleep(0.05)

    def __enter__(self) -> Launcher:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def parse_overrides(items: list[str]) -> dict[str, list[str]]:
    """`node:param:=value` items -> {node: ["param:=value", ...]}."""
    out: dict[str, list[str]] = {}
    for item in items:
        node, sep, rest = item.partition(":")
        if not sep or ":=" not in rest:
            raise LaunchError(f"bad --param {item!r}; expected NODE:PARAM:=VALUE")
        out.setdefault(node, []).append(rest)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="s1s2 up", description=__doc__.splitlines()[0])
    ap.add_argument("config", help="stack YAML, e.g. config/recycling_sim.yaml")
    ap.add_argument(
        "--duration", type=float, default=None, help="stop after S seconds (default: run until Ctrl-C)"
    )
    ap.add_argument("--param", action="append", default=[], metavar="NODE:PARAM:=VALUE")
    ap.add_argument("--log-dir", type=Path, default=None)
    ap.add_argument("--ready-timeout", type=float, default=180.0)
    args = ap.parse_args(argv)
    try:
        stack = load_stack(args.config)
        launcher = Launcher(stack, parse_overrides(args.param), args.log_dir)
    except LaunchError as exc:
        print(f"s1s2 up: {exc}", file=sys.stderr)
        return 2
    code = 0
    try:
        launcher.start(args.ready_timeout)
        print(f"s1s2 up: all {len(stack.nodes)} nodes of {stack.name!r} ready", flush=True)
        end = None if args.duration is None else time.monotonic() + args.duration
        while end is None or time.monotonic() < end:
            failed = launcher.failed()
            if failed:
                raise LaunchError(failed)
            time.sleep(0.2)
    except LaunchError as exc:
        print(f"s1s2 up: {exc}", file=sys.stderr, flush=True)
        code = 1
    except KeyboardInterrupt:
        print("s1s2 up: Ctrl-C, shutting down", flush=True)
    finally:
        launcher.stop()
    return code
