"""adapter_manager node in-process: images in -> LightingContext out; a fake SwapAdapter service is
called when the lighting changes and AdapterStatus shows the swap; malformed images are dropped."""

import json
import time

import numpy as np
import pytest
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter

from adapter_manager.configuration_classifier import LightingClassifierConfig
from adapter_manager.features import FeatureExtractor
from s1s2 import topics
from s1s2.params import ConfigError
from s1s2.ros import qos_profile
from s1s2_training.lighting.train import fit

pytestmark = pytest.mark.node

CLASSES = ["daylight", "night_noise"]


def frame(kind: str, rng: np.random.Generator, h=48, w=64) -> np.ndarray:
    img = np.full((h, w, 3), 150.0)
    img[h // 3 : 2 * h // 3] = 60.0
    if kind == "night_noise":
        img = img * 0.2 + rng.normal(0, 12, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture
def setup_files(tmp_path):
    """A toy two-domain classifier and a library with a 'daylight' and a 'night_noise' adapter."""
    rng = np.random.default_rng(0)
    xs, ys = [], []
    for k, kind in enumerate(CLASSES):
        ex = FeatureExtractor()
        for _ in range(20):
            xs.append(ex(frame(kind, rng)))
            ys.append(k)
    model = fit(np.array(xs), np.array(ys), LightingClassifierConfig(class_names=CLASSES, max_iter=300))
    clf = model.save(tmp_path / "classifier.json")
    lib = tmp_path / "adapters"
    for name in CLASSES:
        (lib / name).mkdir(parents=True)
        (lib / name / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "x", "r": 4}))
    return clf, lib


def image_msg(img: np.ndarray, encoding="rgb8"):
    from sensor_msgs.msg import Image

    msg = Image(height=img.shape[0], width=img.shape[1], encoding=encoding, step=img.shape[1] * 3)
    msg.data = img.tobytes()
    return msg


def spin_until(executor, cond, timeout=20.0, each=None):
    end = time.monotonic() + timeout
    while time.monotonic() < end and not cond():
        if each:
            each()
        executor.spin_once(timeout_sec=0.02)
    return cond()


def teardown(ex, node, probe):
    node.close()
    for n in (node, probe):
        ex.remove_node(n)
        n.destroy_node()
    ex.shutdown()


def make_node(ctx, clf, lib, **overrides):
    from adapter_manager.node import AdapterManagerNode

    params = {
        "classifier_path": str(clf),
        "adapter_library": str(lib),
        "rate_hz": 20.0,
        "status_rate_hz": 5.0,
        "ema_alpha": 0.7,
        "min_dwell_s": 0.3,
        "swap_cooldown_s": 0.0,
        "retry_backoff_s": 0.2,
    } | overrides
    return AdapterManagerNode(
        context=ctx, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()]
    )


def test_context_swap_status_and_malformed_image(rclpy_context, setup_files):
    from builtin_interfaces.msg import Time
    from sensor_msgs.msg import Image

    from s1s2_interfaces.msg import AdapterStatus, LightingContext, PlannerStatus
    from s1s2_interfaces.srv import SwapAdapter

    clf, lib = setup_files
    node = make_node(rclpy_context, clf, lib)
    probe = Node("adapter_probe", context=rclpy_context)
    got = {"ctx": [], "status": [], "calls": []}
    probe.create_subscription(
        LightingContext, topics.CONTEXT.name, got["ctx"].append, qos_profile(topics.CONTEXT.qos)
    )
    probe.create_subscription(
        AdapterStatus,
        topics.ADAPTER_STATUS.name,
        got["status"].append,
        qos_profile(topics.ADAPTER_STATUS.qos),
    )

    active = {"a": ""}

    def fake_swap(request, response):  # stands in for a planner that keeps the last two adapters
        if request.preload:
            got.setdefault("preloads", []).append(request.adapter_id)
        else:
            got["calls"].append(request.adapter_id)
            active["a"] = request.adapter_id
        response.success, response.active_adapter, response.swap_time_ms = True, active["a"], 42.0
        response.resident_adapters = [a for a in dict.fromkeys([active["a"], request.adapter_id]) if a]
        return response

    probe.create_service(
        SwapAdapter, topics.SWAP_ADAPTER_SERVICE, fake_swap, callback_group=ReentrantCallbackGroup()
    )
    pub = probe.create_publisher(Image, topics.CAMERA_IMAGE.name, qos_profile(topics.CAMERA_IMAGE.qos))
    status_pub = probe.create_publisher(
        PlannerStatus, topics.PLANNER_STATUS.name, qos_profile(topics.PLANNER_STATUS.qos)
    )
    rng = np.random.default_rng(1)
    ex = MultiThreadedExecutor(num_threads=4, context=rclpy_context)
    ex.add_node(node)
    ex.add_node(probe)
    try:
        kind = {"k": "daylight"}
        publish = lambda: pub.publish(image_msg(frame(kind["k"], rng)))  # noqa: E731
        assert spin_until(ex, lambda: got["calls"] == ["daylight"], each=publish), got["calls"]
        assert spin_until(
            ex, lambda: got["status"] and got["status"][-1].active_adapter == "daylight", each=publish
        )
        ctx = got["ctx"][-1]
        assert (
            ctx.label == "daylight" and ctx.class_names == CLASSES + ["unknown"] and len(ctx.features) == 15
        )
        assert ctx.confidence > 0.6 and abs(sum(ctx.probabilities) - 1) < 1e-4

        # Malformed images (short data, unknown encoding) are dropped; the node keeps working.
        bad = image_msg(frame("daylight", rng))
        bad.data = bad.data[:100]
        pub.publish(bad)
        assert spin_until(ex, lambda: node.frames_dropped >= 1, timeout=5)
        pub.publish(image_msg(frame("daylight", rng), encoding="32FC1"))
        assert spin_until(ex, lambda: node.frames_dropped >= 2, timeout=5)
        assert "encoding" in node.last_drop_reason

        kind["k"] = "night_noise"
        assert spin_until(ex, lambda: got["calls"] == ["daylight", "night_noise"], each=publish), got["calls"]
        assert spin_until(ex, lambda: got["status"][-1].active_adapter == "night_noise", each=publish)
        st = got["status"][-1]
        assert (st.last_swap_from, st.last_swap_to, st.swap_count) == ("daylight", "night_noise", 2)
        assert st.last_swap_latency_ms == pytest.approx(42.0)
        assert st.context_label == "night_noise" and st.library_adapters == CLASSES
        assert st.resident_adapters == ["night_noise"]  # as the SwapAdapter reply says
        assert "night_noise" in got.get("preloads", [])  # loaded while the context was trending to it
        assert got["ctx"][-1].label == "night_noise"

        # The planner's status: same process -> nothing to do; a new start time = a restarted
        # planner running its initial adapter (base): the adapter for the context is re-applied.
        status_pub.publish(PlannerStatus(started=Time(sec=100), active_adapter="night_noise",
                                         resident_adapters=["night_noise"]))  # fmt: skip
        assert spin_until(ex, lambda: node.manager.planner_started == 100.0, timeout=5)
        status_pub.publish(PlannerStatus(started=Time(sec=160), active_adapter="", resident_adapters=[]))
        assert spin_until(ex, lambda: node.manager.planner_restarts == 1, timeout=5)
        assert spin_until(ex, lambda: got["calls"][-1:] == ["night_noise"] and len(got["calls"]) == 3,
                          each=publish), got["calls"]  # fmt: skip
        assert spin_until(ex, lambda: got["status"][-1].active_adapter == "night_noise", each=publish)
    finally:
        teardown(ex, node, probe)


def test_missing_service_and_failing_service_back_off(rclpy_context, setup_files):
    """No planner: the node keeps classifying and retries with back-off instead of blocking."""
    from sensor_msgs.msg import Image

    from s1s2_interfaces.msg import LightingContext
    from s1s2_interfaces.srv import SwapAdapter

    clf, lib = setup_files
    node = make_node(rclpy_context, clf, lib, min_dwell_s=0.0)
    probe = Node("adapter_probe2", context=rclpy_context)
    ctxs = []
    probe.create_subscription(
        LightingContext, topics.CONTEXT.name, ctxs.append, qos_profile(topics.CONTEXT.qos)
    )
    pub = probe.create_publisher(Image, topics.CAMERA_IMAGE.name, qos_profile(topics.CAMERA_IMAGE.qos))
    rng = np.random.default_rng(2)
    ex = MultiThreadedExecutor(num_threads=4, context=rclpy_context)
    ex.add_node(node)
    ex.add_node(probe)
    try:
        publish = lambda: pub.publish(image_msg(frame("daylight", rng)))  # noqa: E731
        assert spin_until(ex, lambda: node.manager.total_failures >= 2, each=publish)
        st = node.manager.status()
        assert "not available" in st["last_error"] and st["swap_count"] == 0
        n = len(ctxs)
        assert spin_until(ex, lambda: len(ctxs) > n + 3, each=publish)  # still classifying

        # A planner that refuses: retried with growing gaps, its message reported.
        calls = []

        def refuse(request, response):
            calls.append(time.monotonic())
            response.success, response.message = False, f"adapter {request.adapter_id!r}: CUDA out of memory"
            response.active_adapter = ""
            return response

        probe.create_service(SwapAdapter, topics.SWAP_ADAPTER_SERVICE, refuse)
        assert spin_until(ex, lambda: len(calls) >= 3, each=publish)
        assert "out of memory" in node.manager.status()["last_error"]
        assert calls[2] - calls[1] > calls[1] - calls[0]  # exponential back-off
        assert node.manager.swap_count == 0
    finally:
        teardown(ex, node, probe)


def test_bad_classifier_path_is_config_error(rclpy_context, tmp_path, setup_files):
    _, lib = setup_files
    with pytest.raises(ConfigError, match="classifier_path"):
        make_node(rclpy_context, tmp_path / "missing.json", lib)
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text("{")
    with pytest.raises(ConfigError, match="corrupt.json"):
        make_node(rclpy_context, corrupt, lib)
    with pytest.raises(ConfigError, match="adapter map"):
        make_node(rclpy_context, setup_files[0], lib, adapter_map="nocolon")
