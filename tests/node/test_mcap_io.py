"""RawMcapWriter: CDR bytes as an rclpy subscription receives them -> a rosbag2-layout MCAP that the
mcap_ros2 decoder reads back field for field."""

import pytest

pytestmark = pytest.mark.node


def test_raw_messages_round_trip(tmp_path):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image

    from s1s2 import topics
    from s1s2.mcap_io import RawMcapWriter
    from s1s2_interfaces.msg import GroundTruth, ItemState

    img = Image(height=2, width=3, encoding="rgb8", step=9, data=bytes(range(18)))
    img.header.stamp.sec = 12
    gt = GroundTruth(
        belt_position=1.25, items=[ItemState(item_id="item_00001", class_label="paper", on_belt=True)]
    )
    w = RawMcapWriter(tmp_path / "x.mcap")
    w.write(topics.CAMERA_IMAGE.name, topics.CAMERA_IMAGE.type, serialize_message(img), 12_000_000_000)
    w.write(
        topics.FRAME_GROUND_TRUTH.name, topics.FRAME_GROUND_TRUTH.type, serialize_message(gt), 12_000_000_000
    )
    w.metadata("s1s2_failures", {"kind": "test"})
    w.close()
    with open(tmp_path / "x.mcap", "rb") as f:
        msgs = {
            ch.topic: m
            for _, ch, _, m in make_reader(f, decoder_factories=[DecoderFactory()]).iter_decoded_messages()
        }
    assert (
        bytes(msgs["/camera/image_raw"].data) == bytes(range(18))
        and msgs["/camera/image_raw"].header.stamp.sec == 12
    )
    assert msgs["/sim/frame_ground_truth"].items[0].class_label == "paper"
    assert msgs["/sim/frame_ground_truth"].belt_position == 1.25
