"""ros2 launch entry for the simulated recycling cell (full ROS 2 Jazzy install, e.g. the server image).

    ros2 launch launch/recycling_sim.launch.py [with_mujoco:=false] [stack:=config/recycling_oracle.yaml]

The nodes, parameter files and lifecycle policy come from the stack description (default
config/recycling_sim.yaml), the same file `s1s2 up` reads (s1s2/stack.py), so the two launchers
cannot disagree: `required` nodes end the launch when they exit (on_exit=Shutdown), `respawn`
nodes are restarted after `respawn_delay` (launch_ros respawn). Relative paths resolve against
S1S2_ROOT (the repository root by default), like the nodes' own model paths.
launch/recycling_gazebo.launch.py includes this file with with_mujoco:=false: the `simulator`
node is then not started (Gazebo provides the cell).
"""

import os
from pathlib import Path

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

ROOT = Path(os.environ.get("S1S2_ROOT", Path(__file__).resolve().parent.parent))
os.environ.setdefault("S1S2_ROOT", str(ROOT))  # s1s2.resolve_path reads it


def stack_nodes(context) -> list:
    from s1s2 import resolve_path
    from s1s2.stack import load_stack

    stack = load_stack(LaunchConfiguration("stack").perform(context))
    with_mujoco = LaunchConfiguration("with_mujoco").perform(context).lower() in ("true", "1", "yes")
    nodes = []
    for n in stack.nodes:
        if n.simulator and not with_mujoco:
            continue
        policy = {}
        if n.required:
            policy["on_exit"] = Shutdown(reason=f"required node {n.name!r} exited")
        if n.respawn:
            policy.update(respawn=True, respawn_delay=n.respawn_delay)
        nodes.append(
            Node(
                package=n.package,
                executable=n.executable,
                name=n.name,
                parameters=[str(resolve_path(p)) for p in n.parameters],
                prefix=n.prefix,
                output="screen",
                emulate_tty=True,
                additional_env={"S1S2_ROOT": str(ROOT)},
                **policy,
            )
        )
    return nodes


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "with_mujoco",
                default_value="true",
                description="start the MuJoCo cell (false: Gazebo provides it)",
            ),
            DeclareLaunchArgument(
                "stack",
                default_value=str(ROOT / "config" / "recycling_sim.yaml"),
                description="stack description",
            ),
            OpaqueFunction(function=stack_nodes),
        ]
    )
