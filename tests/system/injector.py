"""Outside traffic for system tests: goals, camera images and adapter swap requests published
into a running stack from a separate rclpy context, so shutdown races with real work."""

from __future__ import annotations

import threading
import time

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import Image

from s1s2 import topics
from s1s2.ros import qos_profile
from s1s2_interfaces.msg import Goal
from s1s2_interfaces.srv import SwapAdapter


class Injector:
    def __init__(self, adapters=("daylight", "night_noise", ""), rate_hz: float = 20.0):
        self._ctx = rclpy.Context()
        rclpy.init(context=self._ctx)
        self.node = Node("s1s2_injector", context=self._ctx)
        self._goal = self.node.create_publisher(
            Goal, topics.GOAL_TOPIC.name, qos_profile(topics.GOAL_TOPIC.qos)
        )
        self._img = self.node.create_publisher(
            Image, topics.CAMERA_IMAGE.name, qos_profile(topics.CAMERA_IMAGE.qos)
        )
        self._swap = self.node.create_client(SwapAdapter, topics.SWAP_ADAPTER_SERVICE)
        self._executor = SingleThreadedExecutor(context=self._ctx)
        self._executor.add_node(self.node)
        self._adapters, self._period = list(adapters), 1.0 / rate_hz
        self._stop = threading.Event()
        self.sent = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        rng = np.random.default_rng(0)
        k = 0
        while not self._stop.is_set() and self._ctx.ok():
            now = self.node.get_clock().now().to_msg()
            g = Goal(target_label="pet_bottle", bin_id="plastic", latent=[0.0] * topics.LATENT_DIM)
            g.header.stamp, g.header.frame_id, g.plan_id = now, topics.WORLD_FRAME, f"inject-{k}"
            g.target_pose.position.x, g.target_pose.position.y, g.target_pose.position.z = 0.1, -0.2, 0.32
            img = Image(height=240, width=320, encoding="rgb8", step=960,
                        data=rng.integers(0, 256, 240 * 960, dtype=np.uint8).tobytes())  # fmt: skip
            img.header.stamp = now
            self._goal.publish(g)
            self._img.publish(img)
            if k % 10 == 0 and self._swap.service_is_ready():
                self._swap.call_async(
                    SwapAdapter.Request(adapter_id=self._adapters[(k // 10) % len(self._adapters)])
                )
            self.sent += 1
            k += 1
            self._executor.spin_once(timeout_sec=self._period)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        self._executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self._ctx)


def stop_under_load(stack_yaml: str, log_dir, overrides=None, seconds: float = 4.0) -> tuple[dict, float]:
    """Start the stack, inject load at 50 Hz for `seconds`, stop it; return each node's exit code
    and how long the stop took (the stop test's cycle; scripts/stop_under_load.py repeats it)."""
    from s1s2.launcher import Launcher, load_stack

    launcher = Launcher(load_stack(stack_yaml), overrides or {}, log_dir=log_dir, echo=False)
    injector = None
    try:
        launcher.start(ready_timeout=240.0)
        injector = Injector(rate_hz=50.0)
        time.sleep(seconds)
    finally:
        t0 = time.monotonic()
        launcher.stop()
        stop_s = time.monotonic() - t0
        if injector is not None:
            injector.close()
    return {p.spec.name: p.popen.returncode for p in launcher.procs}, stop_s
