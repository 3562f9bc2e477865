"""fast_policy node in-process: commands within limits with a goal, hold without one, malformed
joint states dropped, a stalled arm reported in diagnostics, bad model path stops the node with a
ConfigError."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

pytestmark = pytest.mark.node

rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Bool, Float64MultiArray  # noqa: E402

from fast_policy.node import FastPolicyNode  # noqa: E402
from s1s2 import topics  # noqa: E402
from s1s2.params import ConfigError  # noqa: E402
from s1s2.ros import qos_profile, sec_to_stamp  # noqa: E402
from s1s2_interfaces.msg import Goal  # noqa: E402
from tests.unit.policy_helpers import JOINTS, cell_limits, write_tiny_policy  # noqa: E402

HOME = [1.5708, 0.9, -1.6, -0.87]


class Harness:
    """The node under test + a peer node that plays sim and planner, spun in a background thread."""

    def __init__(self, ctx, model_path, **params):
        overrides = [
            Parameter("model_path", value=str(model_path)),
            Parameter("providers", Parameter.Type.STRING_ARRAY, ["CPUExecutionProvider"]),
            Parameter("warmup_runs", value=2),
            Parameter("diagnostics_period_s", value=0.2),
        ] + [Parameter(k, value=v) for k, v in params.items()]
        self.node = FastPolicyNode(context=ctx, parameter_overrides=overrides)
        self.peer = rclpy.create_node("policy_test_peer", context=ctx)
        self.commands, self.suction, self.diags = [], [], []
        self.peer.create_subscription(
            Float64MultiArray,
            topics.JOINT_COMMANDS.name,
            lambda m: self.commands.append(list(m.data)),
            qos_profile(topics.JOINT_COMMANDS.qos),
        )
        self.peer.create_subscription(
            Bool,
            topics.SUCTION_COMMAND.name,
            lambda m: self.suction.append(m.data),
            qos_profile(topics.SUCTION_COMMAND.qos),
        )
        self.peer.create_subscription(
            DiagnosticArray, topics.DIAGNOSTICS.name, self._on_diag, qos_profile(topics.DIAGNOSTICS.qos)
        )
        self.js_pub = self.peer.create_publisher(
            JointState, topics.JOINT_STATES.name, qos_profile(topics.JOINT_STATES.qos)
        )
        self.belt_pub = self.peer.create_publisher(
            JointState, topics.BELT_STATE.name, qos_profile(topics.BELT_STATE.qos)
        )
        self.vacuum_pub = self.peer.create_publisher(Bool, topics.VACUUM.name, qos_profile(topics.VACUUM.qos))
        self.goal_pub = self.peer.create_publisher(
            Goal, topics.GOAL_TOPIC.name, qos_profile(topics.GOAL_TOPIC.qos)
        )
        self.executor = MultiThreadedExecutor(num_threads=4, context=ctx)
        self.executor.add_node(self.node)
        self.executor.add_node(self.peer)
        # the node's own real-time loop drives the executor (both nodes' callbacks), as in run_node
        self.thread = threading.Thread(
            target=self.node.run, args=(self.executor, threading.Event()), daemon=True
        )
        self.thread.start()

    def _on_diag(self, msg):
        for st in msg.status:
            if st.name.startswith("fast_policy"):
                self.diags.append({kv.key: kv.value for kv in st.values} | {"_message": st.message})

    def now(self) -> float:
        return self.peer.get_clock().now().nanoseconds * 1e-9

    def joint_state(self, pos=HOME, names=JOINTS):
        msg = JointState(name=list(names), position=[float(x) for x in pos], velocity=[0.0] * len(pos))
        msg.header.stamp = self.peer.get_clock().now().to_msg()
        self.js_pub.publish(msg)
        self.belt_pub.publish(JointState(name=["belt"], position=[1.0], velocity=[0.1]))
        self.vacuum_pub.publish(Bool(data=False))

    def goal(self, latent_len=32, valid_for=5.0, plan_id="test-1"):
        g = Goal()
        g.header.stamp = sec_to_stamp(self.now(), type(g.header.stamp))
        g.header.frame_id = "belt"
        g.plan_id = plan_id
        g.target_label = "pet_bottle"
        g.target_pose.position.x, g.target_pose.position.y, g.target_pose.position.z = -1.0, -0.2, 0.32
        g.place_pose.position.x, g.place_pose.position.y, g.place_pose.position.z = -0.5, -0.95, 0.5
        g.latent = [0.1] * latent_len
        g.valid_for.sec = int(valid_for)
        self.goal_pub.publish(g)

    def run(self, seconds, pos=HOME, names=JOINTS):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.joint_state(pos, names)
            time.sleep(0.02)

    def wait_diag(self, pred, timeout=10.0, pos=HOME, names=JOINTS):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.diags and pred(self.diags[-1]):
                return self.diags[-1]
            self.joint_state(pos, names)  # keep feeding the same (possibly bad) state while waiting
            time.sleep(0.05)
        raise AssertionError(f"diagnostics never matched; last: {self.diags[-1] if self.diags else None}")

    def close(self):
        self.node.close()
        self.thread.join(timeout=5)
        self.executor.shutdown()
        self.node.destroy_node()
        self.peer.destroy_node()


@pytest.fixture
def harness(rclpy_context, tmp_path):
    h = Harness(rclpy_context, write_tiny_policy(tmp_path / "model"))
    yield h
    h.close()


def _within_limits(cmds):
    lim = cell_limits()
    a = np.asarray(cmds)
    assert a.ndim == 2 and a.shape[1] == 4
    assert np.all(a >= lim.lower - 1e-9) and np.all(a <= lim.upper + 1e-9)
    v = np.diff(a, axis=0) / 0.02  # commands are positions at the tick period
    assert np.all(np.abs(v) <= lim.max_velocity + 1e-6)


def test_goal_gives_commands_within_limits(harness):
    h = harness
    h.run(0.3)
    h.goal()
    d = h.wait_diag(lambda d: int(d["policy_ticks"]) > 20)
    h.run(0.5)
    assert d["provider"] == "CPUExecutionProvider" and d["goal_plan_id"] == "test-1"
    assert float(d["goal_age_s"]) < 5.0
    assert len(h.commands) > 20 and len(h.suction) > 20
    _within_limits(h.commands[-20:])
    assert d["model_trained"] == "false"
    assert float(d["tick_time_p99_ms"]) > 0


def test_no_goal_holds_at_current_position(harness):
    h = harness
    h.run(0.6)
    d = h.wait_diag(lambda d: int(d["holds"]) > 10)
    assert d["hold_reason"] == "no goal" and d["policy_ticks"] == "0"
    assert h.commands, "hold still publishes commands once joint states arrived"
    np.testing.assert_allclose(h.commands[-1], HOME, atol=1e-9)
    assert h.suction[-1] is False


def test_nan_joint_state_dropped_and_nothing_published(harness):
    h = harness
    nan_state = [float("nan"), 0.9, -1.6, -0.87]
    h.run(0.5, pos=nan_state)
    d = h.wait_diag(lambda d: int(d["dropped_joint_states"]) > 5, pos=nan_state)
    assert h.commands == []  # never a valid joint state: publish nothing
    h.run(0.3, names=JOINTS[:3], pos=HOME[:3])  # wrong joint count is dropped too
    assert h.commands == []
    assert int(d["ticks"]) > 0


def test_plans_pursued_without_a_grasp_turn_diagnostics_to_a_stall_warning(rclpy_context, tmp_path):
    # the cup never holds anything (vacuum False): every new plan pursued adds to the streak
    h = Harness(rclpy_context, write_tiny_policy(tmp_path / "model"), stall_warn_plans=3)
    try:
        h.run(0.2)
        for k in (1, 2):
            h.goal(plan_id=f"plan-{k}")
            d = h.wait_diag(lambda d, k=k: d["plans_pursued_since_grasp"] == str(k))
            h.run(0.3)  # many ticks on one plan still count it once
        d = h.diags[-1]
        assert d["plans_pursued_since_grasp"] == "2" and "no grasp" not in d["_message"]
        h.goal(plan_id="plan-3")
        d = h.wait_diag(lambda d: d["plans_pursued_since_grasp"] == "3")
        assert d["_message"].startswith("no grasp in the last 3 plans pursued"), d["_message"]
        assert d["plans_pursued_since_grasp_max"] == "3" and d["grasps"] == "0"
    finally:
        h.close()


def test_bad_goal_rejected_and_counted(harness):
    h = harness
    h.run(0.2)
    h.goal(latent_len=16)
    d = h.wait_diag(lambda d: d["rejected_goals"] == "1")
    assert d["hold_reason"] == "no goal"


def test_missing_model_is_config_error(rclpy_context, tmp_path):
    with pytest.raises(ConfigError, match="model_path"):
        FastPolicyNode(
            context=rclpy_context,
            parameter_overrides=[Parameter("model_path", value=str(tmp_path / "missing.onnx"))],
        )


def test_corrupt_model_is_config_error(rclpy_context, tmp_path):
    path = write_tiny_policy(tmp_path)
    path.write_bytes(b"\x00garbage")
    with pytest.raises(ConfigError, match="cannot load"):
        FastPolicyNode(
            context=rclpy_context,
            parameter_overrides=[
                Parameter("model_path", value=str(path)),
                Parameter("providers", Parameter.Type.STRING_ARRAY, ["CPUExecutionProvider"]),
            ],
        )
