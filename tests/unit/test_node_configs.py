"""Every node's parameters come from one config dataclass: each parameter file only sets declared
parameters with valid values, and every parameter has a description (its ROS descriptor)."""

import pytest
import yaml

from adapter_manager.failures import FailureRecorderConfig
from adapter_manager.node import AdapterManagerConfig
from conveyor_sim.config import ConveyorSimConfig
from conveyor_sim.oracle_node import OraclePlannerConfig
from fast_policy.config import FastPolicyConfig
from s1s2 import repo_root
from s1s2.params import from_values, param_specs
from vlm_planner.config import PlannerNodeConfig

NODES = [
    ("conveyor_sim", ConveyorSimConfig),
    ("vlm_planner", PlannerNodeConfig),
    ("fast_policy", FastPolicyConfig),
    ("adapter_manager", AdapterManagerConfig),
    ("oracle_planner", OraclePlannerConfig),
    ("failure_recorder", FailureRecorderConfig),
]


@pytest.mark.parametrize("node, config_cls", NODES)
def test_parameter_file_sets_only_declared_valid_parameters(node, config_cls):
    data = yaml.safe_load((repo_root() / "config" / f"{node}.yaml").read_text())
    values = data[node]["ros__parameters"]
    declared = {s.name for s in param_specs(config_cls)}
    assert set(values) <= declared, sorted(set(values) - declared)
    cfg = from_values(config_cls, values)
    for name, value in values.items():
        assert getattr(cfg, name) == value or isinstance(getattr(cfg, name), tuple)


@pytest.mark.parametrize("node, config_cls", NODES)
def test_every_parameter_is_described_with_its_range(node, config_cls):
    specs = param_specs(config_cls)
    assert specs
    for s in specs:
        assert len(s.description) > 10, s.name
        if isinstance(s.default, (int, float)) and not isinstance(s.default, bool) and s.min is not None:
            assert s.min <= s.default <= s.max, s.name
            s.validate(s.default)
    config_cls()  # the defaults alone are a valid configuration
