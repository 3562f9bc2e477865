"""The ros2 launch file and the pip-only launcher must describe the same nodes, executables and
parameter files. `launch`/`launch_ros` are not installable here, so the test runs the launch file
against minimal recording stand-ins of the two classes it uses."""

import importlib.util
import sys
import types
from pathlib import Path

import pytest

from s1s2 import resolve_path
from s1s2.launcher import LaunchError, load_stack, parse_overrides

ROOT = Path(__file__).resolve().parents[2]


STUBBED = (
    "launch",
    "launch.actions",
    "launch.conditions",
    "launch.substitutions",
    "launch_ros",
    "launch_ros.actions",
)


def _run_launch_file(path: Path) -> list[dict]:
    mods = {name: types.ModuleType(name) for name in STUBBED}

    class LaunchDescription(list):
        pass

    class Recorder(dict):
        def __init__(self, *args, **kwargs):
            super().__init__(kwargs, args=args)

    mods["launch"].LaunchDescription = LaunchDescription
    mods["launch_ros.actions"].Node = type("Node", (Recorder,), {})
    mods["launch.actions"].DeclareLaunchArgument = type("DeclareLaunchArgument", (Recorder,), {})
    mods["launch.conditions"].IfCondition = type("IfCondition", (Recorder,), {})
    mods["launch.substitutions"].LaunchConfiguration = type("LaunchConfiguration", (Recorder,), {})
    saved = {k: sys.modules.get(k) for k in STUBBED}
    sys.modules.update(mods)
    try:
        spec = importlib.util.spec_from_file_location("recycling_sim_launch", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return [a for a in module.generate_launch_description() if type(a).__name__ == "Node"]
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def test_launch_file_and_launcher_start_the_same_nodes():
    nodes = _run_launch_file(ROOT / "launch" / "recycling_sim.launch.py")
    stack = load_stack("config/recycling_sim.yaml")
    from_launch = sorted(
        (
            n["package"],
            n["executable"],
            n["name"],
            tuple(Path(p).resolve() for p in n["parameters"]),
            n.get("prefix", ""),
        )
        for n in nodes
    )
    from_stack = sorted(
        (n.package, n.executable, n.name, tuple(resolve_path(p).resolve() for p in n.parameters), n.prefix)
        for n in stack.nodes
    )
    assert from_launch == from_stack
    assert {n[0] for n in from_stack} == {"conveyor_sim", "vlm_planner", "fast_policy", "adapter_manager"}
    # only the simulator is optional (Gazebo replaces it with with_mujoco:=false)
    conditional = [n["name"] for n in nodes if n.get("condition") is not None]
    assert conditional == ["conveyor_sim"]


def test_console_scripts_match_setup_py():
    """Each executable the stack names is a console script its package declares."""
    for node in load_stack("config/recycling_sim.yaml").nodes:
        setup_py = (ROOT / "src" / node.package / "setup.py").read_text()
        assert f'"{node.executable} = {node.package}.node:main"' in setup_py


def test_bad_stack_configs_are_named(tmp_path):
    with pytest.raises(LaunchError, match="not found"):
        load_stack(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("nodes: [{package: a, executable: b, name: c, parameters: [missing.yaml]}]")
    with pytest.raises(LaunchError, match="missing.yaml"):
        load_stack(bad)
    bad.write_text("nodes: []")
    with pytest.raises(LaunchError, match="non-empty"):
        load_stack(bad)
    bad.write_text("nodes: [{package: a, name: c}]")
    with pytest.raises(LaunchError, match="executable"):
        load_stack(bad)


def test_parse_overrides():
    assert parse_overrides(["fast_policy:rate_hz:=25.0"]) == {"fast_policy": ["rate_hz:=25.0"]}
    with pytest.raises(LaunchError, match="NODE:PARAM:=VALUE"):
        parse_overrides(["rate_hz=25"])
