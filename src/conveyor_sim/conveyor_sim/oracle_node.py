"""`oracle_planner` node: an ORACLE System 2 for evaluation only. It reads the simulator's ground
truth at each camera frame (/sim/frame_ground_truth, which no stack node may use) and publishes Goals with a planner's
timing: about once a second, stamped with the snapshot's (image) time, published 0.3-0.5 s later,
with configurable pick-point noise, in the belt frame. It stands in for vlm_planner when the
learned System 1 is evaluated on its own (config/recycling_oracle.yaml); the default stack never
starts it. Thin: the plans come from conveyor_sim.oracle.OraclePlanner.
"""

from __future__ import annotations

import sys
from collections import deque
from dataclasses import dataclass

import numpy as np
from builtin_interfaces.msg import Duration as DurationMsg
from builtin_interfaces.msg import Time as TimeMsg
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import Pose
from rclpy.node import Node
from sensor_msgs.msg import JointState

from conveyor_sim.items import items_from_msg
from conveyor_sim.oracle import OraclePlan, OraclePlanner
from s1s2 import topics
from s1s2.cell import DEFAULT_CELL_PATH, CellError, load_cell
from s1s2.params import ConfigError, check_fields, param
from s1s2.ros import (
    declare_parameters,
    publish_diagnostics,
    qos_profile,
    run_node,
    sec_to_stamp,
    stamp_to_sec,
)
from s1s2_interfaces.msg import Goal, GroundTruth

NODE_NAME = "oracle_planner"
MODEL_ID = "ORACLE (simulator ground truth, evaluation only)"


@dataclass
class OraclePlannerConfig:
    rate_hz: float = param(1.0, "plans per second (a VLM planner's rate)", min=0.1, max=50.0)
    latency_min_s: float = param(
        0.3, "shortest delay from the snapshot (image) time to publishing", min=0.0, max=5.0
    )
    latency_max_s: float = param(
        0.5, "longest delay from the snapshot (image) time to publishing", min=0.0, max=5.0
    )
    pick_noise_m: float = param(
        0.015, "std of Gaussian pick-point noise per horizontal axis (m)", min=0.0, max=0.5
    )
    pick_noise_z_m: float = param(
        0.015, "std of Gaussian pick-point noise along z (m); a planner deprojecting at belt height "
        "gets the item height wrong", min=0.0, max=0.5,
    )  # fmt: skip
    valid_for_s: float = param(3.0, "Goal.valid_for", min=0.05, max=600.0)
    seed: int = param(0, "noise and latency seed", min=0, max=2**31 - 1)
    cell: str = param(DEFAULT_CELL_PATH, "cell description YAML", read_only=True, must_exist=True)

    def __post_init__(self):
        check_fields(self)
        if self.latency_max_s < self.latency_min_s:
            raise ConfigError(
                f"parameter 'latency_max_s': {self.latency_max_s!r} is below latency_min_s = {self.latency_min_s!r}"
            )


def _pose(p) -> Pose:
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(c) for c in p)
    pose.orientation.w = 1.0
    return pose


class OraclePlannerNode(Node):
    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        p = declare_parameters(self, OraclePlannerConfig)
        self.params = p
        try:
            cell = load_cell(p.cell)
        except CellError as exc:
            raise ConfigError(f"parameter 'cell': {exc}") from exc
        self.oracle = OraclePlanner(
            cell, p.pick_noise_m, p.latency_min_s, p.latency_max_s, p.seed, p.pick_noise_z_m
        )
        self._truth: GroundTruth | None = None
        self._belt_speed = cell.belt.speed
        self._pending: deque[OraclePlan] = deque()
        self._seq = 0
        self.published = 0
        self.goal_pub = self.create_publisher(
            Goal, topics.GOAL_TOPIC.name, qos_profile(topics.GOAL_TOPIC.qos)
        )
        self.diag_pub = self.create_publisher(
            DiagnosticArray, topics.DIAGNOSTICS.name, qos_profile(topics.DIAGNOSTICS.qos)
        )
        self.create_subscription(
            GroundTruth,
            topics.FRAME_GROUND_TRUTH.name,
            self._on_truth,
            qos_profile(topics.FRAME_GROUND_TRUTH.qos),
        )
        self.create_subscription(
            JointState, topics.BELT_STATE.name, self._on_belt, qos_profile(topics.BELT_STATE.qos)
        )
        self.create_timer(1.0 / p.rate_hz, self._on_plan)
        self.create_timer(0.01, self._on_publish)  # publishes each plan when its latency has passed
        self.create_timer(1.0, self._on_diagnostics)
        self.get_logger().warning(
            f"ORACLE System 2: goals from the simulator's ground truth (evaluation only), {p.rate_hz:g} Hz, "
            f"latency {p.latency_min_s:g}-{p.latency_max_s:g} s, pick noise {p.pick_noise_m * 100:g} cm (xy) / {p.pick_noise_z_m * 100:g} cm (z)"
        )

    def _on_truth(self, msg: GroundTruth) -> None:
        first = self._truth is None
        self._truth = msg
        if first:  # a (re)started System 2 plans on its first image, not one period later
            self._on_plan()

    def _on_belt(self, msg: JointState) -> None:
        if msg.velocity and np.isfinite(msg.velocity[0]):
            self._belt_speed = float(msg.velocity[0])

    def _on_plan(self) -> None:
        msg = self._truth
        if msg is None:
            return
        stamp = stamp_to_sec(msg.header.stamp)
        self._pending.append(
            self.oracle.plan(stamp, items_from_msg(msg, self._belt_speed), msg.belt_position)
        )

    def _on_publish(self) -> None:
        now = self.get_clock().now().nanoseconds * 1e-9
        while self._pending and self._pending[0].publish_at <= now:
            plan = self._pending.popleft()
            self._seq += 1
            g = Goal()
            g.header.stamp = sec_to_stamp(plan.stamp, TimeMsg)
            g.header.frame_id = topics.BELT_FRAME
            g.plan_id = f"oracle-{self._seq}"
            g.instruction = "sort the recyclables"
            g.target_label = plan.label
            g.target_pose = _pose(plan.target_belt)
            g.place_pose = _pose(plan.place_world)
            g.bin_id = plan.bin_id
            g.latent = [float(x) for x in plan.latent]
            g.confidence = 1.0 if plan.label else 0.0
            sec, nsec = divmod(int(round(self.params.valid_for_s * 1e9)), 1_000_000_000)
            g.valid_for = DurationMsg(sec=sec, nanosec=nsec)
            g.model_id = MODEL_ID
            self.goal_pub.publish(g)
            self.published += 1

    def _on_diagnostics(self) -> None:
        status = DiagnosticStatus(
            level=DiagnosticStatus.WARN, name=f"{self.get_name()}: ORACLE System 2", hardware_id="sim",
            message="ORACLE: goals from simulator ground truth (evaluation only)",
        )  # fmt: skip
        publish_diagnostics(
            self, self.diag_pub, status, {"goals_published": str(self.published), "model_id": MODEL_ID}
        )


def main(args: list[str] | None = None) -> int:
    return run_node(OraclePlannerNode, args=args, single_threaded=True)


if __name__ == "__main__":
    sys.exit(main())
