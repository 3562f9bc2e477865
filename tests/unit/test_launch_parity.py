"""The ros2 launch file and the pip-only launcher must start the same nodes, executables and
parameter files with the same lifecycle policy (required -> on_exit=Shutdown, respawn ->
respawn + respawn_delay). `launch`/`launch_ros` are not installable here, so the test runs the
launch file against minimal recording stand-ins of the classes it uses."""

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


def _run_launch_file(path: Path, **arguments) -> list[dict]:
    """Nodes the launch file starts for these launch arguments (defaults from its declarations)."""
    mods = {name: types.ModuleType(name) for name in STUBBED}

    class LaunchDescription(list):
        pass

    class Recorder(dict):
        def __init__(self, *args, **kwargs):
            super().__init__(kwargs, args=args)

    declared = {}

    class DeclareLaunchArgument(Recorder):
        def __init__(self, name, **kwargs):
            super().__init__(name, **kwargs)
            declared[name] = kwargs.get("default_value")

    class LaunchConfiguration(Recorder):
        def perform(self, context):
            name = self["args"][0]
            return context.get(name, declared[name])

    mods["launch"].LaunchDescription = LaunchDescription
    mods["launch_ros.actions"].Node = type("Node", (Recorder,), {})
    mods["launch.actions"].DeclareLaunchArgument = DeclareLaunchArgument
    mods["launch.actions"].OpaqueFunction = type("OpaqueFunction", (Recorder,), {})
    mods["launch.actions"].Shutdown = type("Shutdown", (Recorder,), {})
    mods["launch.conditions"].IfCondition = type("IfCondition", (Recorder,), {})
    mods["launch.substitutions"].LaunchConfiguration = LaunchConfiguration
    saved = {k: sys.modules.get(k) for k in STUBBED}
    sys.modules.update(mods)
    try:
        spec = importlib.util.spec_from_file_location("recycling_sim_launch", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        actions = []
        for a in module.generate_launch_description():
            if type(a).__name__ == "OpaqueFunction":
                actions += a["function"](dict(arguments))
            else:
                actions.append(a)
        return [a for a in actions if type(a).__name__ == "Node"]
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def _policy(n: dict) -> tuple:
    shutdown = n.get("on_exit")
    return (
        shutdown is not None and type(shutdown).__name__ == "Shutdown",
        bool(n.get("respawn", False)),
        float(n.get("respawn_delay", 0.0)),
    )


@pytest.mark.parametrize("stack_file", ["config/recycling_sim.yaml", "config/recycling_oracle.yaml"])
def test_launch_file_and_launcher_start_the_same_nodes_with_the_same_policy(stack_file):
    nodes = _run_launch_file(ROOT / "launch" / "recycling_sim.launch.py", stack=str(ROOT / stack_file))
    stack = load_stack(stack_file)
    from_launch = sorted(
        (
            n["package"],
            n["executable"],
            n["name"],
            tuple(Path(p).resolve() for p in n["parameters"]),
            n.get("prefix", ""),
            *_policy(n),
        )
        for n in nodes
    )
    from_stack = sorted(
        (
            n.package, n.executable, n.name, tuple(resolve_path(p).resolve() for p in n.parameters), n.prefix,
            n.required, n.respawn, n.respawn_delay if n.respawn else 0.0,
        )
        for n in stack.nodes
    )  # fmt: skip
    assert from_launch == from_stack


def test_default_lifecycle_policy_and_gazebo_variant():
    stack = {n.name: n for n in load_stack("config/recycling_sim.yaml").nodes}
    assert set(stack) == {"conveyor_sim", "vlm_planner", "fast_policy", "adapter_manager"}
    # System 1 and the cell are required; System 2 and the adapter manager respawn
    assert stack["fast_policy"].required and stack["conveyor_sim"].required
    assert stack["vlm_planner"].respawn and stack["adapter_manager"].respawn
    assert stack["vlm_planner"].respawn_delay > 0 and not stack["vlm_planner"].required
    # only the simulator is optional (Gazebo replaces it with with_mujoco:=false)
    gz = _run_launch_file(ROOT / "launch" / "recycling_sim.launch.py", with_mujoco="false")
    assert sorted(n["name"] for n in gz) == ["adapter_manager", "fast_policy", "vlm_planner"]


@pytest.mark.parametrize("stack_file", ["config/recycling_sim.yaml", "config/recycling_oracle.yaml"])
def test_console_scripts_match_setup_py(stack_file):
    """Each executable a stack names is a console script its package declares."""
    import re

    for node in load_stack(stack_file).nodes:
        setup_py = (ROOT / "src" / node.package / "setup.py").read_text()
        assert re.search(rf'"{node.executable} = {node.package}\.\w+:main"', setup_py), node.executable


def test_oracle_stack_never_runs_with_the_real_planner():
    oracle = {n.name for n in load_stack("config/recycling_oracle.yaml").nodes}
    default = {n.name for n in load_stack("config/recycling_sim.yaml").nodes}
    assert "oracle_planner" in oracle and "vlm_planner" not in oracle
    assert "oracle_planner" not in default


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
    bad.write_text("nodes: [{package: a, executable: b, name: c, required: true, respawn: true}]")
    with pytest.raises(LaunchError, match="either required"):
        load_stack(bad)
    bad.write_text("nodes: [{package: a, executable: b, name: c, respawn: true, respawn_delay: -1}]")
    with pytest.raises(LaunchError, match="respawn_delay.*-1"):
        load_stack(bad)
    bad.write_text("nodes: [{package: a, executable: b, name: c, respawns: true}]")
    with pytest.raises(LaunchError, match="unknown key.*respawns"):
        load_stack(bad)


def test_parse_overrides():
    assert parse_overrides(["fast_policy:rate_hz:=25.0"]) == {"fast_policy": ["rate_hz:=25.0"]}
    with pytest.raises(LaunchError, match="NODE:PARAM:=VALUE"):
        parse_overrides(["rate_hz=25"])
