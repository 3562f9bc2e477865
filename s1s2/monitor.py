"""An independent observer of a running stack: measures topic rates and goal age over DDS.

Used by `make demo` and the system tests. It subscribes with the topics' own QoS, never publishes,
and measures on its own clock (receive times), so it sees what any other process on the graph sees.
For the joint commands it also keeps what DDS says of the sender (the publisher's source timestamp
and sequence number), so a gap can be told apart: System 1 stopped publishing, the message was
lost, or the receiving process was late.
"""

from __future__ import annotations

import gc
import threading
import time

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import Float64MultiArray

from s1s2 import topics
from s1s2.metrics import RateMeter, percentile
from s1s2.ros import qos_profile, stamp_to_sec
from s1s2_interfaces.msg import Goal, PlannerStatus, SortEvent


class StackMonitor(Node):
    def __init__(self, context=None, keep_commands: bool = False):
        super().__init__("s1s2_monitor", context=context)
        self.keep_commands = keep_commands
        self.commands: list[tuple[float, tuple[float, ...]]] = []  # (receive time, positions) if kept
        self.goal_log: list[tuple[float, float, str]] = []  # (receive time, stamp, target label)
        self.sort_events: list[tuple[float, SortEvent]] = []
        self.meters = {
            "goal": RateMeter(topics.GOAL_TOPIC.name),
            "command": RateMeter(topics.JOINT_COMMANDS.name),
            # the same commands on the publisher's clock (DDS source timestamps)
            "command_sent": RateMeter(topics.JOINT_COMMANDS.name + " (sent)"),
            "camera": RateMeter(topics.CAMERA_IMAGE.name),
        }
        self.latest_goal_stamp: float | None = None
        self.goal_ages: list[tuple[float, float]] = []  # (receive time, age of latest goal at that command)
        self.goals: list[Goal] = []
        self.diagnostics: dict[str, dict[str, str]] = {}
        self.diagnostics_history: list[tuple[float, str, dict[str, str]]] = []
        self.planner_status: list[tuple[float, PlannerStatus]] = []
        self.bad_commands = 0
        self.command_seq: list[int] = []  # each received command's publication sequence number
        self.create_subscription(
            Goal, topics.GOAL_TOPIC.name, self._on_goal, qos_profile(topics.GOAL_TOPIC.qos)
        )
        self.create_subscription(
            Float64MultiArray,
            topics.JOINT_COMMANDS.name,
            self._on_command,
            qos_profile(topics.JOINT_COMMANDS.qos),
        )
        self.create_subscription(
            Image, topics.CAMERA_IMAGE.name, self._on_image, qos_profile(topics.CAMERA_IMAGE.qos)
        )
        self.create_subscription(
            DiagnosticArray, topics.DIAGNOSTICS.name, self._on_diag, qos_profile(topics.DIAGNOSTICS.qos)
        )
        self.create_subscription(
            SortEvent,
            topics.SORT_EVENTS.name,
            lambda m: self.sort_events.append((self._now(), m)),
            qos_profile(topics.SORT_EVENTS.qos),
        )
        self.create_subscription(
            PlannerStatus,
            topics.PLANNER_STATUS.name,
            lambda m: self.planner_status.append((self._now(), m)),
            qos_profile(topics.PLANNER_STATUS.qos),
        )

    @staticmethod
    def _now() -> float:
        return time.time()  # wall clock: the stack stamps with the ROS clock, which is wall time here

    def _on_goal(self, msg: Goal) -> None:
        t = self._now()
        self.meters["goal"].tick(t)
        self.latest_goal_stamp = stamp_to_sec(msg.header.stamp)
        self.goals.append(msg)
        self.goal_log.append((t, self.latest_goal_stamp, msg.target_label))

    def _on_command(self, msg: Float64MultiArray, info: dict) -> None:
        t = self._now()
        self.meters["command"].tick(t)
        self.meters["command_sent"].tick(info["source_timestamp"] * 1e-9)
        self.command_seq.append(int(info["publication_sequence_number"]))
        if any(v != v for v in msg.data):
            self.bad_commands += 1
        if self.keep_commands:
            self.commands.append((t, tuple(msg.data)))
        if self.latest_goal_stamp is not None:
            self.goal_ages.append((t, t - self.latest_goal_stamp))

    def _on_image(self, _msg: Image) -> None:
        self.meters["camera"].tick(self._now())

    def _on_diag(self, msg: DiagnosticArray) -> None:
        t = self._now()
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            self.diagnostics[status.name] = values
            self.diagnostics_history.append((t, status.name, dict(values, _message=status.message)))

    def report(self, t0: float, t1: float) -> dict:
        out = {k: m.summary(t0, t1) for k, m in self.meters.items()}
        ages = sorted(a for t, a in self.goal_ages if t0 <= t < t1)
        out["goal_age"] = {
            "samples": len(ages),
            "p50_s": percentile(ages, 50),
            "p99_s": percentile(ages, 99),
            "max_s": ages[-1] if ages else float("nan"),
        }
        out["bad_commands"] = self.bad_commands
        out["command_stream"] = self.command_stream(t0, t1)
        return out

    def node_diagnostics(self, node: str) -> dict[str, str]:
        """The latest diagnostics values of `node` (its status is named "<node>: ..."); {} if none yet."""
        return next((v for k, v in self.diagnostics.items() if k.startswith(node)), {})

    def command_stream(self, t0: float, t1: float) -> dict:
        """System 1's command stream between t0 and t1 (receive times) as sent and as received.

        `longest_pause_ms` is the longest interval between two commands on the sender's clock (DDS
        source timestamps), the commands this receiver lost taken as sent one period apart: a
        pause of System 1 itself, whether or not this receiver lost commands around it."""
        from s1s2.topics import CONTROL_DT

        rx = np.asarray(self.meters["command"].times)
        keep = (rx >= t0) & (rx < t1)
        rx = rx[keep]
        sent = np.asarray(self.meters["command_sent"].times)[keep]
        seq = np.asarray(self.command_seq, dtype=np.int64)[keep]
        if len(rx) < 2:
            return {"received": int(len(rx))}
        steps = np.diff(seq)  # 1 per command; more where this receiver lost some; <= 0 on a restart
        pause = np.diff(sent) - (steps - 1) * CONTROL_DT
        return {
            "published": int(seq[-1] - seq[0] + 1),
            "published_hz": float((seq[-1] - seq[0]) / (sent[-1] - sent[0])),
            "longest_pause_ms": float(pause.max() * 1e3),
            "longest_pause_at": float(sent[int(pause.argmax())]),  # sender's clock: when it began
            "one_publisher": bool(np.all(steps > 0)),  # numbers restart if System 1 does
            "received": int(len(rx)),
            "lost": int((steps[steps > 0] - 1).sum()),  # holes in the sequence numbers
            "longest_receive_gap_ms": float(np.diff(rx).max() * 1e3),
        }


class MonitorThread:
    """Runs a StackMonitor in a background executor; `measure(seconds)` returns a report.

    The observer shares its process (and the GIL) with its caller, which may be a test session or
    a demo holding millions of Python objects: a full garbage collection over them paused this
    thread for a second on a loaded 2-core machine, a gap in receive times System 1 never had.
    So the objects alive at start are frozen out of the collector while it runs (`gc.freeze`,
    undone at close), and the collector's pauses meanwhile are recorded (`gc_pauses`)."""

    def __init__(self, keep_commands: bool = False, freeze_gc: bool = True):
        self._frozen = freeze_gc
        if freeze_gc:
            gc.collect()
            gc.freeze()
        self.gc_pauses: list[tuple[float, int, float]] = []  # (wall time, generation, seconds)
        self._gc_start = 0.0
        gc.callbacks.append(self._on_gc)
        self._ctx = rclpy.Context()
        rclpy.init(context=self._ctx)
        self.node = StackMonitor(context=self._ctx, keep_commands=keep_commands)
        self._executor = SingleThreadedExecutor(context=self._ctx)
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._stop = threading.Event()
        self._thread.start()

    def _on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            self.gc_pauses.append((time.time(), info["generation"], time.perf_counter() - self._gc_start))

    def _spin(self) -> None:
        while not self._stop.is_set() and self._ctx.ok():
            self._executor.spin_once(timeout_sec=0.1)

    def measure(self, seconds: float) -> dict:
        t0 = time.time()
        time.sleep(seconds)
        return self.node.report(t0, time.time())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self._executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self._ctx)
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        if self._frozen:
            gc.unfreeze()
