"""ros2 launch entry for the simulated recycling cell (full ROS 2 Jazzy install, e.g. the server image).

    ros2 launch launch/recycling_sim.launch.py [with_mujoco:=false]

Starts the same nodes with the same parameter files as `s1s2 up config/recycling_sim.yaml`
(tests/unit/test_launch_parity.py keeps the two in step). Relative paths resolve against S1S2_ROOT
(the repository root by default), like the nodes' own model paths. launch/recycling_gazebo.launch.py
includes this file with with_mujoco:=false, so the stack nodes are described once.
"""

import os
from pathlib import Path

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

ROOT = Path(os.environ.get("S1S2_ROOT", Path(__file__).resolve().parent.parent))
CONFIG = ROOT / "config"


def _node(
    package: str, executable: str, name: str, params_file: str, prefix: str = "", condition=None
) -> Node:
    return Node(
        condition=condition,
        prefix=prefix,
        package=package,
        executable=executable,
        name=name,
        parameters=[str(CONFIG / params_file)],
        output="screen",
        emulate_tty=True,
        additional_env={"S1S2_ROOT": str(ROOT)},
    )


def generate_launch_description() -> LaunchDescription:
    with_mujoco = IfCondition(LaunchConfiguration("with_mujoco"))
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "with_mujoco",
                default_value="true",
                description="start the MuJoCo cell (false: Gazebo provides it)",
            ),
            _node(
                "conveyor_sim",
                "conveyor_sim_node",
                "conveyor_sim",
                "conveyor_sim.yaml",
                condition=with_mujoco,
            ),
            _node("vlm_planner", "vlm_planner_node", "vlm_planner", "vlm_planner.yaml"),
            # the 50 Hz motor loop outranks the rest on a shared CPU (needs root or CAP_SYS_NICE)
            _node("fast_policy", "fast_policy_node", "fast_policy", "fast_policy.yaml", prefix="nice -n -10"),
            _node("adapter_manager", "adapter_manager_node", "adapter_manager", "adapter_manager.yaml"),
        ]
    )
