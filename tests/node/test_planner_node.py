"""vlm_planner node in-process: Goal stamped with the image's stamp, belt frame, 32-d latent;
SwapAdapter (known / unknown); malformed images dropped without a crash; wrong model path."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

pytestmark = pytest.mark.node

rclpy = pytest.importorskip("rclpy")

from builtin_interfaces.msg import Time as TimeMsg  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, JointState  # noqa: E402

from s1s2 import topics  # noqa: E402
from s1s2.params import ConfigError  # noqa: E402
from s1s2.ros import qos_profile, sec_to_stamp, stamp_to_sec  # noqa: E402
from s1s2.topics import LATENT_DIM  # noqa: E402
from s1s2_interfaces.msg import Goal  # noqa: E402
from s1s2_interfaces.srv import SwapAdapter  # noqa: E402
from vlm_planner.node import VlmPlannerNode  # noqa: E402

W, H = 320, 240
K = [200.0, 0.0, 160.0, 0.0, 200.0, 120.0, 0.0, 0.0, 1.0]


class Harness:
    def __init__(self, ctx, **params):
        overrides = [Parameter("rate_hz", value=5.0)] + [Parameter(k, value=v) for k, v in params.items()]
        self.node = VlmPlannerNode(context=ctx, parameter_overrides=overrides)
        self.peer = rclpy.create_node("planner_test_peer", context=ctx)
        self.goals: list[Goal] = []
        self.diags: list[DiagnosticArray] = []
        self.peer.create_subscription(
            Goal, topics.GOAL_TOPIC.name, self.goals.append, qos_profile(topics.GOAL_TOPIC.qos)
        )
        self.peer.create_subscription(
            DiagnosticArray, topics.DIAGNOSTICS.name, self.diags.append, qos_profile(topics.DIAGNOSTICS.qos)
        )
        self.image_pub = self.peer.create_publisher(
            Image, topics.CAMERA_IMAGE.name, qos_profile(topics.CAMERA_IMAGE.qos)
        )
        self.info_pub = self.peer.create_publisher(
            CameraInfo, topics.CAMERA_INFO.name, qos_profile(topics.CAMERA_INFO.qos)
        )
        self.belt_pub = self.peer.create_publisher(
            JointState, topics.BELT_STATE.name, qos_profile(topics.BELT_STATE.qos)
        )
        self.swap = self.peer.create_client(SwapAdapter, topics.SWAP_ADAPTER_SERVICE)
        self.executor = MultiThreadedExecutor(num_threads=4, context=ctx)
        self.executor.add_node(self.node)
        self.executor.add_node(self.peer)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def close(self):
        self.node.close()
        self.executor.shutdown()
        self.thread.join(timeout=10)
        self.node.destroy_node()
        self.peer.destroy_node()

    def publish_camera(self, stamp: float, image: np.ndarray | None = None, **override):
        info = CameraInfo(width=W, height=H, k=K)
        info.header.stamp = sec_to_stamp(stamp, TimeMsg)
        self.info_pub.publish(info)
        img = np.random.default_rng(int(stamp * 10)).integers(0, 256, (H, W, 3), dtype=np.uint8)
        img = img if image is None else image
        msg = Image(height=img.shape[0], width=img.shape[1], encoding="rgb8", step=img.shape[1] * 3)
        msg.data = img.tobytes()
        for k, v in override.items():
            setattr(msg, k, v)
        msg.header.stamp = sec_to_stamp(stamp, TimeMsg)
        msg.header.frame_id = topics.CAMERA_FRAME
        self.image_pub.publish(msg)

    def publish_belt(self, stamp: float, position: float, velocity: float = 0.1):
        js = JointState(name=["belt"], position=[position], velocity=[velocity])
        js.header.stamp = sec_to_stamp(stamp, TimeMsg)
        self.belt_pub.publish(js)

    def wait_goal(self, stamp: float, timeout: float = 30.0, republish=None) -> Goal:
        end = time.monotonic() + timeout
        next_pub = 0.0
        while time.monotonic() < end:
            for g in self.goals:
                if abs(stamp_to_sec(g.header.stamp) - stamp) < 1e-6:
                    return g
            if republish is not None and time.monotonic() > next_pub:
                republish()  # best-effort image QoS: resend until discovery has happened
                next_pub = time.monotonic() + 0.5
            time.sleep(0.05)
        raise AssertionError(f"no Goal stamped {stamp} within {timeout} s; got {len(self.goals)} goals")

    def call_swap(self, adapter_id: str, timeout: float = 30.0):
        assert self.swap.wait_for_service(timeout_sec=10.0)
        fut = self.swap.call_async(SwapAdapter.Request(adapter_id=adapter_id))
        end = time.monotonic() + timeout
        while not fut.done() and time.monotonic() < end:
            time.sleep(0.02)
        assert fut.done(), f"SwapAdapter({adapter_id!r}) did not answer in {timeout} s"
        return fut.result()


@pytest.fixture
def harness(rclpy_context):
    # single-plan plumbing: two-plan confirmation (opt-in) is tested on the Planner
    h = Harness(rclpy_context, confirm_pick_cm=0.0)
    yield h
    h.close()


def test_goal_carries_image_stamp_belt_frame_and_latent(harness):
    stamp = 1000.25
    for t, x in ((999.5, 2.0), (1000.0, 2.05), (1000.5, 2.10)):
        harness.publish_belt(t, x)

    goal = harness.wait_goal(stamp, republish=lambda: harness.publish_camera(stamp))
    assert goal.header.frame_id == "belt"
    assert len(goal.latent) == LATENT_DIM == Goal.LATENT_DIM
    assert np.all(np.isfinite(goal.latent)) and np.linalg.norm(goal.latent) == pytest.approx(1.0, abs=1e-4)
    assert goal.model_id == "models/sim_vlm" and goal.adapter_id == ""
    assert goal.instruction == "sort the recyclables"
    assert goal.valid_for.sec == 3
    # A noise image: no target, or one only above the planner's (calibrated) min_confidence.
    if goal.target_label == "":
        assert goal.confidence == 0.0 and goal.bin_id == ""
    else:
        assert goal.confidence >= harness.node.planner.min_confidence

    # Plumbing past the model: a parsed answer -> pick point in the belt frame with the odometry
    # interpolated at the image stamp (2.075 m at t = 1000.25).
    real = harness.node.planner._infer

    def fake(img, prompt):
        inf = real(img, prompt)
        inf.text, inf.confidence = "label=glass_bottle u=260 v=60", 0.999
        return inf

    harness.node.planner._infer = fake
    stamp2 = 1000.45
    goal = harness.wait_goal(stamp2, republish=lambda: harness.publish_camera(stamp2))
    assert goal.target_label == "glass_bottle" and goal.bin_id == "glass"
    assert goal.confidence == pytest.approx(0.999)
    # Camera (0, -0.45, 1.8) looking down, f = 200 px, belt plane 1.5 m below: u=260 -> x = 0.75 m.
    odo = 2.0 + 0.1 * (stamp2 - 999.5)
    assert goal.target_pose.position.x == pytest.approx(0.75 - odo, abs=1e-6)
    assert goal.target_pose.position.y == pytest.approx(0.0, abs=1e-6)
    # on the item: the belt plane (0.30 m) + the class's nominal height
    top = 0.30 + 2.0 * harness.node.planner.cell.item_class("glass_bottle").half_height()
    assert goal.target_pose.position.z == pytest.approx(top, abs=1e-6) and top > 0.30
    assert goal.place_pose.position.z > 0.25

    # Diagnostics name the adapter, quantisation and trained state (as the model card says).
    end = time.monotonic() + 5.0
    while not harness.diags and time.monotonic() < end:
        time.sleep(0.05)
    values = {kv.key: kv.value for s in harness.diags[-1].status for kv in s.values}
    trained = harness.node.planner.vlm.trained
    assert values["quantized"].startswith("yes") and values["model_trained"].startswith(
        "yes" if trained else "no"
    )
    assert float(values["inference_latency_ms_last"]) > 0
    assert int(values["plans_withheld"]) >= 0 and int(values["picks_resent"]) >= 0  # counted
    assert int(values["lighting_holds"]) >= 0


def test_swap_adapter_service_and_malformed_images(harness):
    res = harness.call_swap("sunset_disco")
    assert not res.success and "sunset_disco" in res.message and "daylight" in res.message
    assert res.active_adapter == ""
    res = harness.call_swap("overcast_dim")
    assert res.success and res.active_adapter == "overcast_dim" and res.swap_time_ms > 0

    harness.publish_belt(50.0, 0.0)
    bad = [
        dict(step=W * 3 - 1),  # wrong step
        dict(encoding="mono16"),  # wrong encoding
        dict(data=b"\x00" * 100),  # wrong length
        dict(height=0),
    ]
    end = time.monotonic() + 10.0
    while harness.node._dropped_images < len(bad) and time.monotonic() < end:
        for i, override in enumerate(bad):
            harness.publish_camera(50.0 + 0.01 * i, **override)
        time.sleep(0.3)
    assert harness.node._dropped_images >= len(bad)
    assert all(stamp_to_sec(g.header.stamp) < 50.0 for g in harness.goals)  # none planned from them
    # Still alive and planning, with the swapped adapter named in the goal.
    goal = harness.wait_goal(51.0, republish=lambda: harness.publish_camera(51.0))
    assert goal.adapter_id == "overcast_dim"
    res = harness.call_swap("")
    assert res.success and res.active_adapter == ""


def test_wrong_model_path_stops_the_node_with_a_config_error(rclpy_context):
    with pytest.raises(ConfigError, match=r"'model_id'.*models/not_here"):
        VlmPlannerNode(
            context=rclpy_context, parameter_overrides=[Parameter("model_id", value="models/not_here")]
        )
    with pytest.raises(ConfigError, match=r"rate_hz"):
        VlmPlannerNode(context=rclpy_context, parameter_overrides=[Parameter("rate_hz", value=50.0)])
