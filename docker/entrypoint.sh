#!/usr/bin/env bash
# Container entrypoint for both images: the ROS 2 environment (apt install on the server image,
# jetson-containers' source build on the Jetson image), then the same scripts/env.sh that
# `make test` uses, then the DDS profile rendered from deploy/dds/*.xml, then the command.
set -eo pipefail
: "${ROS_DISTRO:=jazzy}"
for setup in "/opt/ros/$ROS_DISTRO/setup.bash" "/opt/ros/$ROS_DISTRO/install/setup.bash"; do
  if [ -f "$setup" ]; then
    # shellcheck disable=SC1090
    source "$setup"
    break
  fi
done
# shellcheck source=scripts/env.sh
source "${S1S2_ROOT:-/opt/s1s2}/scripts/env.sh"

# S1S2_ISOLATED=1: the deploy script's candidate container. No peers, no discovery server,
# loopback only, so a container under test can never reach the robot's motors.
if [ "${S1S2_ISOLATED:-0}" = "1" ]; then
  unset S1S2_DDS_PROFILE ROS_DISCOVERY_SERVER FASTRTPS_DEFAULT_PROFILES_FILE FASTDDS_DEFAULT_PROFILES_FILE
  export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
fi

# Fast DDS profiles are templates (${S1S2_SERVER_IP}, ...) filled from the environment here,
# so addresses live in one env file, not in the XML.
if [ -n "${S1S2_DDS_PROFILE:-}" ]; then
  rendered=/tmp/s1s2_fastdds_profile.xml
  python3 "$S1S2_ROOT/docker/dds_profile.py" "$S1S2_DDS_PROFILE" "$rendered"
  export FASTRTPS_DEFAULT_PROFILES_FILE=$rendered FASTDDS_DEFAULT_PROFILES_FILE=$rendered
fi

exec "$@"
