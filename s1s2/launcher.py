"""`s1s2 up CONFIG`: start the stack's nodes on a pip-only install (no `ros2 launch` here).

Each node runs as its own OS process through the same console script `ros2 launch` uses
(`<prefix>/lib/<package>/<executable>`), with the same ROS parameter YAML files and the same
lifecycle policy (s1s2.stack: `required`, `respawn` + `respawn_delay`). The launcher waits for
every node's READY line; a node that exits before it stops the start, naming the node and its
last lines (a node that cannot start is a configuration problem, not a crash to retry). After
that a supervisor thread applies the policy: a required node's exit stops the stack, a respawned
node starts again after its delay (its restart count and the cause reach it in S1S2_RESTARTS /
S1S2_LAST_EXIT and so its /diagnostics), any other exit is logged. Ctrl-C stops everything
cleanly. A convenience, not a second launch system: no substitutions, no composition.
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

from s1s2 import resolve_path
from s1s2.ros import READY_MARKER
from s1s2.stack import LaunchError, NodeSpec, StackConfig, load_stack

__all__ = ["Launcher", "LaunchError", "NodeSpec", "StackConfig", "load_stack", "node_command", "exit_cause"]

# Environment a respawned node reads (s1s2.ros.publish_diagnostics reports both).
RESTARTS_ENV = "S1S2_RESTARTS"
LAST_EXIT_ENV = "S1S2_LAST_EXIT"


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


def wait_until(cond, timeout: float = 20.0, poll: float = 0.05) -> bool:
    """Poll `cond()` every `poll` s until it is true (True) or `timeout` s pass (False)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(poll)
    return False


def exit_cause(code: int) -> str:
    """'exit code 1' or 'killed by SIGKILL' (Popen reports a signal as a negative code)."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


@dataclass
class _Proc:
    spec: NodeSpec
    popen: subprocess.Popen
    restarts: int = 0
    ready: threading.Event = field(default_factory=threading.Event)
    tail: deque = field(default_factory=lambda: deque(maxlen=20))
    ready_time: float | None = None
    handled: bool = False  # its exit has been dealt with by the supervisor
    pump: threading.Thread | None = None  # copies its output to the log; joined by stop()


@dataclass
class LaunchEvent:
    t: float  # time.monotonic()
    node: str
    kind: str  # "exited" | "respawning" | "respawned" | "ready" | "stack_stopped"
    detail: str = ""


class Launcher:
    """Start, watch (lifecycle policy) and stop the nodes of one stack."""

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
        self.procs: list[_Proc] = []  # the current process of each node, stack order
        self.events: list[LaunchEvent] = []
        self._fatal: str | None = None
        self._lock = threading.Lock()  # echo lines
        self._procs_lock = threading.Lock()  # a respawn vs. stop()
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None

    # ------------------------------------------------------------------ processes
    def _say(self, line: str) -> None:
        if self.echo:
            with self._lock:
                print(line, flush=True)

    def _event(self, node: str, kind: str, detail: str = "") -> None:
        self.events.append(LaunchEvent(time.monotonic(), node, kind, detail))

    def _pump(self, proc: _Proc) -> None:
        mode = "a" if proc.restarts else "w"
        log = open(self.log_dir / f"{proc.spec.name}.log", mode) if self.log_dir else None  # noqa: SIM115
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
                    self._event(proc.spec.name, "ready", f"restart {proc.restarts}")
                self._say(f"[{proc.spec.name}] {line}")
        finally:
            if log:
                log.close()

    def _spawn(self, spec: NodeSpec, restarts: int = 0, last_exit: str = "") -> _Proc:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        if restarts:
            env[RESTARTS_ENV], env[LAST_EXIT_ENV] = str(restarts), last_exit
        popen = subprocess.Popen(
            node_command(spec, self.overrides.get(spec.name)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            env=env,
            start_new_session=True,  # our own SIGINT handling; Ctrl-C is forwarded explicitly
        )
        proc = _Proc(spec, popen, restarts)
        proc.pump = threading.Thread(target=self._pump, args=(proc,), daemon=True)
        proc.pump.start()
        return proc

    def start(self, ready_timeout: float = 180.0) -> None:
        """Start every node and wait until each prints READY; then supervise. Raises LaunchError
        naming the node that exited or did not become ready."""
        if self.log_dir:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        for spec in self.stack.nodes:
            self.procs.append(self._spawn(spec))
        deadline = time.monotonic() + ready_timeout
        while not all(p.ready.is_set() for p in self.procs):
            for p in self.procs:
                if p.popen.poll() is not None:
                    raise LaunchError(self._report(p))
            if time.monotonic() > deadline:
                waiting = [p.spec.name for p in self.procs if not p.ready.is_set()]
                raise LaunchError(f"node(s) {', '.join(waiting)} not ready after {ready_timeout:.0f} s")
            time.sleep(0.1)
        self._supervisor = threading.Thread(target=self._supervise, name="s1s2_supervisor", daemon=True)
        self._supervisor.start()

    def _report(self, p: _Proc) -> str:
        time.sleep(0.2)  # let the pump thread drain the last lines
        last = "\n    ".join(list(p.tail)[-8:]) or "(no output)"
        return (
            f"node {p.spec.name!r} ({p.spec.package}/{p.spec.executable}) {exit_cause(p.popen.returncode)} "
            f"(exited with code {p.popen.returncode}):\n    {last}"
        )

    # ------------------------------------------------------------------ lifecycle policy
    def _supervise(self) -> None:
        pending: dict[str, tuple[float, NodeSpec, int, str]] = {}  # name -> (when, spec, restarts, cause)
        while not self._stopping.is_set():
            now = time.monotonic()
            for p in list(self.procs):
                code = p.popen.poll()
                if code is None or p.handled:
                    continue
                p.handled = True
                if self._stopping.is_set():
                    return
                cause = exit_cause(code)
                self._event(p.spec.name, "exited", cause)
                if p.spec.required:
                    self._fatal = self._report(p) + "\n    (required node: stopping the stack)"
                    self._say(f"[s1s2 up] required node {p.spec.name!r} {cause}: stopping the stack")
                    self._event(p.spec.name, "stack_stopped", cause)
                    threading.Thread(target=self.stop, daemon=True).start()
                    return
                if p.spec.respawn:
                    n = p.restarts + 1
                    self._say(
                        f"[s1s2 up] node {p.spec.name!r} {cause}; respawning in {p.spec.respawn_delay:g} s "
                        f"(restart {n})"
                    )
                    self._event(p.spec.name, "respawning", f"restart {n} after {cause}")
                    pending[p.spec.name] = (now + p.spec.respawn_delay, p.spec, n, cause)
                else:
                    self._say(
                        f"[s1s2 up] node {p.spec.name!r} {cause}; not required, not respawned: the rest runs on"
                    )
            for name, (when, spec, n, cause) in list(pending.items()):
                if now < when:
                    continue
                with self._procs_lock:
                    if self._stopping.is_set():
                        return
                    del pending[name]
                    new = self._spawn(spec, n, cause)
                    self.procs = [new if q.spec.name == name else q for q in self.procs]
                self._event(name, "respawned", f"restart {n} (pid {new.popen.pid})")
            self._stopping.wait(0.05)

    def failed(self) -> str | None:
        """A one-paragraph report of the required node whose exit stopped the stack, or None."""
        return self._fatal

    def proc(self, name: str) -> _Proc:
        """The current process of node `name` (a respawn replaces it)."""
        return next(p for p in self.procs if p.spec.name == name)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGINT every node (the rclpy way to ask for a clean exit), then escalate if needed."""
        with self._procs_lock:
            self._stopping.set()  # no respawn after this
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGTERM, 3.0), (signal.SIGKILL, 2.0)):
            alive = [p for p in self.procs if p.popen.poll() is None]
            if not alive:
                break
            for p in alive:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.popen.pid, sig)
            end = time.monotonic() + wait
            while time.monotonic() < end and any(p.popen.poll() is None for p in alive):
                time.sleep(0.05)
        # The last lines a node printed on its way out (a traceback) reach its log before stop()
        # returns, so whoever reads the logs next sees them.
        for p in self.procs:
            if p.pump is not None:
                p.pump.join(timeout=2.0)

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
    # A background job of a non-interactive shell (`s1s2 up ... &` in a script, CI) starts with
    # SIGINT ignored, and Python then keeps it ignored: Ctrl-C / kill -INT would do nothing.
    # Stopping on SIGINT and SIGTERM is this command's contract, so install both explicitly.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
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
        print("s1s2 up: interrupted (SIGINT or SIGTERM), shutting down", flush=True)
    finally:
        launcher.stop()
    return code
