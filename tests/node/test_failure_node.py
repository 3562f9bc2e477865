"""failure_recorder in-process: a low-confidence plan and a missed item become MCAP records with
the frame, its ground truth, the goal and the context, which read_failures gives back."""

import time

import numpy as np
import pytest
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter

from s1s2 import topics
from s1s2.ros import qos_profile, sec_to_stamp

pytestmark = pytest.mark.node


def test_failures_are_recorded_and_read_back(rclpy_context, tmp_path):
    from builtin_interfaces.msg import Time
    from sensor_msgs.msg import Image

    from adapter_manager.failure_node import FailureRecorderNode, read_failures
    from s1s2_interfaces.msg import Goal, GroundTruth, ItemState, LightingContext, SortEvent

    node = FailureRecorderNode(
        context=rclpy_context, parameter_overrides=[Parameter("output_dir", value=str(tmp_path))]
    )
    peer = Node("failure_peer", context=rclpy_context)
    pubs = {
        t.name: peer.create_publisher(cls, t.name, qos_profile(t.qos))
        for t, cls in ((topics.CAMERA_IMAGE, Image), (topics.FRAME_GROUND_TRUTH, GroundTruth),
                       (topics.GOAL_TOPIC, Goal), (topics.SORT_EVENTS, SortEvent), (topics.CONTEXT, LightingContext))
    }  # fmt: skip
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(node)
    ex.add_node(peer)

    def spin(seconds=0.3):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ex.spin_once(timeout_sec=0.02)

    try:
        pubs[topics.CONTEXT.name].publish(LightingContext(label="unknown", confidence=0.2))
        spin()
        for k in range(10):
            t = 50.0 + 0.1 * k
            img = Image(height=4, width=5, encoding="rgb8", step=15, data=bytes([k] * 60))
            img.header.stamp = sec_to_stamp(t, Time)
            pubs[topics.CAMERA_IMAGE.name].publish(img)
            gt = GroundTruth(
                belt_position=t, items=[ItemState(item_id=f"item_{k}", class_label="paper", on_belt=True)]
            )
            gt.header.stamp = img.header.stamp
            pubs[topics.FRAME_GROUND_TRUTH.name].publish(gt)
            spin(0.05)
        goal = Goal(target_label="paper", confidence=0.1, plan_id="p-1", latent=[0.0] * 32)
        goal.header.stamp = sec_to_stamp(50.3, Time)
        pubs[topics.GOAL_TOPIC.name].publish(goal)
        ev = SortEvent(item_id="item_9", class_label="paper", outcome=2)
        ev.header.stamp = sec_to_stamp(51.0, Time)
        pubs[topics.SORT_EVENTS.name].publish(ev)
        spin(1.0)
    finally:
        node.close()
        ex.shutdown()
        node.destroy_node()
        peer.destroy_node()
    files = list(tmp_path.glob("*.mcap"))
    records = read_failures(files)
    kinds = [r["kind"] for r in records]
    assert kinds[0] == "low_confidence_plan" and kinds.count("missed") == 3, kinds
    first = records[0]
    assert (
        first["stamp"] == pytest.approx(50.3)
        and first["image"].shape == (4, 5, 3)
        and np.all(first["image"] == 3)
    )
    assert first["truth"].items[0].item_id == "item_3" and first["goal"].plan_id == "p-1"
    assert first["context"].label == "unknown" and first["labelled"] is True
