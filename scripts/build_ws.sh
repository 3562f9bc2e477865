#!/usr/bin/env bash
# colcon build of ros2_ws (packages live in src/). Incremental: a few seconds when nothing changed.
# --symlink-install: the installed Python packages are links to src/, so an edit is live at once
# and an installed copy can never shadow newer code in src/ (the images keep src/ too).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/env.sh
source scripts/env.sh
mkdir -p ros2_ws && cd ros2_ws
colcon --log-base log build --symlink-install --base-paths ../src --event-handlers console_cohesion- summary- \
  --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$S1S2_VENV/bin/python" >build.log 2>&1 \
  || { tail -n 60 build.log; echo "[setup] colcon build failed: see ros2_ws/build.log"; exit 1; }
echo "[setup] workspace built: ros2_ws/install"
