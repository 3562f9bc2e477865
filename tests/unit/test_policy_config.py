"""fast_policy's parameters: one dataclass is the single source of defaults, ranges and
descriptions; config/fast_policy.yaml only sets declared parameters; joint limits come from the
cell description."""

import dataclasses

import numpy as np
import pytest
import yaml

from fast_policy import config as cfg
from fast_policy.controller import ControllerConfig
from s1s2 import repo_root
from s1s2.cell import DEFAULT_CELL
from s1s2.params import ConfigError, from_values, param_specs


@pytest.fixture(scope="module")
def params():
    data = yaml.safe_load((repo_root() / "config" / "fast_policy.yaml").read_text())
    return data[cfg.NODE_NAME]["ros__parameters"]


def test_yaml_keys_are_declared_and_valid(params):
    names = {s.name for s in param_specs(cfg.FastPolicyConfig)}
    assert set(params) == names
    p = from_values(cfg.FastPolicyConfig, params)
    assert {"providers", "trt_fp16", "trt_cache_dir"} <= names  # the deployment engineer relies on these
    assert p.rate_hz == 50.0
    # the controller's settings are the node's parameters, with the same defaults
    assert {f.name for f in dataclasses.fields(ControllerConfig)} <= names
    assert p.controller_config() == ControllerConfig(
        **{k: params[k] for k in ControllerConfig.__dataclass_fields__}
    )


def test_joint_limits_come_from_the_cell_description(params):
    arm = DEFAULT_CELL.arm
    lim = from_values(cfg.FastPolicyConfig, params).joint_limits()
    assert list(lim.names) == arm.joint_names
    np.testing.assert_array_equal(lim.lower, arm.lower_limits())
    np.testing.assert_array_equal(lim.upper, arm.upper_limits())
    np.testing.assert_array_equal(lim.max_velocity, arm.velocity_limits())
    np.testing.assert_array_equal(lim.max_acceleration, arm.acceleration_limits())


def test_bad_values_named(tmp_path):
    with pytest.raises(ConfigError, match="providers"):
        cfg.FastPolicyConfig(providers=[])
    with pytest.raises(ConfigError, match="chunk_mode.*all_at_once"):
        cfg.FastPolicyConfig(chunk_mode="all_at_once")
    with pytest.raises(ConfigError, match="rate_hz.*0.0"):
        cfg.FastPolicyConfig(rate_hz=0.0)
    with pytest.raises(ConfigError, match="model_path.*missing.onnx"):
        cfg.FastPolicyConfig(model_path="models/policy/missing.onnx")
    with pytest.raises(ConfigError, match="unknown parameter.*joint_upper"):
        from_values(cfg.FastPolicyConfig, {"joint_upper": [1.0, 2.0]})
    bad_cell = tmp_path / "cell.yaml"
    bad_cell.write_text("arm: {}\n")
    with pytest.raises(ConfigError, match="'cell'.*cell.yaml"):
        cfg.FastPolicyConfig(cell=str(bad_cell)).joint_limits()
    spec = {s.name: s for s in param_specs(cfg.FastPolicyConfig)}["model_path"]
    assert spec.read_only and spec.must_exist
