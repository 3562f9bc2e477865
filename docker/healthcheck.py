"""Health check of a running fast_policy container, run inside it by scripts/deploy_jetson.sh:

    docker exec s1s2-fast-policy python3 /opt/s1s2/docker/healthcheck.py --expect-provider TensorrtExecutionProvider

It listens to /diagnostics for the fast_policy status (published every `diagnostics_period_s`)
and checks the two things a log line cannot show: the 50 Hz loop really runs at rate
(`loop_rate_hz`), and the ONNX Runtime provider in use (`provider`) is the one expected.
Exit 0 = healthy; 1 = unhealthy (one line says which value); 2 = no fast_policy status heard.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping

STATUS_PREFIX = "fast_policy"  # DiagnosticStatus.name is "<node name>: System 1 policy"


def evaluate(values: Mapping[str, str], min_rate_hz: float, expect_provider: str | None) -> tuple[bool, str]:
    """Judge one fast_policy diagnostics status (its key/value pairs). Pure: no ROS."""
    try:
        rate = float(values.get("loop_rate_hz", "nan"))
    except ValueError:
        return False, f"loop_rate_hz is not a number: {values.get('loop_rate_hz')!r}"
    provider = values.get("provider", "")
    if not rate >= min_rate_hz:  # also catches NaN
        return False, f"loop rate {rate:.1f} Hz is below {min_rate_hz:.1f} Hz (provider {provider or '?'})"
    if expect_provider and provider != expect_provider:
        return False, f"provider in use is {provider or 'unknown'!r}, expected {expect_provider!r}"
    return True, f"loop rate {rate:.1f} Hz, provider {provider}"


def listen(timeout_s: float) -> dict[str, str] | None:
    """Key/values of the newest fast_policy diagnostics status heard within timeout_s."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray

    from s1s2 import topics
    from s1s2.ros import qos_profile

    rclpy.init()
    node = rclpy.create_node("s1s2_healthcheck")
    latest: dict[str, str] = {}

    def on_diag(msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith(STATUS_PREFIX):
                latest.clear()
                latest.update({kv.key: kv.value for kv in status.values})

    node.create_subscription(
        DiagnosticArray, topics.DIAGNOSTICS.name, on_diag, qos_profile(topics.DIAGNOSTICS.qos)
    )
    # Two diagnostics periods: the first status may come from before the warm-up finished.
    deadline, heard = time.monotonic() + timeout_s, 0
    try:
        while time.monotonic() < deadline and heard < 2:
            before = dict(latest)
            rclpy.spin_once(node, timeout_sec=0.2)
            if latest and latest != before:
                heard += 1
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return latest or None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--min-rate", type=float, default=45.0, help="lowest acceptable loop rate, Hz")
    ap.add_argument("--expect-provider", default="", help="e.g. TensorrtExecutionProvider; empty = any")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for diagnostics")
    args = ap.parse_args(argv)
    values = listen(args.timeout)
    if values is None:
        print(f"[health] no {STATUS_PREFIX} diagnostics on /diagnostics within {args.timeout:.0f} s")
        return 2
    ok, line = evaluate(values, args.min_rate, args.expect_provider or None)
    print(f"[health] {'OK' if ok else 'FAIL'}: {line}")
    print("[health] " + json.dumps({k: values[k] for k in sorted(values)}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
