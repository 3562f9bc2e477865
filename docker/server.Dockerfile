# syntax=docker/dockerfile:1
# System 2 server image (x86_64 + NVIDIA GPU): vlm_planner, adapter_manager and, for demos,
# conveyor_sim (MuJoCo; Gazebo Harmonic with --build-arg WITH_GAZEBO=1).
#
# Base: the official ros:jazzy-ros-base-noble image (Ubuntu 24.04, ROS 2 Jazzy from
# packages.ros.org), not nvidia/cuda + ROS apt. The CUDA user-space libraries (cudart, cuBLAS,
# cuDNN, NCCL) come with torch's CUDA wheels from the PyTorch index (nvidia-* wheels), and the
# driver from the host through the NVIDIA Container Toolkit. One CUDA copy, the one torch was
# built against, instead of a base-image CUDA that can disagree with the wheel's; bitsandbytes
# loads the same libraries through torch. No nvcc is needed: nothing is compiled for the GPU here.
#
#   docker build -f docker/server.Dockerfile -t s1s2/server .
#   docker build -f docker/server.Dockerfile --build-arg WITH_GAZEBO=1 -t s1s2/server:gz .
FROM ros:jazzy-ros-base-noble

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# PyTorch wheel index for the CUDA build of the torch version pinned in requirements/system2.txt.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
ARG WITH_GAZEBO=0

ENV DEBIAN_FRONTEND=noninteractive \
    S1S2_ROOT=/opt/s1s2 \
    S1S2_VENV=/opt/s1s2-venv \
    RMW_IMPLEMENTATION=rmw_fastrtps_cpp \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics \
    MUJOCO_GL=egl \
    HF_HOME=/var/cache/s1s2/hf \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1

# ROS comes from apt here (requirements/ros.txt is the pip-only route and is not used).
# libegl1/libgl1: MuJoCo's headless EGL renderer (the NVIDIA EGL vendor library comes from the
# host driver via the "graphics" capability).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      python3-venv python3-dev python3-colcon-common-extensions \
      ros-jazzy-rmw-fastrtps-cpp ros-jazzy-fastrtps \
      ros-jazzy-rosidl-default-generators ros-jazzy-ament-cmake-python \
      ros-jazzy-std-msgs ros-jazzy-sensor-msgs ros-jazzy-geometry-msgs ros-jazzy-diagnostic-msgs \
      ros-jazzy-ros2launch libegl1 libgl1 libgles2 \
 && if [ "$WITH_GAZEBO" = "1" ]; then \
      apt-get install -y --no-install-recommends ros-jazzy-ros-gz; \
    fi \
 && rm -rf /var/lib/apt/lists/*

# A venv that still sees the apt ROS Python packages (rclpy, message modules); the pip pins
# below win over Ubuntu's python3-numpy inside it.
RUN python3 -m venv --system-site-packages "$S1S2_VENV"
ENV PATH=${S1S2_VENV}/bin:${PATH} \
    VIRTUAL_ENV=${S1S2_VENV}

WORKDIR /opt/s1s2

# Dependencies first (cached layer): the same pinned files `make test` installs.
COPY requirements/system1.txt requirements/system2.txt requirements/sim.txt requirements/server-gpu.txt requirements/
# torch first, from the CUDA index, at the version pinned in requirements/system2.txt (read from
# the file, so there is one pin), with its paired torchvision (requirements/server-gpu.txt: Qwen2-VL's
# processor needs it); the -r install then finds `torch==X` already satisfied by X+cuNNN.
# hadolint ignore=DL3013
RUN torch_pin="$(grep -E '^torch==' requirements/system2.txt)" \
 && tv_pin="$(grep -E '^torchvision==' requirements/server-gpu.txt)" \
 && python -m pip install --no-cache-dir --index-url "$TORCH_INDEX_URL" "$torch_pin" "$tv_pin" \
 && python -m pip install --no-cache-dir \
      -r requirements/system1.txt -r requirements/system2.txt -r requirements/sim.txt \
 && python -c "import torch, torchvision; assert torch.version.cuda, 'torch is a CPU build: check TORCH_INDEX_URL'; print('torch', torch.__version__, 'CUDA', torch.version.cuda, 'torchvision', torchvision.__version__)"

# The project: same steps as scripts/setup.sh (editable s1s2 package + colcon build of src/).
COPY pyproject.toml ./
COPY s1s2/ s1s2/
COPY src/ src/
COPY scripts/ scripts/
COPY config/ config/
COPY launch/ launch/
COPY models/ models/
COPY deploy/ deploy/
COPY docker/entrypoint.sh docker/dds_profile.py docker/healthcheck.py docker/
RUN python -m pip install --no-cache-dir --no-deps -e . \
 && mkdir -p ros2_ws /var/cache/s1s2/hf /var/cache/s1s2/trt \
 && . /opt/ros/jazzy/setup.bash \
 && bash scripts/build_ws.sh

ENTRYPOINT ["/opt/s1s2/docker/entrypoint.sh"]
CMD ["ros2", "run", "vlm_planner", "vlm_planner_node", "--ros-args", "--params-file", "/opt/s1s2/config/vlm_planner.yaml"]
