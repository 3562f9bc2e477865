"""adapter_manager node (thin): camera image -> lighting context -> planner adapter swaps.

Subscribes CAMERA_IMAGE; a timer classifies only the newest frame at `rate_hz` and publishes
CONTEXT; on a context change the manager core decides on a swap, which goes to the planner's
SwapAdapter service asynchronously (call_async + done callback, own callback group, timeout);
ADAPTER_STATUS and DIAGNOSTICS go out at `status_rate_hz`. All decisions live in
`adapter_manager.manager`; this file only converts messages.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, fields
from functools import partial

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import Image

from adapter_manager.classifier import UNKNOWN, ClassifierFileError, LightingClassifier
from adapter_manager.features import FEATURE_NAMES, FeatureExtractor
from adapter_manager.manager import AdapterManager, ManagerConfig, SwapRequest
from s1s2 import resolve_path
from s1s2.adapters import list_adapters
from s1s2.images import image_to_rgb
from s1s2.params import ConfigError, param
from s1s2.ros import declare_parameters, publish_diagnostics, qos_profile, sec_to_stamp, stamp_to_sec
from s1s2.topics import (
    ADAPTER_STATUS,
    CAMERA_IMAGE,
    CONTEXT,
    DIAGNOSTICS,
    PLANNER_STATUS,
    SWAP_ADAPTER_SERVICE,
)
from s1s2_interfaces.msg import AdapterStatus, LightingContext, PlannerStatus
from s1s2_interfaces.srv import SwapAdapter

NODE_NAME = "adapter_manager"


@dataclass
class AdapterManagerConfig(ManagerConfig):
    """The manager's decision settings plus the node's own."""

    classifier_path: str = param(
        "models/lighting/classifier.json", "lighting classifier JSON (relative paths from the repo root)",
        read_only=True, must_exist=True,
    )  # fmt: skip
    adapter_library: str = param(
        "models/adapters", "folder of peft adapters, one sub-folder with adapter_config.json per adapter",
        read_only=True,
    )  # fmt: skip
    rate_hz: float = param(2.0, "classification rate; only the newest frame is classified", min=0.1, max=30.0)
    status_rate_hz: float = param(1.0, "AdapterStatus and diagnostics rate", min=0.1, max=10.0)
    stale_image_s: float = param(
        3.0, "diagnostics warn when no image arrived for this long", min=0.1, max=600.0
    )

    def manager_config(self) -> ManagerConfig:
        return ManagerConfig(**{f.name: getattr(self, f.name) for f in fields(ManagerConfig) if f.init})


class AdapterManagerNode(Node):
    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        p = declare_parameters(self, AdapterManagerConfig)
        self.params = p
        try:
            self.classifier = LightingClassifier.load(resolve_path(p.classifier_path))
        except ClassifierFileError as exc:
            raise ConfigError(f"parameter 'classifier_path': {exc}") from exc
        cfg = p.manager_config()
        self.library_dir = resolve_path(p.adapter_library)
        self.stale_image_s = p.stale_image_s
        # The manager's contexts: the trained domains plus UNKNOWN (lighting far from all of them).
        self.contexts = list(self.classifier.class_names) + [UNKNOWN]
        self.manager = AdapterManager(self.contexts, cfg, list_adapters(self.library_dir))
        self.extractor = FeatureExtractor(self.classifier.config.feature_params)
        if not self.classifier.trained:
            self.get_logger().warning(
                f"lighting classifier {p.classifier_path} is UNTRAINED (uniform output)"
            )
        if not self.library_dir.is_dir():
            self.get_logger().warning(f"adapter library {self.library_dir} does not exist: base model only")

        self._frame_lock = threading.Lock()
        self._latest: Image | None = None
        self._last_frame_t: float | None = None
        self._futures: dict[int, object] = {}
        self.frames_received = 0
        self.frames_classified = 0
        self.frames_dropped = 0
        self.preloads = 0
        self.last_drop_reason = ""

        self._sub = self.create_subscription(
            Image, CAMERA_IMAGE.name, self._on_image, qos_profile(CAMERA_IMAGE.qos),
            callback_group=MutuallyExclusiveCallbackGroup(),
        )  # fmt: skip
        self._ctx_pub = self.create_publisher(LightingContext, CONTEXT.name, qos_profile(CONTEXT.qos))
        self._status_pub = self.create_publisher(
            AdapterStatus, ADAPTER_STATUS.name, qos_profile(ADAPTER_STATUS.qos)
        )
        self._diag_pub = self.create_publisher(
            DiagnosticArray, DIAGNOSTICS.name, qos_profile(DIAGNOSTICS.qos)
        )
        # The planner's latched status: its active and resident adapters, and when it (re)started.
        self._planner_sub = self.create_subscription(
            PlannerStatus, PLANNER_STATUS.name, self._on_planner_status, qos_profile(PLANNER_STATUS.qos),
            callback_group=MutuallyExclusiveCallbackGroup(),
        )  # fmt: skip
        self._waiting_for_service = False
        # The service client gets its own group so replies are handled while the timers run.
        self._client = self.create_client(
            SwapAdapter, SWAP_ADAPTER_SERVICE, callback_group=MutuallyExclusiveCallbackGroup()
        )
        self._classify_timer = self.create_timer(
            1.0 / p.rate_hz, self._on_classify_tick, callback_group=MutuallyExclusiveCallbackGroup()
        )
        self._status_timer = self.create_timer(
            1.0 / p.status_rate_hz, self._on_status_tick, callback_group=MutuallyExclusiveCallbackGroup()
        )
        self.get_logger().info(
            f"classifier {p.classifier_path} ({len(self.classifier.class_names)} domains, "
            f"trained={self.classifier.trained}); library {self.library_dir}: {self.manager.library or 'empty'}"
        )

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # -- camera -------------------------------------------------------------------------------

    def _on_image(self, msg: Image) -> None:
        with self._frame_lock:
            self._latest = msg  # only the newest frame is ever classified
            self.frames_received += 1
            self._last_frame_t = self._now()

    def _on_classify_tick(self) -> None:
        with self._frame_lock:
            msg, self._latest = self._latest, None
        t = self._now()
        if msg is not None:
            self._classify(msg, t)
        self._poll_swaps(t)

    def _classify(self, msg: Image, t: float) -> None:
        try:
            rgb = image_to_rgb(msg.encoding, msg.height, msg.width, msg.step, msg.data)
            feats = self.extractor(rgb)
        except (ValueError, TypeError) as exc:
            self.frames_dropped += 1
            self.last_drop_reason = str(exc)
            self.get_logger().warning(f"dropped camera image: {exc}", throttle_duration_sec=5.0)
            return
        pred = self.classifier.predict(feats)
        if pred.n_imputed:
            self.get_logger().warning(
                f"{pred.n_imputed} non-finite lighting feature(s) imputed", throttle_duration_sec=5.0
            )
        if self.manager.update(t, self._context_probabilities(pred)):
            want = self.manager.desired_adapter()
            self.get_logger().info(f"lighting context -> {self.manager.context_label!r} (adapter {want!r})")
        self.frames_classified += 1
        label, conf, probs = self.manager.smoothed_prediction()
        ctx = LightingContext()
        ctx.header.stamp = msg.header.stamp
        ctx.header.frame_id = msg.header.frame_id
        # The label is the hysteresis context (what drives the adapter); before one is established,
        # the smoothed argmax. Probabilities are the smoothed ones.
        ctx.label = self.manager.context_label or label
        ctx.confidence = float(probs[self.contexts.index(ctx.label)])
        ctx.class_names = list(self.contexts)
        ctx.probabilities = [float(x) for x in probs]
        ctx.feature_names = list(FEATURE_NAMES)
        ctx.features = [float(x) for x in feats]
        self._ctx_pub.publish(ctx)

    @staticmethod
    def _context_probabilities(pred) -> np.ndarray:
        """Known domains + UNKNOWN: an unknown frame puts 0.9 on UNKNOWN (the rest keeps the
        nearest domain visible for the 'nearest' fallback), a known one 0 on it."""
        p = np.asarray(pred.probabilities, dtype=np.float64)
        if pred.known:
            return np.append(p, 0.0)
        return np.append(0.1 * p, 0.9)

    # -- swaps --------------------------------------------------------------------------------

    def _poll_swaps(self, t: float) -> None:
        timed_out = self.manager.check_timeout(t)
        if timed_out is not None:
            fut = self._futures.pop(timed_out.request_id, None)
            if fut is not None:
                self._client.remove_pending_request(fut)
                fut.cancel()
            self.get_logger().warning(self.manager.last_error)
        if self._waiting_for_service and self._client.service_is_ready():
            self._waiting_for_service = False
            self.manager.clear_backoff()  # the planner just came up: no need to wait out the back-off
        req = self.manager.next_swap(t)
        if req is None:
            self._maybe_preload()
            return
        if not self._client.service_is_ready():
            self._waiting_for_service = True
            self.manager.on_swap_result(
                req.request_id, t, False, None, message=f"service {SWAP_ADAPTER_SERVICE} not available"
            )
            self.get_logger().warning(
                f"cannot swap to {req.adapter_id!r}: {SWAP_ADAPTER_SERVICE} not available; retrying in "
                f"{self.manager.backoff_s(self.manager.failures):.1f} s",
                throttle_duration_sec=10.0,
            )
            return
        self.get_logger().info(f"requesting adapter swap {req.from_adapter!r} -> {req.adapter_id!r}")
        fut = self._client.call_async(SwapAdapter.Request(adapter_id=req.adapter_id))
        self._futures[req.request_id] = fut
        fut.add_done_callback(partial(self._on_swap_done, req))

    def _maybe_preload(self) -> None:
        if self.manager.in_flight is not None or not self._client.service_is_ready():
            return
        adapter = self.manager.next_preload()
        if adapter is None:
            return
        self.get_logger().info(f"context trending towards {adapter!r}: preloading it")
        fut = self._client.call_async(SwapAdapter.Request(adapter_id=adapter, preload=True))
        fut.add_done_callback(self._on_preload_done)

    def _on_preload_done(self, fut) -> None:
        if fut.cancelled() or fut.exception() is not None:
            return
        res = fut.result()
        self.preloads += 1
        self.manager.set_resident(list(res.resident_adapters))
        if not res.success:
            self.get_logger().warning(f"preload refused: {res.message}")

    def _on_swap_done(self, req: SwapRequest, fut) -> None:
        self._futures.pop(req.request_id, None)
        if fut.cancelled():
            return
        t = self._now()
        try:
            res = fut.result()
        except Exception as exc:  # the service raised or the transport failed: a failed swap
            self.manager.on_swap_result(req.request_id, t, False, None, message=f"swap call failed: {exc!r}")
            return
        accepted = self.manager.on_swap_result(
            req.request_id, t, bool(res.success), res.active_adapter, float(res.swap_time_ms), res.message
        )
        if not accepted:
            return
        self.manager.set_resident(list(res.resident_adapters))
        if res.success:
            self.get_logger().info(f"adapter {res.active_adapter!r} active ({res.swap_time_ms:.1f} ms)")
        else:
            self.get_logger().warning(
                f"swap to {req.adapter_id!r} failed: {res.message}; retrying in "
                f"{self.manager.backoff_s(self.manager.failures):.1f} s"
            )
        self._publish_status()

    def _on_planner_status(self, msg: PlannerStatus) -> None:
        started = stamp_to_sec(msg.started)
        adopted = self.manager.adopted_context
        restarted = self.manager.on_planner_status(started, msg.active_adapter, list(msg.resident_adapters))
        if self.manager.adopted_context and not adopted:
            self.get_logger().info(
                f"the planner runs {msg.active_adapter!r}: starting from its context "
                f"{self.manager.adopted_context!r} (leaving it takes the usual dwell)"
            )
        if restarted:
            want = self.manager.desired_adapter()
            self.get_logger().warning(
                f"planner restarted (started {started:.3f}, running {msg.active_adapter or 'the base model'!r}): "
                f"re-applying {want!r} for context {self.manager.context_label!r}"
                if want is not None
                else f"planner restarted (started {started:.3f}); no context yet"
            )

    # -- status -------------------------------------------------------------------------------

    def _on_status_tick(self) -> None:
        self.manager.set_library(list_adapters(self.library_dir))
        self._publish_status()
        self._publish_diagnostics()

    def _publish_status(self) -> None:
        st = self.manager.status()
        msg = AdapterStatus()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.active_adapter = st["active_adapter"]
        msg.context_label = st["context_label"]
        msg.resident_adapters = st["resident_adapters"]
        msg.library_adapters = st["library_adapters"]
        msg.last_swap_from = st["last_swap_from"]
        msg.last_swap_to = st["last_swap_to"]
        if st["last_swap_stamp"] is not None:
            msg.last_swap_stamp = sec_to_stamp(st["last_swap_stamp"], Time)
        latency = st["last_swap_latency_ms"]
        msg.last_swap_latency_ms = float(latency) if latency == latency else 0.0  # NaN: not reported
        msg.swap_count = st["swap_count"]
        msg.context_note = st["context_note"]
        self._status_pub.publish(msg)

    def _publish_diagnostics(self) -> None:
        st = self.manager.status()
        now = self._now()
        with self._frame_lock:
            last = self._last_frame_t
        problems = []
        if last is None or now - last > self.stale_image_s:
            problems.append(f"no camera image for > {self.stale_image_s:g} s")
        if st["consecutive_failures"]:
            problems.append(f"{st['consecutive_failures']} failed swap(s): {st['last_error']}")
        if not self.classifier.trained:
            problems.append("lighting classifier is untrained")
        problems += st["warnings"]
        status = DiagnosticStatus(
            level=DiagnosticStatus.WARN if problems else DiagnosticStatus.OK,
            name=f"{self.get_name()}: lighting context / adapter",
            hardware_id="camera",
            message="; ".join(problems) if problems else "ok",
        )
        values = {
            "context": st["context_label"],
            "active_adapter": st["active_adapter"] if st["active_known"] else "(unknown)",
            "desired_adapter": str(st["desired_adapter"]),
            "swap_in_flight": str(st["in_flight"]),
            "swap_count": str(st["swap_count"]),
            "swap_failures_total": str(st["total_failures"]),
            "frames_received": str(self.frames_received),
            "frames_classified": str(self.frames_classified),
            "frames_dropped": str(self.frames_dropped),
            "last_drop_reason": self.last_drop_reason,
            "rejected_probabilities": str(self.manager.rejected_updates),
            "planner_restarts_seen": str(st["planner_restarts"]),
            "preloads": str(self.preloads),
            "context_note": st["context_note"],
        }
        publish_diagnostics(self, self._diag_pub, status, values)

    def close(self) -> None:
        for fut in list(self._futures.values()):
            self._client.remove_pending_request(fut)
            fut.cancel()
        self._futures.clear()


def main(args: list[str] | None = None) -> int:
    from s1s2.ros import run_node

    return run_node(AdapterManagerNode, args=args)


if __name__ == "__main__":
    sys.exit(main())
