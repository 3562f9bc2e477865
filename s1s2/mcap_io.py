"""MCAP files in rosbag2's layout (profile "ros2", CDR messages, schemas = full ROS 2 message
definitions): the message definitions, read from the installed .msg files, and a writer for
messages that are already CDR-serialised (rclpy subscriptions with raw=True), so a node can record
what it receives without decoding it. `ros2 bag info/play` and any mcap + mcap_ros2 reader read them.
"""

from __future__ import annotations

import os
import re
import sys
from functools import cache
from pathlib import Path

from s1s2 import repo_root

PRIMITIVES = {
    "bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16",
    "int32", "uint32", "int64", "uint64", "string", "wstring",
}  # fmt: skip


def _search_dirs() -> list[Path]:
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    prefixes += [
        sys.prefix,
        str(repo_root() / ".venv"),
        str(repo_root() / "ros2_ws" / "install" / "s1s2_interfaces"),
    ]
    dirs = [Path(p) / "share" for p in prefixes]
    dirs.append(repo_root() / "src")  # s1s2_interfaces sources
    return dirs


def _msg_file(pkg: str, name: str) -> Path:
    for d in _search_dirs():
        p = d / pkg / "msg" / f"{name}.msg"
        if p.is_file():
            return p
    raise FileNotFoundError(
        f"message definition {pkg}/msg/{name}.msg not found under: {', '.join(str(d) for d in _search_dirs())}"
    )


def _deps(pkg: str, text: str) -> list[str]:
    """Non-primitive field types used by a .msg text, as "pkg/Type"."""
    out = []
    for raw in text.splitlines():
        toks = raw.split("#", 1)[0].split()
        if len(toks) < 2 or "=" in toks[1] or (len(toks) > 2 and toks[2].startswith("=")):
            continue  # blank, or a constant
        base = re.sub(r"<=\d+$", "", re.sub(r"\[.*\]$", "", toks[0]))
        if base in PRIMITIVES:
            continue
        full = base if "/" in base else f"{pkg}/{base}"
        out.append(full.replace("/msg/", "/"))
    return out


@cache
def message_definition(type_name: str) -> str:
    """Concatenated definition of e.g. "sensor_msgs/msg/Image" and every type it uses (rosbag2 style)."""
    pkg, _, name = type_name.replace("/msg/", "/").partition("/")
    main = _msg_file(pkg, name).read_text()
    parts = [main.rstrip("\n")]
    seen: set[str] = set()
    queue = _deps(pkg, main)
    while queue:
        dep = queue.pop(0)
        if dep in seen:
            continue
        seen.add(dep)
        dpkg, _, dname = dep.partition("/")
        text = _msg_file(dpkg, dname).read_text()
        parts.append("=" * 80 + f"\nMSG: {dep}\n" + text.rstrip("\n"))
        queue.extend(_deps(dpkg, text))
    return "\n".join(parts) + "\n"


class RawMcapWriter:
    """Append CDR-serialised ROS 2 messages to one MCAP file (schemas registered on first use)."""

    def __init__(self, path: str | Path):
        from mcap.writer import Writer

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self._w = Writer(self._f)
        self._w.start(profile="ros2", library="s1s2")
        self._schemas: dict[str, int] = {}
        self._channels: dict[str, int] = {}
        self.messages = 0

    def write(self, topic: str, type_name: str, data: bytes, t_ns: int) -> None:
        if type_name not in self._schemas:
            self._schemas[type_name] = self._w.register_schema(
                name=type_name, encoding="ros2msg", data=message_definition(type_name).encode()
            )
        if topic not in self._channels:
            self._channels[topic] = self._w.register_channel(
                topic=topic, message_encoding="cdr", schema_id=self._schemas[type_name]
            )
        self._w.add_message(self._channels[topic], log_time=t_ns, data=bytes(data), publish_time=t_ns)
        self.messages += 1

    def metadata(self, name: str, data: dict) -> None:
        self._w.add_metadata(name, {k: str(v) for k, v in data.items()})

    def close(self) -> None:
        self._w.finish()
        self._f.close()
