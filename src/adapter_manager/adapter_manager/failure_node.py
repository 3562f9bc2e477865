"""`failure_recorder` node: records the day's failures to MCAP for `s1s2 nightly` (thin: the
choice of frames is adapter_manager.failures.FailureSelector).

Per failure it writes the camera image the planner saw, the goal it made from it, the lighting
context at that moment and, in the simulator, the ground truth of that frame
(/sim/frame_ground_truth: the labels; in a plant an operator labels the frames instead), plus a
`/s1s2/failure` record (std_msgs/String, JSON: kind, stamp, detail). Files rotate every
`rotate_s` into `output_dir/<date>-<time>.mcap`.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from rclpy.node import Node
from rclpy.serialization import serialize_message
from sensor_msgs.msg import Image
from std_msgs.msg import String

from adapter_manager.failures import FailureRecorderConfig, FailureSelector
from s1s2 import resolve_path, topics
from s1s2.mcap_io import RawMcapWriter
from s1s2.ros import declare_parameters, qos_profile, run_node, stamp_to_sec
from s1s2_interfaces.msg import Goal, GroundTruth, LightingContext, SortEvent

NODE_NAME = "failure_recorder"
FAILURE_TOPIC = "/s1s2/failure"


class FailureRecorderNode(Node):
    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        p = declare_parameters(self, FailureRecorderConfig)
        self.params = p
        self.selector = FailureSelector(p)
        self.out_dir = resolve_path(p.output_dir)
        self._writer: RawMcapWriter | None = None
        self._opened = 0.0
        self._context: bytes | None = None
        self._truth: dict[float, bytes] = {}
        self.written = 0
        qos = qos_profile
        self.create_subscription(
            Image, topics.CAMERA_IMAGE.name, self._on_image, qos(topics.CAMERA_IMAGE.qos)
        )
        self.create_subscription(GroundTruth, topics.FRAME_GROUND_TRUTH.name, self._on_truth,
                                 qos(topics.FRAME_GROUND_TRUTH.qos))  # fmt: skip
        self.create_subscription(Goal, topics.GOAL_TOPIC.name, self._on_goal, qos(topics.GOAL_TOPIC.qos))
        self.create_subscription(
            SortEvent, topics.SORT_EVENTS.name, self._on_sort, qos(topics.SORT_EVENTS.qos)
        )
        self.create_subscription(
            LightingContext, topics.CONTEXT.name, self._on_context, qos(topics.CONTEXT.qos)
        )
        self.get_logger().info(
            f"recording failures (plans below confidence {p.min_confidence:g}, wrong/missed/dropped sorts) "
            f"to {self.out_dir}"
        )

    # -- inputs -------------------------------------------------------------------------------
    def _on_image(self, msg: Image) -> None:
        self.selector.add_frame(stamp_to_sec(msg.header.stamp), {"image": serialize_message(msg)})

    def _on_truth(self, msg: GroundTruth) -> None:
        s = stamp_to_sec(msg.header.stamp)
        self._truth[s] = serialize_message(msg)
        for old in [k for k in self._truth if k < s - self.params.buffer_s]:
            del self._truth[old]

    def _on_context(self, msg: LightingContext) -> None:
        self._context = serialize_message(msg)

    def _on_goal(self, msg: Goal) -> None:
        detail = {"plan_id": msg.plan_id, "target_label": msg.target_label, "adapter_id": msg.adapter_id}
        self._write(self.selector.on_goal(stamp_to_sec(msg.header.stamp), float(msg.confidence),
                                          serialize_message(msg), detail))  # fmt: skip

    def _on_sort(self, msg: SortEvent) -> None:
        detail = {"item_id": msg.item_id, "class_label": msg.class_label, "bin_id": msg.bin_id,
                  "lighting_domain": msg.lighting_domain}  # fmt: skip
        self._write(self.selector.on_sort_event(stamp_to_sec(msg.header.stamp), msg.outcome, detail))

    # -- output -------------------------------------------------------------------------------
    def _writer_now(self) -> RawMcapWriter:
        now = time.monotonic()
        if self._writer is not None and now - self._opened > self.params.rotate_s:
            self._writer.close()
            self._writer = None
        if self._writer is None:
            self._writer = RawMcapWriter(self.out_dir / time.strftime("%Y%m%d-%H%M%S.mcap"))
            self._opened = now
        return self._writer

    def _write(self, failures) -> None:
        for f in failures:
            w = self._writer_now()
            t = int(round(f.frame.stamp * 1e9))
            w.write(topics.CAMERA_IMAGE.name, topics.CAMERA_IMAGE.type, f.frame.payload["image"], t)
            truth = self._truth.get(f.frame.stamp)
            if truth is not None:
                w.write(topics.FRAME_GROUND_TRUTH.name, topics.FRAME_GROUND_TRUTH.type, truth, t)
            if f.frame.goal is not None:
                w.write(topics.GOAL_TOPIC.name, topics.GOAL_TOPIC.type, f.frame.goal, t)
            if self._context is not None:
                w.write(topics.CONTEXT.name, topics.CONTEXT.type, self._context, t)
            record = {
                "kind": f.kind,
                "stamp": f.frame.stamp,
                "detail": f.detail,
                "labelled": truth is not None,
            }
            w.write(
                FAILURE_TOPIC, "std_msgs/msg/String", serialize_message(String(data=json.dumps(record))), t
            )
            self.written += 1
        if failures:
            self.get_logger().info(
                f"recorded {len(failures)} {failures[0].kind} frame(s); today: {self.selector.counts}",
                throttle_duration_sec=10.0,
            )

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def read_failures(paths, warn=print) -> list[dict]:
    """The records of failure MCAP files: [{kind, stamp, detail, image (HxWx3 uint8), truth
    (GroundTruth or None), goal, context}], in file order. Read as a stream, so a file whose
    recorder was killed (no footer) still gives every record up to its last complete chunk;
    `warn` says which file ended early."""
    import numpy as np
    from mcap.reader import NonSeekingReader
    from mcap_ros2.decoder import DecoderFactory

    out = []
    for path in sorted(Path(p) for p in paths):
        frame: dict = {}
        n0 = len(out)
        with open(path, "rb") as fh:
            reader = NonSeekingReader(fh, decoder_factories=[DecoderFactory()])
            try:
                for _, ch, _msg, m in reader.iter_decoded_messages(log_time_order=False):  # as written
                    if ch.topic == topics.CAMERA_IMAGE.name:
                        frame = {"image": np.frombuffer(bytes(m.data), np.uint8).reshape(m.height, m.width, 3).copy(),
                                 "truth": None, "goal": None, "context": None}  # fmt: skip
                    elif ch.topic == topics.FRAME_GROUND_TRUTH.name:
                        frame["truth"] = m
                    elif ch.topic == topics.GOAL_TOPIC.name:
                        frame["goal"] = m
                    elif ch.topic == topics.CONTEXT.name:
                        frame["context"] = m
                    elif ch.topic == FAILURE_TOPIC:
                        out.append(frame | json.loads(m.data))
                        frame = {}
            except Exception as exc:  # noqa: BLE001 - a truncated file (recorder killed): keep what was read
                warn(
                    f"{path}: ends early ({type(exc).__name__}: {exc}); kept its first {len(out) - n0} records"
                )
    return out


def main(args: list[str] | None = None) -> int:
    return run_node(FailureRecorderNode, args=args, single_threaded=True)


if __name__ == "__main__":
    sys.exit(main())
