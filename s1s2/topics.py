"""Topic and service names, message types, QoS, frames and the interface constants (latent width,
control period), defined once for every node and test.

Pure Python (no rclpy): `s1s2.ros.qos_profile` turns a `QosSpec` into an rclpy profile.
Every name here is a default; nodes take the names below and users remap them with
`--ros-args -r /old:=/new` or launch remappings.
"""

from __future__ import annotations

from dataclasses import dataclass

# Width of Goal.latent: s1s2_interfaces/msg/Goal.msg LATENT_DIM (a node test checks they agree).
LATENT_DIM = 32
# System 1's control loop: joint commands at 50 Hz. The scripted expert, demonstrations and the
# joint-command deadline all use this period.
CONTROL_RATE_HZ = 50.0
CONTROL_DT = 1.0 / CONTROL_RATE_HZ


@dataclass(frozen=True)
class QosSpec:
    """Transport-independent description of a QoS profile."""

    kind: str  # "sensor" | "goal" | "command" | "state" | "latched"
    depth: int
    reliable: bool
    transient_local: bool = False
    deadline_s: float | None = None  # publisher promises a sample at least this often


# Camera and other high-rate sensors: best effort, keep the newest few (rclpy's sensor-data profile).
SENSOR = QosSpec("sensor", depth=5, reliable=False)
# The System 2 goal: reliable + transient local, depth 1, so a policy that (re)joins late gets
# the latest plan at once, and a lossy Wi-Fi link retransmits instead of dropping the only goal.
GOAL = QosSpec("goal", depth=1, reliable=True, transient_local=True)
# Joint commands at 50 Hz: only the newest matters (depth 1), and a missed 20 ms period is a
# deadline event the subscriber can see. 2 periods of slack before the deadline is missed.
COMMAND = QosSpec("command", depth=1, reliable=True, deadline_s=2 * CONTROL_DT)
# Proprioception and small state streams.
STATE = QosSpec("state", depth=10, reliable=True)
# Status that late joiners should see (adapter status, context).
LATCHED = QosSpec("latched", depth=1, reliable=True, transient_local=True)


@dataclass(frozen=True)
class Topic:
    name: str
    type: str  # "package/msg/Type"
    qos: QosSpec
    doc: str


CAMERA_IMAGE = Topic("/camera/image_raw", "sensor_msgs/msg/Image", SENSOR, "overhead RGB camera, rgb8")
CAMERA_INFO = Topic("/camera/camera_info", "sensor_msgs/msg/CameraInfo", SENSOR, "camera intrinsics")
JOINT_STATES = Topic("/joint_states", "sensor_msgs/msg/JointState", STATE, "arm joint positions/velocities")
BELT_STATE = Topic(
    "/belt/state", "sensor_msgs/msg/JointState", STATE, "belt as one prismatic joint: position = odometry (m)"
)
INSTRUCTION = Topic("/system2/instruction", "std_msgs/msg/String", LATCHED, "operator instruction")
GOAL_TOPIC = Topic("/system2/goal", "s1s2_interfaces/msg/Goal", GOAL, "latest System 2 plan")
JOINT_COMMANDS = Topic(
    "/joint_commands",
    "std_msgs/msg/Float64MultiArray",
    COMMAND,
    "arm joint position commands (forward_command_controller convention), 50 Hz",
)
SUCTION_COMMAND = Topic("/suction_command", "std_msgs/msg/Bool", COMMAND, "suction gripper on/off")
# The suction cup's vacuum switch: true while an item is held (a real gripper's vacuum sensor).
# System 1 needs it to know whether a grasp succeeded; System 2 never does.
VACUUM = Topic(
    "/suction/vacuum", "std_msgs/msg/Bool", STATE, "vacuum switch: true while an item is held, 50 Hz"
)
CONTEXT = Topic(
    "/adapter_manager/context", "s1s2_interfaces/msg/LightingContext", LATCHED, "lighting/context class"
)
ADAPTER_STATUS = Topic(
    "/adapter_manager/status", "s1s2_interfaces/msg/AdapterStatus", LATCHED, "adapter library state"
)
PLANNER_STATUS = Topic(
    "/vlm_planner/status", "s1s2_interfaces/msg/PlannerStatus", LATCHED,
    "planner: model, active and resident adapters, start time (a new one = restarted)",
)  # fmt: skip
DIAGNOSTICS = Topic("/diagnostics", "diagnostic_msgs/msg/DiagnosticArray", STATE, "node health")
# Simulation-only topics: evaluation, recording and the scripted expert. No stack node subscribes.
GROUND_TRUTH = Topic("/sim/ground_truth", "s1s2_interfaces/msg/GroundTruth", STATE, "sim ground truth")
SORT_EVENTS = Topic("/sim/sort_events", "s1s2_interfaces/msg/SortEvent", STATE, "items leaving play")
# Ground truth of exactly the state each camera image shows (same stamp): labels for recorded frames.
FRAME_GROUND_TRUTH = Topic(
    "/sim/frame_ground_truth",
    "s1s2_interfaces/msg/GroundTruth",
    STATE,
    "sim ground truth at each camera frame",
)

ALL_TOPICS = [
    CAMERA_IMAGE,
    CAMERA_INFO,
    JOINT_STATES,
    BELT_STATE,
    INSTRUCTION,
    GOAL_TOPIC,
    JOINT_COMMANDS,
    SUCTION_COMMAND,
    VACUUM,
    CONTEXT,
    ADAPTER_STATUS,
    PLANNER_STATUS,
    DIAGNOSTICS,
    GROUND_TRUTH,
    SORT_EVENTS,
    FRAME_GROUND_TRUTH,
]

# Services (default names).
SWAP_ADAPTER_SERVICE = "/vlm_planner/swap_adapter"  # s1s2_interfaces/srv/SwapAdapter
RESET_SIM_SERVICE = "/conveyor_sim/reset"  # s1s2_interfaces/srv/ResetSim
SET_LIGHTING_SERVICE = "/conveyor_sim/set_lighting"  # s1s2_interfaces/srv/SetLighting

# Frames.
WORLD_FRAME = "world"
BELT_FRAME = "belt"  # moves with the belt: world = belt + (belt odometry) along +x
CAMERA_FRAME = "camera_optical"
