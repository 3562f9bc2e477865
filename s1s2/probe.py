"""`python -m s1s2.probe`: an outside subscriber that records when each /joint_commands message
arrives, for the benchmarks. With `--fifo PRIO` it runs at SCHED_FIFO, set BEFORE rclpy starts so
that its DDS threads inherit it: it then measures the transport, not its own scheduling (a real
arm driver runs at real-time priority too). Without it, it is an ordinary process.

    python -m s1s2.probe --seconds 30 --fifo 70 --out arrivals.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--fifo", type=int, default=0, help="SCHED_FIFO priority (0 = normal scheduling)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    scheduling = "SCHED_OTHER"
    if args.fifo:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(args.fifo))
            scheduling = f"SCHED_FIFO {args.fifo}"
        except (PermissionError, OSError) as exc:
            scheduling = f"SCHED_OTHER (FIFO refused: {exc})"
    import rclpy
    from rclpy.node import Node
    from std_msgs.msg import Float64MultiArray

    from s1s2 import topics
    from s1s2.ros import qos_profile

    rclpy.init()
    node = Node(f"s1s2_probe_{os.getpid()}")
    times: list[float] = []
    node.create_subscription(
        Float64MultiArray, topics.JOINT_COMMANDS.name, lambda _m: times.append(time.monotonic()),
        qos_profile(topics.JOINT_COMMANDS.qos),
    )  # fmt: skip
    print("ready", flush=True)  # subscribed: the caller aligns its own window with this one
    end = time.monotonic() + args.seconds
    try:
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.05)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    with open(args.out, "w") as f:
        json.dump({"scheduling": scheduling, "arrivals": times}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
