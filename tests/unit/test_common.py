"""Shared ROS-free helpers: parameter specs, topics, metrics."""

import dataclasses
import math

import pytest

from s1s2 import topics
from s1s2.metrics import RateMeter, percentile, within
from s1s2.params import ConfigError, ParamSpec, check_fields, from_values, param, param_specs, to_values


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


@dataclasses.dataclass
class _Cfg:
    rate_hz: float = param(50.0, "loop rate", min=1.0, max=500.0, read_only=True)
    names: list = param(["a", "b"], "names", length=2)
    gains: list = param([1.0, 2.0], "gains", min=0.0)
    optional: float | None = param(None, "not exposed", ros=False)
    internal: int = 3  # not a parameter

    def __post_init__(self):
        check_fields(self)


def test_config_dataclass_is_the_single_source_of_parameters():
    specs = {s.name: s for s in param_specs(_Cfg)}
    assert set(specs) == {"rate_hz", "names", "gains"}  # ros=False and plain fields are not parameters
    assert specs["rate_hz"] == ParamSpec("rate_hz", 50.0, "loop rate", 1.0, 500.0, read_only=True)
    assert [s.name for s in param_specs(_Cfg, ros_only=False)] == ["rate_hz", "names", "gains", "optional"]
    assert _Cfg().names is not _Cfg().names  # list defaults are per instance
    assert to_values(_Cfg()) == {"rate_hz": 50.0, "names": ["a", "b"], "gains": [1.0, 2.0]}
    assert from_values(_Cfg, {"rate_hz": 20.0}).rate_hz == 20.0
    with pytest.raises(ConfigError, match="unknown parameter.*'?bogus"):
        from_values(_Cfg, {"bogus": 3})
    with pytest.raises(ConfigError, match=r"'rate_hz'.*1000"):
        _Cfg(rate_hz=1000.0)
    with pytest.raises(ConfigError, match=r"'names'.*2 values"):
        _Cfg(names=["a"])
    with pytest.raises(ConfigError, match=r"'gains'.*-1"):
        _Cfg(gains=[1.0, -1.0])
    with pytest.raises(ConfigError, match=r"'names'.*expected a string"):
        _Cfg(names=["a", 3])
    assert _Cfg(optional=None).optional is None


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
