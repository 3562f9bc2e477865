"""Gazebo world and bridge config: generated from the description, committed copies up to date,
SDF valid for `ign sdf -k`, bridge topics = the MuJoCo node's topics."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conveyor_sim.commands import validate_command
from conveyor_sim.sdf import build_sdf, ros_gz_bridge_config, ros_gz_bridge_yaml
from s1s2 import repo_root
from s1s2 import topics as tp

WORLD = repo_root() / "src" / "conveyor_sim" / "conveyor_sim" / "worlds" / "recycling_cell.sdf"
BRIDGE = repo_root() / "config" / "ros_gz_bridge.yaml"


def test_committed_world_equals_generator_output():
    assert WORLD.read_text() == build_sdf(), "regenerate: s1s2 sim sdf " + str(WORLD)


def test_committed_bridge_config_equals_generator_output():
    assert BRIDGE.read_text() == ros_gz_bridge_yaml(), "regenerate: s1s2 sim bridge-config " + str(BRIDGE)
    assert yaml.safe_load(BRIDGE.read_text()) == ros_gz_bridge_config()


def test_sdf_is_version_1_9_and_uses_track_controller_and_camera():
    sdf = build_sdf()
    assert '<sdf version="1.9">' in sdf
    assert "gz::sim::systems::TrackController" in sdf
    assert 'type="camera"' in sdf
    for bin_id in ("plastic", "metal", "paper", "glass", "residual"):
        assert f'name="bin_{bin_id}"' in sdf


@pytest.mark.parametrize("lighting", ["daylight", "night_noise"])
def test_generated_sdf_validates_with_ign_sdf(tmp_path, lighting):
    ign = shutil.which("ign")
    if ign is None:
        pytest.skip("`ign` not installed (apt-get install -y libsdformat-dev ignition-tools)")
    path = tmp_path / "world.sdf"
    path.write_text(build_sdf(lighting=lighting, seed=3))
    r = subprocess.run([ign, "sdf", "-k", str(path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "Valid" in r.stdout, r.stdout + r.stderr


def test_bridge_maps_onto_the_mujoco_node_topics():
    by_ros = {e["ros_topic_name"]: e for e in ros_gz_bridge_config()}
    for topic in (tp.CAMERA_IMAGE, tp.CAMERA_INFO, tp.JOINT_STATES):
        assert by_ros[topic.name]["ros_type_name"] == topic.type
        assert by_ros[topic.name]["direction"] == "GZ_TO_ROS"


def test_relay_rejects_and_clamps_like_the_sim():
    lo, hi = [-1.0] * 4, [1.0] * 4
    assert validate_command([0.0, 0.1, 0.2, 0.3], lo, hi) == ([0.0, 0.1, 0.2, 0.3], "ok")
    assert validate_command([2.0, 0.1, 0.2, 0.3], lo, hi) == ([1.0, 0.1, 0.2, 0.3], "clamped")
    assert validate_command([float("nan"), 0, 0, 0], lo, hi) == (None, "rejected_nonfinite")
    assert validate_command([0.0], lo, hi) == (None, "rejected_length")


def test_cli_writes_sdf(tmp_path):
    from conveyor_sim.cli import main

    out = tmp_path / "w.sdf"
    assert main(["sdf", str(out)]) == 0
    assert out.read_text() == build_sdf()
    assert main(["sdf", str(out), "--lighting", "disco"]) == 2
    assert Path(out).exists()
