"""The small amount of rclpy glue every s1s2 node shares: QoS profiles, parameter declaration
with descriptors, and the Jazzy-style main loop. Cores never import this module."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.duration import Duration
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions

from s1s2.params import ConfigError, ParamSpec, param_specs
from s1s2.topics import QosSpec

READY_MARKER = "[s1s2] READY"  # printed on stdout once a node is fully initialised; the launcher waits for it


def qos_profile(spec: QosSpec) -> QoSProfile:
    profile = QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=spec.depth,
        reliability=ReliabilityPolicy.RELIABLE if spec.reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if spec.transient_local else DurabilityPolicy.VOLATILE,
    )
    if spec.deadline_s is not None:
        profile.deadline = Duration(seconds=spec.deadline_s)
    return profile


def _descriptor(spec: ParamSpec) -> ParameterDescriptor:
    desc = spec.description
    if spec.choices:
        desc += f" (one of: {', '.join(spec.choices)})"
    d = ParameterDescriptor(description=desc, read_only=spec.read_only)
    is_num = isinstance(spec.default, (int, float)) and not isinstance(spec.default, bool)
    if is_num and spec.min is not None and spec.max is not None:
        if isinstance(spec.default, int):
            d.integer_range = [IntegerRange(from_value=int(spec.min), to_value=int(spec.max), step=0)]
        else:
            d.floating_point_range = [
                FloatingPointRange(from_value=float(spec.min), to_value=float(spec.max))
            ]
    return d


def declare_parameters(node: Node, config_cls):
    """Declare every parameter of the config dataclass `config_cls` (s1s2.params) with its
    descriptor and return the dataclass built from the declared values.

    Raises ConfigError (one line naming the parameter and value) on a bad value; range violations
    caught by rclpy itself are re-raised as ConfigError too.
    """
    values = {}
    for spec in param_specs(config_cls):
        try:
            param = node.declare_parameter(spec.name, spec.default, _descriptor(spec))
        except Exception as exc:  # rclpy raises InvalidParameterValueException and friends
            raise ConfigError(f"parameter '{spec.name}': {exc}") from exc
        values[spec.name] = spec.validate(param.value)
    return config_cls(**values)


def publish_diagnostics(node: Node, publisher, status, values: dict[str, str]) -> None:
    """Fill `status.values` from `values` and publish it as a stamped DiagnosticArray. Every node
    also reports how often it was restarted and why (set by `s1s2 up` when it respawns a node)."""
    values = dict(values, restarts=os.environ.get("S1S2_RESTARTS", "0"))
    if os.environ.get("S1S2_LAST_EXIT"):
        values["last_exit"] = os.environ["S1S2_LAST_EXIT"]
    status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
    msg = DiagnosticArray(status=[status])
    msg.header.stamp = node.get_clock().now().to_msg()
    publisher.publish(msg)


def stamp_to_sec(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def sec_to_stamp(t: float, stamp_cls):
    sec = int(t)
    return stamp_cls(sec=sec, nanosec=int(round((t - sec) * 1e9)) % 1_000_000_000)


class _StopRequest:
    """The SIGINT/SIGTERM handler of `run_node`.

    While the node is being built it raises KeyboardInterrupt, so a long model load stays
    interruptible. Once the node runs it only sets `event`, and the spin loop ends at its next turn
    (at most 0.25 s). Raising there landed at an arbitrary point of a callback running in the main
    thread, and inside one of rclpy's pybind11 calls the KeyboardInterrupt came out as
    `RuntimeError: Unable to convert call argument '0' to Python object`, which nothing caught: the
    planner, stopped under swap-request load, exited with code 1 in about 1 of 20-40 stops.
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self.raising = True

    def __call__(self, signum, frame) -> None:  # noqa: ARG002 - signal handler signature
        self.event.set()
        if self.raising:
            raise KeyboardInterrupt(f"signal {signum}")


def run_node(
    factory: Callable[[], Node],
    num_threads: int = 4,
    args: list[str] | None = None,
    single_threaded: bool = False,
) -> int:
    """Jazzy main loop: init, build, spin an executor, shut down cleanly.

    `single_threaded=True` is for nodes whose callbacks are all short, periodic or async (the 50 Hz
    policy, the simulator, the planner): measured on the 2-core box, Jazzy's MultiThreadedExecutor
    lost 3.5 % of a 50 Hz timer's ticks (46 missed in 12 s) at twice the CPU, the
    SingleThreadedExecutor 1 tick. Their callback groups stay as they are, so they also run right
    inside a multi-threaded container. Only the adapter manager keeps the multi-threaded one.

    A node with a `run(executor, stop_event)` method drives its executor itself (fast_policy's
    real-time loop) until the event is set; the others are spun here.

    Shutdown order: SIGINT/SIGTERM end the spin loop (see `_StopRequest`; rclpy's own signal
    handler is off: it would invalidate the context while timers, worker threads and the render
    thread still publish, which logged "RCLError: publisher's context is invalid"). Then
    `node.close()` stops the node's own threads and loops, the executor stops and waits for
    running callbacks, the node is destroyed, and only then does the context go down.

    A ConfigError while building stops the node with one line naming the parameter and value
    (exit code 2) so the launcher can report which node stopped and why.
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = _StopRequest()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    node = executor = None
    code = 0
    try:
        try:
            node = factory()
        except ConfigError as exc:
            print(f"[s1s2] CONFIG ERROR: {exc}", file=sys.stderr, flush=True)
            return 2
        executor = (
            SingleThreadedExecutor() if single_threaded else MultiThreadedExecutor(num_threads=num_threads)
        )
        executor.add_node(node)
        stop.raising = False  # from here on a signal only asks the loop below to end
        print(f"{READY_MARKER} {node.get_name()} {time.time():.3f}", flush=True)
        run = getattr(node, "run", None)
        if callable(run):
            run(executor, stop.event)  # the node drives its executor itself (fast_policy's RT loop)
        else:
            # spin_once with a timeout, not spin(): a node with no timer would otherwise sit in the
            # C-level wait forever, and the stop request would never be looked at.
            while rclpy.ok() and not stop.event.is_set():
                executor.spin_once(timeout_sec=0.25)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        # A second Ctrl-C during the clean-up must not leave threads publishing into a dead context.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        if node is not None:
            close = getattr(node, "close", None)
            if callable(close):
                close()  # the node's own threads and loops stop while the context is still valid
        if executor is not None:
            executor.shutdown(timeout_sec=5.0)  # no new callbacks; waits for running ones
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return code
