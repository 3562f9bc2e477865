"""config/fast_policy.yaml: every key is a declared parameter, values validate, and the joint
limits equal the cell description's."""

import numpy as np
import pytest
import yaml

from fast_policy import config as cfg
from s1s2 import repo_root
from s1s2.params import ConfigError, validate_all


@pytest.fixture(scope="module")
def params():
    data = yaml.safe_load((repo_root() / "config" / "fast_policy.yaml").read_text())
    return data[cfg.NODE_NAME]["ros__parameters"]


def test_yaml_keys_are_declared_and_valid(params):
    values = validate_all(
        [s for s in cfg.SPECS if s.name != "model_path"],
        {k: v for k, v in params.items() if k != "model_path"},
    )
    assert set(params) == {s.name for s in cfg.SPECS}
    # the deployment engineer relies on these names
    assert {"providers", "trt_fp16", "trt_cache_dir"} <= set(params)
    assert values["rate_hz"] == 50.0


def test_joint_limits_match_cell_description(params):
    from conveyor_sim.description import DEFAULT_CELL

    arm = DEFAULT_CELL.arm
    lim = cfg.joint_limits(params)
    assert list(lim.names) == arm.joint_names
    np.testing.assert_array_equal(lim.lower, arm.lower_limits())
    np.testing.assert_array_equal(lim.upper, arm.upper_limits())
    np.testing.assert_array_equal(lim.max_velocity, arm.velocity_limits())
    np.testing.assert_array_equal(lim.max_acceleration, arm.acceleration_limits())
    # the ParamSpec defaults (used when no YAML is given) match too
    defaults = cfg.joint_limits({s.name: s.default for s in cfg.SPECS})
    np.testing.assert_array_equal(defaults.upper, arm.upper_limits())
    np.testing.assert_array_equal(defaults.max_acceleration, arm.acceleration_limits())


def test_bad_values_named():
    base = {s.name: s.default for s in cfg.SPECS}
    with pytest.raises(ConfigError, match="joint_upper"):
        cfg.joint_limits(dict(base, joint_upper=[1.0, 2.0]))
    with pytest.raises(ConfigError, match="joint_lower.*nan"):
        cfg.joint_limits(dict(base, joint_lower=[float("nan"), 0.0, 0.0, 0.0]))
    with pytest.raises(ConfigError, match="providers"):
        cfg.providers(dict(base, providers=[]))
    no_model = [s for s in cfg.SPECS if s.name != "model_path"]
    with pytest.raises(ConfigError, match="chunk_mode"):
        validate_all(no_model, {"chunk_mode": "all_at_once"})
    with pytest.raises(ConfigError, match="rate_hz"):
        validate_all(no_model, {"rate_hz": 0.0})
    with pytest.raises(ConfigError, match="model_path.*missing.onnx"):
        validate_all(cfg.SPECS, {"model_path": "models/policy/missing.onnx"})
    spec = {s.name: s for s in cfg.SPECS}["model_path"]
    assert spec.read_only and spec.must_exist
