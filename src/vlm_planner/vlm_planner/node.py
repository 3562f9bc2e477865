"""`vlm_planner` node (System 2): camera image + instruction -> Goal at about 1 Hz.

Thin: converts messages and calls `vlm_planner.planner.Planner`. Threads:
  - timer (own callback group): picks the newest image and hands it to the single inference
    worker; when the worker is still busy the tick is skipped (counted), never queued;
  - inference worker (a plain thread pool of one): Planner.plan + publish the Goal;
  - SwapAdapter service (own callback group): an async handler that runs Planner.swap_adapter
    (which waits for a running inference to end: never swaps mid-inference, and may load from
    disk) on a swap worker and awaits it, so the executor is never blocked;
  - subscriptions (own callback group): store the newest image / camera info / belt odometry.

The node spins a single-threaded executor (see s1s2.ros.run_node): every callback above is short
or async, and on the 2-core box that halved the node's CPU and inference latency compared with
Jazzy's MultiThreadedExecutor (788 -> 477 ms mean inference with the whole stack running).
"""

from __future__ import annotations

import contextlib
import math
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from builtin_interfaces.msg import Duration as DurationMsg
from builtin_interfaces.msg import Time as TimeMsg
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import Pose
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.task import Future as RclpyFuture
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import String

from s1s2 import topics
from s1s2.adapters import short_repr
from s1s2.images import image_to_rgb
from s1s2.ros import declare_parameters, publish_diagnostics, qos_profile, sec_to_stamp, stamp_to_sec
from s1s2_interfaces.msg import Goal, PlannerStatus
from s1s2_interfaces.srv import SwapAdapter

from .config import PlannerNodeConfig
from .geometry import CameraModel, OdometryHistory
from .planner import Planner, PlanResult

NODE_NAME = "vlm_planner"


def _pose(p, frame_quat=(0.0, 0.0, 0.0, 1.0)) -> Pose:
    pose = Pose()
    if p is not None:
        pose.position.x, pose.position.y, pose.position.z = (float(c) for c in p)
    (pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w) = frame_quat
    return pose


class VlmPlannerNode(Node):
    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        p = declare_parameters(self, PlannerNodeConfig)
        self.params = p
        self.config = p.planner_config()

        t0 = time.perf_counter()
        self.planner = Planner(self.config, log=self.get_logger().info)
        info = self.planner.info()
        self.get_logger().info(
            f"loaded {info['architecture']} from {info['source']} in {time.perf_counter() - t0:.1f} s "
            f"(quantization={info['quantization']}, Linear4bit layers={info['linear4bit_layers']}, "
            f"footprint={info['memory_footprint_bytes'] / 1e6:.2f} MB, device={info['device']}); "
            f"adapters: {', '.join(info['library_adapters']) or 'none'}; active: {info['active_adapter'] or 'base'}; "
            f"input colour constancy: {info['input_normalisation']}"
        )
        for note in self.planner.model_notes():
            self.get_logger().warning(note)

        self._lock = threading.Lock()  # guards the latest-message slots below
        self._image: tuple[np.ndarray, float] | None = None
        self._camera: CameraModel | None = None
        self._camera_size: tuple[int, int] | None = None
        self._instruction = self.config.instruction
        self._odometry = OdometryHistory(max_extrapolation_s=p.odometry_max_extrapolation_s)
        self._last_planned_stamp: float | None = None
        self._seq = 0
        self._busy = threading.Event()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vlm_infer")
        self._swap_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vlm_swap")
        self._closed = False
        # statistics for diagnostics
        self._plans = 0
        self._latencies: deque[float] = deque(maxlen=20)
        self._plan_times: deque[float] = deque(maxlen=20)
        self._skipped = 0
        self._withheld = 0  # plans not published: an unconfirmed pick while a confirmed one stands
        self._dropped_images = 0
        self._last_image_error = ""
        self._errors = 0
        self._last_reason = ""
        self._last_swap_ms = float("nan")

        sub_group = MutuallyExclusiveCallbackGroup()
        self.create_subscription(
            Image,
            topics.CAMERA_IMAGE.name,
            self._on_image,
            qos_profile(topics.CAMERA_IMAGE.qos),
            callback_group=sub_group,
        )
        self.create_subscription(
            CameraInfo,
            topics.CAMERA_INFO.name,
            self._on_camera_info,
            qos_profile(topics.CAMERA_INFO.qos),
            callback_group=sub_group,
        )
        self.create_subscription(
            JointState,
            topics.BELT_STATE.name,
            self._on_belt,
            qos_profile(topics.BELT_STATE.qos),
            callback_group=sub_group,
        )
        self.create_subscription(
            String, topics.INSTRUCTION.name, self._on_instruction, qos_profile(topics.INSTRUCTION.qos),
            callback_group=sub_group,
        )  # fmt: skip
        self.goal_pub = self.create_publisher(
            Goal, topics.GOAL_TOPIC.name, qos_profile(topics.GOAL_TOPIC.qos)
        )
        self.diag_pub = self.create_publisher(
            DiagnosticArray, topics.DIAGNOSTICS.name, qos_profile(topics.DIAGNOSTICS.qos)
        )
        self.status_pub = self.create_publisher(
            PlannerStatus, topics.PLANNER_STATUS.name, qos_profile(topics.PLANNER_STATUS.qos)
        )
        self._started = self.get_clock().now().to_msg()  # the model is loaded: this process's start
        self.create_service(
            SwapAdapter,
            topics.SWAP_ADAPTER_SERVICE,
            self._on_swap,
            callback_group=MutuallyExclusiveCallbackGroup(),
        )
        self.create_timer(1.0 / p.rate_hz, self._on_tick, callback_group=MutuallyExclusiveCallbackGroup())
        self.create_timer(1.0, self._on_status_tick, callback_group=MutuallyExclusiveCallbackGroup())
        self._publish_status()

    # -- subscriptions -------------------------------------------------------------------------
    def _on_image(self, msg: Image):
        try:
            img = image_to_rgb(msg.encoding, msg.height, msg.width, msg.step, msg.data)
        except (ValueError, TypeError) as exc:
            self._dropped_images += 1
            self._last_image_error = str(exc)
            self.get_logger().warning(f"dropped camera image: {exc}", throttle_duration_sec=5.0)
            return
        with self._lock:
            self._image = (img, stamp_to_sec(msg.header.stamp))

    def _on_camera_info(self, msg: CameraInfo):
        size = (int(msg.width), int(msg.height))
        if (
            self._camera is not None
            and self._camera_size == size
            and np.allclose(self._camera.k.ravel(), msg.k)
        ):
            return
        try:
            cam = CameraModel.from_camera_info(
                np.asarray(msg.k), msg.width, msg.height, self.config.cell_description.camera
            )
        except ValueError as exc:
            self.get_logger().warning(f"ignored camera info: {exc}", throttle_duration_sec=5.0)
            return
        with self._lock:
            self._camera, self._camera_size = cam, size

    def _on_belt(self, msg: JointState):
        if not msg.position:
            return
        vel = msg.velocity[0] if len(msg.velocity) else None
        stamp = stamp_to_sec(msg.header.stamp)
        if stamp == 0.0:
            stamp = self.get_clock().now().nanoseconds * 1e-9
        with self._lock:
            if not self._odometry.add(stamp, float(msg.position[0]), vel):
                self.get_logger().warning("ignored non-finite belt state", throttle_duration_sec=5.0)

    def _on_instruction(self, msg: String):
        text = msg.data.strip()
        if text:
            with self._lock:
                self._instruction = text
            self.get_logger().info(f"instruction: {text!r}")

    # -- planning ------------------------------------------------------------------------------
    def _on_tick(self):
        if self._closed:
            return
        with self._lock:
            image, camera, instruction = self._image, self._camera, self._instruction
        if image is None or camera is None:
            self._last_reason = "waiting for " + ("camera image" if image is None else "camera info")
            return
        if image[1] == self._last_planned_stamp:
            return  # no new image since the last plan
        if self._busy.is_set():
            self._skipped += 1  # inference slower than the period: skip, do not queue
            return
        self._busy.set()
        self._last_planned_stamp = image[1]
        self._worker.submit(self._run_plan, image[0], image[1], instruction, camera)

    def _run_plan(self, img: np.ndarray, stamp: float, instruction: str, camera: CameraModel):
        try:
            with self._lock:
                belt = self._odometry.at(stamp)
            stopped = self.planner.lighting_holds
            result = self.planner.plan(img, instruction, stamp, belt, camera)
            if self._closed:
                return
            if self.planner.lighting_holds != stopped:  # when and why, for the operator and the traces
                self.get_logger().info(f"image at {stamp:.2f}: {result.reason}")
            if result.publish:
                self.goal_pub.publish(self._goal(result))
            else:
                self._withheld += 1
            self._plans += 1
            self._latencies.append(result.total_s)
            self._plan_times.append(time.monotonic())
            self._last_reason = result.reason
        except Exception as exc:  # a failed plan must not kill the worker; System 1 holds on timeout
            self._errors += 1
            self.get_logger().error(
                f"planning failed: {type(exc).__name__}: {exc}", throttle_duration_sec=5.0
            )
        finally:
            self._busy.clear()

    def _goal(self, r: PlanResult) -> Goal:
        self._seq += 1
        g = Goal()
        g.header.stamp = sec_to_stamp(r.stamp, TimeMsg)
        g.header.frame_id = topics.BELT_FRAME
        g.plan_id = f"{self.config.model_id.rstrip('/').split('/')[-1]}-{self._seq}"
        g.instruction = r.instruction
        g.target_label = r.target_label
        g.target_pose = _pose(r.target_belt)
        g.place_pose = _pose(r.place_world)
        g.bin_id = r.bin_id
        g.latent = [float(x) for x in r.latent]
        g.confidence = float(r.confidence)
        sec, nsec = divmod(int(round(r.valid_for_s * 1e9)), 1_000_000_000)
        g.valid_for = DurationMsg(sec=sec, nanosec=nsec)
        g.adapter_id = r.adapter_id
        g.model_id = r.model_id
        return g

    # -- adapters ------------------------------------------------------------------------------
    async def _on_swap(self, request, response):
        done = RclpyFuture()

        def work():
            try:
                done.set_result(self.planner.swap_adapter(request.adapter_id, preload=request.preload))
            except Exception as exc:  # reported to the caller, never kills the node
                done.set_exception(exc)

        self._swap_worker.submit(work)
        try:
            res = await done
        except Exception as exc:
            response.success, response.active_adapter = False, self.planner.active_adapter
            response.resident_adapters = list(self.planner.resident_adapters)
            response.message = f"swap to {short_repr(request.adapter_id)} failed: {type(exc).__name__}: {exc}"
            self.get_logger().error(response.message)
            return response
        response.success = res.success
        response.message = res.message
        response.swap_time_ms = float(res.swap_time_ms)
        response.active_adapter = res.active_adapter
        response.resident_adapters = list(self.planner.resident_adapters)
        self._publish_status()
        if res.success:
            self._last_swap_ms = res.swap_time_ms
            self.get_logger().info(res.message)
        else:
            self.get_logger().warning(f"swap refused: {res.message}")
        return response

    # -- status and diagnostics ----------------------------------------------------------------
    def _on_status_tick(self):
        self._publish_status()
        self._publish_diagnostics()

    def _publish_status(self):
        msg = PlannerStatus()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.started = self._started
        msg.model_id = self.config.model_id
        msg.model_trained = bool(self.planner.vlm.trained)
        msg.active_adapter = self.planner.active_adapter
        msg.resident_adapters = list(self.planner.resident_adapters)
        msg.library_adapters = list(self.planner.library_adapters)
        msg.plans = self._plans
        self.status_pub.publish(msg)

    def _publish_diagnostics(self):
        lat = list(self._latencies)
        times = list(self._plan_times)
        rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
        info = self.planner.vlm
        status = DiagnosticStatus(name=f"{self.get_name()}: planner", hardware_id=info.device)
        if self._errors:
            status.level, status.message = DiagnosticStatus.WARN, f"{self._errors} planning errors"
        elif not lat:
            status.level, status.message = DiagnosticStatus.WARN, self._last_reason or "no plan yet"
        else:
            status.level, status.message = DiagnosticStatus.OK, self._last_reason or "target found"
        values = {
            "inference_latency_ms_last": f"{lat[-1] * 1e3:.1f}" if lat else "nan",
            "inference_latency_ms_mean": f"{np.mean(lat) * 1e3:.1f}" if lat else "nan",
            "plan_rate_hz": f"{rate:.2f}",
            "skipped_ticks": str(self._skipped),
            "plans": str(self._plans),
            "plans_withheld": str(self._withheld),
            "picks_resent": str(self.planner.picks_resent),
            "lighting_holds": str(self.planner.lighting_holds),
            "plans_waited_for_swap": str(self.planner.plans_waited_for_swap),
            "swap_wait_ms_max": f"{self.planner.swap_wait_ms_max:.1f}",
            "dropped_images": str(self._dropped_images),
            "last_image_error": self._last_image_error,
            "active_adapter": self.planner.active_adapter,
            "resident_adapters": ",".join(self.planner.resident_adapters),
            "last_swap_ms": f"{self._last_swap_ms:.1f}" if math.isfinite(self._last_swap_ms) else "nan",
            "model_id": self.config.model_id,
            "quantized": "yes (nf4, double quant)" if info.quantized else "no",
            "memory_footprint_mb": f"{info.footprint_bytes / 1e6:.2f}",
            "model_trained": {True: "yes", False: "no (UNTRAINED)", None: "unknown"}[info.trained],
        }
        publish_diagnostics(self, self.diag_pub, status, values)

    def close(self):
        """Stop the inference worker (run_node calls this on shutdown)."""
        self._closed = True
        with contextlib.suppress(Exception):
            self._worker.shutdown(wait=True, cancel_futures=True)
            self._swap_worker.shutdown(wait=True, cancel_futures=True)


def main(args=None) -> int:
    from s1s2.ros import run_node

    return run_node(VlmPlannerNode, args=args, single_threaded=True)


if __name__ == "__main__":
    sys.exit(main())
