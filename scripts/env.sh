#!/usr/bin/env bash
# Source this to get the ROS 2 environment of a pip-only install: the venv is the ament prefix,
# ros2_ws/install holds this project's packages. On a full ROS install, source
# /opt/ros/jazzy/setup.bash and ros2_ws/install/setup.bash instead.
_s1s2_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export S1S2_ROOT=$_s1s2_root
export S1S2_VENV=${S1S2_VENV:-$_s1s2_root/.venv}
export VIRTUAL_ENV=$S1S2_VENV
case ":$PATH:" in *":$S1S2_VENV/bin:"*) ;; *) export PATH=$S1S2_VENV/bin:$PATH ;; esac
export AMENT_PREFIX_PATH=$S1S2_VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}
export CMAKE_PREFIX_PATH=$S1S2_VENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
export RMW_IMPLEMENTATION=${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}
export MUJOCO_GL=${MUJOCO_GL:-egl}
if [ -f "$_s1s2_root/ros2_ws/install/local_setup.bash" ]; then
  # colcon's setup scripts read unset variables: relax `set -u` while sourcing them
  _s1s2_flags=$-
  set +u
  # shellcheck disable=SC1091
  COLCON_CURRENT_PREFIX=$_s1s2_root/ros2_ws/install source "$_s1s2_root/ros2_ws/install/local_setup.bash"
  case $_s1s2_flags in *u*) set -u ;; esac
  unset _s1s2_flags
fi
unset _s1s2_root
