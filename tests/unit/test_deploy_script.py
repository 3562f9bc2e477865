"""scripts/deploy_jetson.sh against fake `ssh` and `docker` (tests/unit/deploy_shims): each bad input
stops with a message naming the problem, and the stack already running on the Jetson is untouched
unless the new image passed its health check (then swapped in, or rolled back)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "deploy_jetson.sh"
SHIMS = Path(__file__).parent / "deploy_shims"
OLD, NEW = "img-old", "img-new"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _jetson_state() -> dict:
    """A Jetson already running the stack from s1s2/jetson:current (= img-old)."""
    return {
        "images": {"s1s2/jetson:current": {"id": OLD, "arch": "arm64"}},
        "containers": {"s1s2-fast-policy": {"image_id": OLD}},
    }


def deploy(tmp_path, *args, local_images=None, remote_state=None, **env_extra):
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    if local_images is None:
        local_images = {"s1s2/jetson:latest": {"id": NEW, "arch": "arm64"}}
    (state / "local.json").write_text(json.dumps({"images": local_images, "containers": {}}))
    (state / "remote.json").write_text(json.dumps(remote_state or _jetson_state()))
    (state / "calls.log").write_text("")
    tegra = tmp_path / "nv_tegra_release"
    tegra.write_text("# R36 (release), REVISION: 4.3, GCID: 0, BOARD: generic, EABI: aarch64\n")
    env = dict(os.environ)
    env.update(
        SSH=str(SHIMS / "ssh"),
        DOCKER=str(SHIMS / "docker"),
        SUDO="",
        REMOTE_DIR=str(tmp_path / "opt"),
        SYSTEMD_DIR=str(tmp_path / "systemd"),
        NV_TEGRA_RELEASE=str(tegra),
        FAKE_STATE=str(state),
        FAKE_SHIMS=str(SHIMS),
        S1S2_EXPECT_PROVIDER="TensorrtExecutionProvider",
    )
    (tmp_path / "systemd").mkdir(exist_ok=True)
    env.update(env_extra)
    proc = subprocess.run(
        ["bash", str(SCRIPT), "--build", "none", "--timeout", "30", *args, "nvidia@orin"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    remote = json.loads((state / "remote.json").read_text())
    calls = (state / "calls.log").read_text()
    return proc, remote, calls


def assert_old_stack_untouched(remote, calls):
    assert remote["containers"]["s1s2-fast-policy"] == {"image_id": OLD}
    assert remote["images"]["s1s2/jetson:current"]["id"] == OLD
    assert "systemctl restart" not in calls and "systemctl stop" not in calls
    assert "-p s1s2-robot" not in calls  # the live compose project was never touched


def test_unreachable_host_stops_before_doing_anything(tmp_path):
    proc, remote, calls = deploy(tmp_path, FAKE_UNREACHABLE="1")
    assert proc.returncode != 0
    assert "cannot reach nvidia@orin over ssh" in proc.stderr and "No route to host" in proc.stderr
    assert "ssh-copy-id" in proc.stderr
    assert_old_stack_untouched(remote, calls)
    assert "local docker" not in calls


def test_x86_host_is_refused(tmp_path):
    proc, remote, calls = deploy(tmp_path, FAKE_REMOTE_ARCH="x86_64")
    assert proc.returncode != 0
    assert "nvidia@orin is x86_64, not an arm64 Jetson" in proc.stderr
    assert "compose.server.yaml" in proc.stderr
    assert_old_stack_untouched(remote, calls)


def test_host_without_jetpack_is_refused(tmp_path):
    proc, remote, calls = deploy(tmp_path, NV_TEGRA_RELEASE=str(tmp_path / "absent"))
    assert proc.returncode != 0
    assert "not a Jetson with JetPack" in proc.stderr and "flash JetPack 6" in proc.stderr
    assert_old_stack_untouched(remote, calls)


def test_missing_local_image_is_reported(tmp_path):
    proc, remote, calls = deploy(tmp_path, local_images={})
    assert proc.returncode != 0
    assert "image s1s2/jetson:latest not found locally" in proc.stderr
    assert "--build buildx" in proc.stderr
    assert_old_stack_untouched(remote, calls)
    assert "docker load" not in calls


def test_amd64_image_for_arm64_host_is_refused(tmp_path):
    images = {"s1s2/jetson:latest": {"id": NEW, "arch": "amd64"}}
    proc, remote, calls = deploy(tmp_path, local_images=images)
    assert proc.returncode != 0
    assert "is linux/amd64 but nvidia@orin is linux/arm64" in proc.stderr
    assert "--platform linux/arm64" in proc.stderr
    assert_old_stack_untouched(remote, calls)
    assert "docker load" not in calls


def test_failed_candidate_health_check_leaves_old_stack_running(tmp_path):
    proc, remote, calls = deploy(tmp_path, FAKE_BAD_IDS=NEW)
    assert proc.returncode != 0
    assert "failed its health check; the running stack on nvidia@orin was not touched" in proc.stderr
    assert "expected 'TensorrtExecutionProvider'" in proc.stdout  # the health line says which value
    assert_old_stack_untouched(remote, calls)
    assert "s1s2-fast-policy-candidate" not in remote["containers"]  # candidate cleaned up
    assert remote["images"]["s1s2/jetson:candidate"]["id"] == NEW  # it was moved and tried


def test_healthy_image_is_swapped_in(tmp_path):
    proc, remote, calls = deploy(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert remote["containers"]["s1s2-fast-policy"] == {"image_id": NEW}
    assert remote["images"]["s1s2/jetson:current"]["id"] == NEW
    assert remote["images"]["s1s2/jetson:previous"]["id"] == OLD
    # the candidate ran and passed before the live stack was restarted
    assert calls.index("-p s1s2-candidate") < calls.index("systemctl restart")
    unit = tmp_path / "systemd" / "s1s2-robot.service"
    assert unit.read_text() == (ROOT / "deploy/systemd/s1s2-robot.service").read_text()
    assert (tmp_path / "opt/deploy/robot.env").is_file()


def test_edited_robot_env_is_kept(tmp_path):
    env_file = tmp_path / "opt/deploy/robot.env"
    env_file.parent.mkdir(parents=True)
    env_file.write_text("S1S2_SERVER_DS=10.0.0.5\n")
    proc, _, _ = deploy(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert env_file.read_text() == "S1S2_SERVER_DS=10.0.0.5\n"


def test_live_failure_after_swap_rolls_back(tmp_path):
    proc, remote, calls = deploy(tmp_path, FAKE_BAD_LIVE_IDS=NEW)
    assert proc.returncode != 0
    assert "rolled back to the previous image" in proc.stderr
    assert remote["containers"]["s1s2-fast-policy"] == {"image_id": OLD}
    assert remote["images"]["s1s2/jetson:current"]["id"] == OLD


def test_dry_run_prints_steps_and_runs_nothing(tmp_path):
    proc, remote, calls = deploy(tmp_path, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    steps = [line for line in proc.stdout.splitlines() if line.startswith("[deploy] step:")]
    assert len(steps) >= 6
    assert any("swap" in s for s in steps) and any("candidate" in s for s in steps)
    assert calls == ""
    assert remote == _jetson_state()


@pytest.mark.parametrize(
    "args, message",
    [(["--build", "docker"], "--build docker: unknown"), (["--timeout", "soon"], "not a whole number")],
)
def test_bad_options_are_named(tmp_path, args, message):
    proc, remote, calls = deploy(tmp_path, *args)
    assert proc.returncode != 0 and message in proc.stderr
    assert calls == ""
