# syntax=docker/dockerfile:1
# System 1 robot image (Jetson Orin, arm64, JetPack 6 / L4T r36): fast_policy only, no torch.
#
# Base: dustynv/ros:jazzy-ros-base-r36.4.0-cu128-24.04 from jetson-containers. JetPack 6's
# rootfs is Ubuntu 22.04 while Jazzy targets 24.04; this image is an Ubuntu 24.04 userspace
# with CUDA 12.8 for L4T r36.4 and ROS 2 Jazzy built from source in /opt/ros/jazzy/install,
# Python 3.12 in /opt/venv (numpy 2.x needs Python >= 3.11, so a 22.04/3.10 base cannot take
# requirements/system1.txt). It runs on a JetPack 6.1/6.2 host (L4T r36.4.x).
#
#   docker buildx build --platform linux/arm64 -f docker/jetson.Dockerfile -t s1s2/jetson --load .
# or natively on the Jetson: scripts/deploy_jetson.sh --build remote HOST
ARG BASE_IMAGE=dustynv/ros:jazzy-ros-base-r36.4.0-cu128-24.04
FROM ${BASE_IMAGE}

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# onnxruntime-gpu for Jetson (CUDA + TensorRT providers) comes from the jetson-ai-lab index for
# JetPack 6 / CUDA 12.8; PyPI has no aarch64 onnxruntime-gpu wheel. The index mirrors PyPI and
# PyPI stays as the fallback for everything else.
ENV PIP_INDEX_URL=https://pypi.jetson-ai-lab.io/jp6/cu128 \
    PIP_EXTRA_INDEX_URL=https://pypi.org/simple \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    S1S2_ROOT=/opt/s1s2 \
    S1S2_VENV=/opt/venv \
    ROS_DISTRO=jazzy \
    RMW_IMPLEMENTATION=rmw_fastrtps_cpp \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    PYTHONUNBUFFERED=1

WORKDIR /opt/s1s2

# Only the System 1 runtime requirements (numpy, onnxruntime-gpu, OpenCV, PyYAML): no torch.
# ROS comes from the base image (requirements/ros.txt is the pip-only route and is not used).
COPY requirements/system1.txt requirements/
RUN if [ ! -x "$S1S2_VENV/bin/python" ]; then python3 -m venv --system-site-packages "$S1S2_VENV"; fi \
 && "$S1S2_VENV/bin/python" -m pip install --no-cache-dir -r requirements/system1.txt \
 && "$S1S2_VENV/bin/python" -c "import importlib.util as u, onnxruntime as ort; assert u.find_spec('torch') is None, 'torch is installed: the System 1 image must not carry it'; p = ort.get_available_providers(); assert 'TensorrtExecutionProvider' in p, f'onnxruntime build without TensorRT: {p}'; print('onnxruntime', ort.__version__, p)"

COPY pyproject.toml ./
COPY s1s2/ s1s2/
COPY src/ src/
COPY scripts/ scripts/
COPY config/ config/
COPY launch/ launch/
COPY models/ models/
COPY deploy/ deploy/
COPY docker/entrypoint.sh docker/dds_profile.py docker/healthcheck.py docker/
# Same steps as scripts/setup.sh: the s1s2 package, then the colcon build of every package in src/.
RUN "$S1S2_VENV/bin/python" -m pip install --no-cache-dir --no-deps -e . \
 && mkdir -p ros2_ws /var/cache/s1s2/trt \
 && for setup in /opt/ros/jazzy/setup.bash /opt/ros/jazzy/install/setup.bash; do \
      if [ -f "$setup" ]; then . "$setup"; break; fi; \
    done \
 && bash scripts/build_ws.sh

ENTRYPOINT ["/opt/s1s2/docker/entrypoint.sh"]
CMD ["ros2", "run", "fast_policy", "fast_policy_node", "--ros-args", "--params-file", "/opt/s1s2/config/fast_policy.yaml", "-p", "trt_cache_dir:=/var/cache/s1s2/trt"]
