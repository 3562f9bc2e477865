"""ros2 launch entry for the recycling cell in Gazebo Harmonic (optional; NOT the embedded default).

    ros2 launch launch/recycling_gazebo.launch.py [world:=/path/to.sdf] [headless:=true]

Needs a full ROS 2 Jazzy install with Gazebo Harmonic and ros_gz (apt: ros-jazzy-ros-gz). Starts
gz sim with the generated world (src/conveyor_sim/conveyor_sim/worlds/recycling_cell.sdf, made by
`s1s2 sim sdf`), ros_gz_bridge with config/ros_gz_bridge.yaml (camera and joint states on the
same ROS topics the MuJoCo node publishes), conveyor_sim_gz_relay (joint commands -> per-joint
Gazebo commands, belt odometry -> /belt/state, belt speed), and the stack nodes by including
launch/recycling_sim.launch.py with with_mujoco:=false (the MuJoCo `conveyor_sim` node is not
started: Gazebo replaces it).
"""

import os
from pathlib import Path

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

ROOT = Path(os.environ.get("S1S2_ROOT", Path(__file__).resolve().parent.parent))
CONFIG = ROOT / "config"
WORLD = ROOT / "src" / "conveyor_sim" / "conveyor_sim" / "worlds" / "recycling_cell.sdf"
STACK = Path(__file__).resolve().parent / "recycling_sim.launch.py"


def generate_launch_description() -> LaunchDescription:
    world = LaunchConfiguration("world")
    headless = LaunchConfiguration("headless")
    gz_sim = IncludeLaunchDescription(
        PythonLaunchDescriptionSource([FindPackageShare("ros_gz_sim"), "/launch/gz_sim.launch.py"]),
        launch_arguments={
            # -r: run at start; -s: server only (headless, sensors still render)
            "gz_args": PythonExpression(
                ["'-r ' + ('-s ' if '", headless, "' == 'true' else '') + '", world, "'"]
            ),
        }.items(),
    )
    bridge = Node(
        package="ros_gz_bridge",
        executable="parameter_bridge",
        name="ros_gz_bridge",
        parameters=[{"config_file": str(CONFIG / "ros_gz_bridge.yaml")}],
        output="screen",
    )
    relay = Node(
        package="conveyor_sim",
        executable="conveyor_sim_gz_relay",
        name="conveyor_sim_gz_relay",
        parameters=[{"belt_speed": 0.10}],
        output="screen",
    )
    return LaunchDescription(
        [
            DeclareLaunchArgument("world", default_value=str(WORLD), description="SDF world file"),
            DeclareLaunchArgument("headless", default_value="true", description="gz server only"),
            gz_sim,
            bridge,
            relay,
            IncludeLaunchDescription(
                PythonLaunchDescriptionSource(str(STACK)), launch_arguments={"with_mujoco": "false"}.items()
            ),
        ]
    )
