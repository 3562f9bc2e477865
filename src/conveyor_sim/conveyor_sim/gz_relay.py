"""`conveyor_sim_gz_relay`: the small glue between the stack and the Gazebo world.

ros_gz_bridge maps topics one to one; the stack's /joint_commands (Float64MultiArray, 4 values)
must become four per-joint Gazebo commands, and the belt's track odometry must become /belt/state
(JointState "belt"). Bad commands (NaN/inf, wrong length) are dropped and counted; out-of-limit
values are clamped, as in the MuJoCo node. The belt speed comes from parameter belt_speed.
"""

from __future__ import annotations

import sys

from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64, Float64MultiArray

from conveyor_sim.commands import validate_command
from conveyor_sim.sdf import RELAY_PREFIX
from s1s2 import topics
from s1s2.cell import DEFAULT_CELL
from s1s2.params import ParamSpec
from s1s2.ros import declare_parameters, qos_profile, run_node

SPECS = [
    ParamSpec("belt_speed", 0.10, "belt speed sent to Gazebo's TrackController, m/s", min=0.0, max=1.0),
]


class GzRelayNode(Node):
    def __init__(self, **kwargs):
        super().__init__("conveyor_sim_gz_relay", **kwargs)
        self.p = declare_parameters(self, SPECS)
        arm = DEFAULT_CELL.arm
        self.names = arm.joint_names
        self.lower, self.upper = arm.lower_limits().tolist(), arm.upper_limits().tolist()
        self.counts = {"ok": 0, "clamped": 0, "rejected_length": 0, "rejected_nonfinite": 0}
        self.joint_pubs = [
            self.create_publisher(Float64, f"{RELAY_PREFIX}/{n}/cmd_pos", 10) for n in self.names
        ]
        self.belt_cmd = self.create_publisher(Float64, f"{RELAY_PREFIX}/belt_cmd_vel", 10)
        self.belt_pub = self.create_publisher(
            JointState, topics.BELT_STATE.name, qos_profile(topics.BELT_STATE.qos)
        )
        self.create_subscription(Float64MultiArray, topics.JOINT_COMMANDS.name, self._on_cmd,
                                 qos_profile(topics.JOINT_COMMANDS.qos))  # fmt: skip
        from nav_msgs.msg import Odometry  # present on full ROS installs, where Gazebo runs

        self.create_subscription(Odometry, f"{RELAY_PREFIX}/belt_odometry", self._on_odom, 10)
        self.create_timer(1.0, self._send_belt_speed)

    def _on_cmd(self, msg: Float64MultiArray) -> None:
        vals, res = validate_command(msg.data, self.lower, self.upper)
        self.counts[res] += 1
        if vals is None:
            self.get_logger().warn(f"joint command {res}: {list(msg.data)}", throttle_duration_sec=5.0)
            return
        for pub, v in zip(self.joint_pubs, vals, strict=True):
            pub.publish(Float64(data=float(v)))

    def _on_odom(self, msg) -> None:
        js = JointState(name=["belt"], position=[float(msg.pose.pose.position.x)],
                        velocity=[float(msg.twist.twist.linear.x)])  # fmt: skip
        js.header.stamp = msg.header.stamp
        self.belt_pub.publish(js)

    def _send_belt_speed(self) -> None:
        self.belt_cmd.publish(Float64(data=float(self.p["belt_speed"])))


def main(args: list[str] | None = None) -> int:
    return run_node(GzRelayNode, args=args)


if __name__ == "__main__":
    sys.exit(main())
