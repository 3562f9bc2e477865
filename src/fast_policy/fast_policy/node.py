"""`fast_policy` node: System 1 at 50 Hz. Thin: converts messages and calls `Controller`.

One real-time thread runs the node (`run`, called by s1s2.ros.run_node instead of spinning an
executor): it wakes at absolute 20 ms deadlines (SCHED_FIFO where allowed, fast_policy.rt_loop),
ticks the controller and publishes the command at once, then runs the callbacks that arrived
(joint states, belt, vacuum, goals, diagnostics) for at most `drain_budget_s`. With a single
Python thread doing the node's work, no other thread of the node can hold the GIL when a tick is
due; the start-up heap is frozen so garbage collections stay short; both are measured and
reported (`/diagnostics`: tick lateness, GC pauses, publish time). The node never waits for
System 2: it uses whatever goal it has, and holds safely when there is none or it is stale.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from collections import deque

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, ShutdownException, TimeoutException
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64MultiArray

from fast_policy import config as cfg
from fast_policy.controller import Controller, LoopStats, OnnxPolicySource
from fast_policy.goal_tracker import GoalData
from fast_policy.rt_loop import RealtimeLoop
from fast_policy.runtime import PolicySession
from s1s2 import topics
from s1s2.ros import declare_parameters, publish_diagnostics, qos_profile, run_node, stamp_to_sec
from s1s2_interfaces.msg import Goal


def goal_from_msg(msg: Goal) -> GoalData:
    return GoalData(
        stamp_s=stamp_to_sec(msg.header.stamp),
        frame_id=msg.header.frame_id,
        target_label=msg.target_label,
        target_xyz=(msg.target_pose.position.x, msg.target_pose.position.y, msg.target_pose.position.z),
        place_xyz=(msg.place_pose.position.x, msg.place_pose.position.y, msg.place_pose.position.z),
        latent=list(msg.latent),
        valid_for_s=msg.valid_for.sec + msg.valid_for.nanosec * 1e-9,
        plan_id=msg.plan_id,
        bin_id=msg.bin_id,
        confidence=float(msg.confidence),
    )


class FastPolicyNode(Node):
    def __init__(self, **kwargs):
        super().__init__(cfg.NODE_NAME, **kwargs)
        p = declare_parameters(self, cfg.FastPolicyConfig)
        self.params = p
        self._throttle = p.log_throttle_s
        arm = p.arm()
        limits = p.joint_limits()
        log = self.get_logger()
        self.session = PolicySession(
            p.model_path,
            p.metadata_path or None,
            providers=p.providers,
            trt_fp16=p.trt_fp16,
            trt_cache_dir=p.trt_cache_dir,
            intra_op_threads=p.intra_op_threads,
            arm=arm,
            log=log.info,
        )
        meta = self.session.meta
        try:
            ccfg = p.controller_config().with_execution(meta.execution)
            self.controller = Controller(
                OnnxPolicySource(self.session),
                meta.chunk_size,
                limits,
                arm,
                ccfg,
                p.goal_tracker(),
                meta.spec_version,
            )
        except ValueError as exc:  # joint names/limits of the cell, execution vs chunk size
            raise cfg.ConfigError(f"policy {meta.path!r} with cell {p.cell!r}: {exc}") from exc
        log.info(
            f"chunk execution: {ccfg.chunk_mode}, aim index {ccfg.aim_index}, suction index {ccfg.suction_index}"
            f" ({'from policy.json' if p.execution_from_model else 'from parameters'})"
        )
        t0 = time.perf_counter()
        self.session.warmup(p.warmup_runs)
        log.info(f"warm-up: {p.warmup_runs} inferences in {time.perf_counter() - t0:.3f} s")
        self._lock = threading.Lock()  # controller state (uncontended when run() drives the node)
        self.stats = LoopStats(p.rate_hz)
        self.loop = RealtimeLoop(1.0 / p.rate_hz, self._loop_tick, p.realtime_priority, log=log.warning)
        self._executor = None
        self._publish_s: deque[float] = deque(maxlen=3000)
        self._gc_pauses: deque[float] = deque(maxlen=200)
        self._gc_t0 = 0.0
        self._rejected_goals_logged = 0

        io_group = MutuallyExclusiveCallbackGroup()
        self.cmd_pub = self.create_publisher(
            Float64MultiArray, topics.JOINT_COMMANDS.name, qos_profile(topics.JOINT_COMMANDS.qos)
        )
        self.suction_pub = self.create_publisher(
            Bool, topics.SUCTION_COMMAND.name, qos_profile(topics.SUCTION_COMMAND.qos)
        )
        self.diag_pub = self.create_publisher(
            DiagnosticArray, topics.DIAGNOSTICS.name, qos_profile(topics.DIAGNOSTICS.qos)
        )
        self.create_subscription(
            JointState,
            topics.JOINT_STATES.name,
            self._on_joint_state,
            qos_profile(topics.JOINT_STATES.qos),
            callback_group=io_group,
        )
        self.create_subscription(
            JointState,
            topics.BELT_STATE.name,
            self._on_belt,
            qos_profile(topics.BELT_STATE.qos),
            callback_group=io_group,
        )
        self.create_subscription(
            Bool,
            topics.VACUUM.name,
            self._on_vacuum,
            qos_profile(topics.VACUUM.qos),
            callback_group=io_group,
        )
        self.create_subscription(
            Goal,
            topics.GOAL_TOPIC.name,
            self._on_goal,
            qos_profile(topics.GOAL_TOPIC.qos),
            callback_group=io_group,
        )
        self.create_timer(p.diagnostics_period_s, self._publish_diagnostics, callback_group=io_group)

    # ---- the loop ----------------------------------------------------------------------------
    def run(self, executor, stop: threading.Event) -> None:
        """Drive the node from the real-time loop thread until close() or `stop` (SIGINT/SIGTERM)."""
        self._executor = executor
        if self.params.gc_freeze:
            gc.collect()
            gc.freeze()  # start-up objects are never scanned again: collections stay short
        gc.callbacks.append(self._on_gc)  # from here on, every collection's pause is measured
        sys.setswitchinterval(self.params.switch_interval_s)
        self.loop.start()
        self.get_logger().info(f"control loop: {1.0 / self.loop.period:g} Hz, waiting for scheduling ...")
        while self.loop.running and not stop.is_set():
            self.loop._thread.join(0.2)

    def _loop_tick(self) -> None:
        self._tick()
        self._drain(self.params.drain_budget_s)

    def _drain(self, budget_s: float) -> None:
        """Run ready callbacks (subscriptions, the diagnostics timer) for at most `budget_s`."""
        ex = self._executor
        if ex is None:
            return
        end = time.monotonic() + budget_s
        while time.monotonic() < end:
            try:
                handler, _entity, _node = ex.wait_for_ready_callbacks(timeout_sec=0.0)
            except (TimeoutException, ShutdownException, ExternalShutdownException):
                return
            handler()
            exc = handler.exception()
            if exc is not None:
                raise exc

    def _on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_t0 = time.perf_counter()
        else:
            self._gc_pauses.append(time.perf_counter() - self._gc_t0)

    def close(self) -> None:
        """Stop the control loop (run_node calls this before the executor and context go down)."""
        self.loop.stop()
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # ---- subscriptions ---------------------------------------------------------------------
    def _on_joint_state(self, msg: JointState) -> None:
        with self._lock:
            ok = self.controller.on_joint_state(msg.name, msg.position, msg.velocity, self._now())
        if not ok:
            self.get_logger().warning(
                f"dropped malformed joint state (names {list(msg.name)}, {len(msg.position)} positions, "
                f"NaN/inf or missing joints); dropped so far: {self.controller.dropped_joint_states}",
                throttle_duration_sec=self._throttle,
            )

    def _on_belt(self, msg: JointState) -> None:
        ok = len(msg.position) >= 1
        if ok:
            velocity = msg.velocity[0] if len(msg.velocity) >= 1 else None  # None: estimated from odometry
            with self._lock:
                ok = self.controller.on_belt(msg.position[0], velocity, self._now())
        if not ok:
            self.get_logger().warning(
                f"dropped malformed belt state {list(msg.position)} / {list(msg.velocity)}",
                throttle_duration_sec=self._throttle,
            )

    def _on_vacuum(self, msg: Bool) -> None:
        with self._lock:
            self.controller.on_vacuum(msg.data, self._now())

    def _on_goal(self, msg: Goal) -> None:
        with self._lock:
            ok = self.controller.on_goal(goal_from_msg(msg))
        if not ok:
            self.get_logger().warning(
                f"rejected goal: {self.controller.goals.last_rejection} "
                f"(rejected so far: {self.controller.goals.rejected})",
                throttle_duration_sec=self._throttle,
            )

    # ---- 50 Hz tick ------------------------------------------------------------------------
    def _tick(self) -> None:
        t0 = time.perf_counter()
        with self._lock:
            cmd = self.controller.tick(self._now())
        if cmd is not None:
            t_pub = time.perf_counter()
            self.cmd_pub.publish(Float64MultiArray(data=[float(x) for x in cmd.positions]))
            self.suction_pub.publish(Bool(data=cmd.suction))
            self._publish_s.append(time.perf_counter() - t_pub)
        self.stats.record(t0, time.perf_counter() - t0)

    # ---- diagnostics -----------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        c, s = self.controller, self.stats
        with self._lock:
            age = c.goals.age(self._now())
            values = {
                "loop_rate_hz": f"{s.rate_hz():.2f}",
                "tick_time_p50_ms": f"{s.percentile_ms(50):.3f}",
                "tick_time_p99_ms": f"{s.percentile_ms(99):.3f}",
                "ticks": str(s.ticks),
                "missed_deadlines": str(s.missed + self.loop.timing.missed),
                "scheduling": self.loop.scheduling,
                "tick_lateness_p50_ms": f"{self.loop.timing.percentile_ms('lateness', 50):.3f}",
                "tick_lateness_p99_ms": f"{self.loop.timing.percentile_ms('lateness', 99):.3f}",
                "tick_lateness_max_ms": f"{self.loop.timing.percentile_ms('lateness', 100):.3f}",  # last 60 s
                "tick_lateness_max_since_start_ms": f"{self.loop.timing.max_lateness * 1e3:.3f}",
                "publish_p99_ms": f"{np.percentile(self._publish_s, 99) * 1e3:.3f}"
                if self._publish_s
                else "nan",
                "publish_max_ms": f"{max(self._publish_s) * 1e3:.3f}"
                if self._publish_s
                else "nan",  # last 60 s
                "gc_pause_max_ms": f"{max(self._gc_pauses) * 1e3:.3f}" if self._gc_pauses else "0",
                "gc_collections": str(len(self._gc_pauses)),
                "loop_errors": str(self.loop.errors),
                "goal_age_s": "none" if age is None else f"{age:.3f}",
                "goal_plan_id": c.goals.goal.plan_id if c.goals.goal else "",
                "provider": self.session.provider,
                "model_trained": str(self.session.meta.trained).lower(),
                "rejected_goals": str(c.goals.rejected),
                "rejected_commands": str(c.limiter.rejected),
                "dropped_joint_states": str(c.dropped_joint_states),
                "policy_type": self.session.meta.policy_type,
                **c.diagnostics(),
            }
        if c.joint_pos is None:
            level, message = DiagnosticStatus.WARN, "no joint state yet: publishing nothing"
        elif c.hold_reason:
            level, message = DiagnosticStatus.WARN, f"holding: {c.hold_reason}"
        elif stall := c.stall_warning(self.params.stall_warn_plans):
            level, message = DiagnosticStatus.WARN, stall
        else:
            level, message = DiagnosticStatus.OK, "running policy"
        if not self.session.meta.trained:
            level, message = DiagnosticStatus.WARN, message + " (model UNTRAINED)"
        status = DiagnosticStatus(
            level=level,
            name=f"{self.get_name()}: System 1 policy",
            message=message,
            hardware_id=self.session.provider,
        )
        publish_diagnostics(self, self.diag_pub, status, values)


def main(args: list[str] | None = None) -> None:
    sys.exit(run_node(FastPolicyNode, args=args, single_threaded=True))


if __name__ == "__main__":
    main()
