"""Shared ROS-free helpers: parameter specs, topics, metrics."""

import math

import pytest

from s1s2 import topics
from s1s2.metrics import RateMeter, percentile, within
from s1s2.params import ConfigError, ParamSpec, validate_all


def test_param_spec_names_the_bad_value():
    rate = ParamSpec("rate_hz", 50.0, "loop rate", min=1.0, max=500.0)
    assert rate.validate(20.0) == 20.0
    with pytest.raises(ConfigError, match=r"'rate_hz'.*1000"):
        rate.validate(1000.0)
    with pytest.raises(ConfigError, match=r"'rate_hz'.*nan"):
        rate.validate(float("nan"))
    with pytest.raises(ConfigError, match=r"'rate_hz'.*'fast'"):
        rate.validate("fast")
    mode = ParamSpec("device", "cpu", "device", choices=("cpu", "cuda"))
    with pytest.raises(ConfigError, match=r"'device'.*'tpu'.*cpu, cuda"):
        mode.validate("tpu")
    path = ParamSpec("model_path", "models/x", "model", read_only=True, must_exist=True)
    with pytest.raises(ConfigError, match=r"'model_path'.*'models/does_not_exist'"):
        path.validate("models/does_not_exist")
    flag = ParamSpec("enabled", True, "flag")
    with pytest.raises(ConfigError, match="'enabled'"):
        flag.validate(1)


def test_validate_all_rejects_unknown_names():
    specs = [ParamSpec("a", 1, "a", min=0, max=2)]
    assert validate_all(specs, {}) == {"a": 1}
    with pytest.raises(ConfigError, match="unknown parameter.*'?b"):
        validate_all(specs, {"b": 3})


def test_topics_defined_once_and_qos_as_specified():
    names = [t.name for t in topics.ALL_TOPICS]
    assert len(names) == len(set(names))
    assert topics.CAMERA_IMAGE.qos.reliable is False
    assert topics.GOAL_TOPIC.qos.reliable and topics.GOAL_TOPIC.qos.transient_local
    assert topics.GOAL_TOPIC.qos.depth == 1
    assert topics.JOINT_COMMANDS.qos.depth == 1 and topics.JOINT_COMMANDS.qos.deadline_s is not None
    for required in (
        "/camera/image_raw",
        "/camera/camera_info",
        "/joint_states",
        "/belt/state",
        "/system2/instruction",
        "/system2/goal",
        "/joint_commands",
        "/adapter_manager/context",
        "/adapter_manager/status",
        "/diagnostics",
    ):
        assert required in names


def test_rate_meter():
    m = RateMeter("x")
    for i in range(101):
        m.tick(i * 0.02)
    s = m.summary()
    assert abs(s["rate_hz"] - 50.0) < 1e-6
    assert abs(s["period_p99_ms"] - 20.0) < 1e-6
    assert within(49.5, 50.0, 0.02) and not within(45.0, 50.0, 0.02) and not within(math.nan, 50.0, 0.5)
    assert math.isnan(percentile([], 50))
    assert math.isnan(RateMeter("empty").summary()["rate_hz"])
