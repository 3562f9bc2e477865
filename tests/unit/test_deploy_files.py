"""Static checks of the deployment files (no Docker engine needed): hadolint on the Dockerfiles,
shellcheck on every shell script, the compose files, the DDS profiles, the systemd unit, and that
the images install the project exactly as `make test` does (requirements files, pins, colcon)."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DOCKERFILES = sorted((ROOT / "docker").glob("*.Dockerfile"))
DDS_NS = "{http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles}"
sys.path.insert(0, str(ROOT / "docker"))
import dds_profile  # noqa: E402  (docker/ is not a package: it is copied into the images as is)


def _tool(name: str) -> str:
    path = BIN / name if (BIN / name).exists() else shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not installed: it is pinned in requirements/dev.txt (make setup)")
    return str(path)


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(
        r"\\\n",
        " ",
        "\n".join(ln for ln in dockerfile.read_text().splitlines() if not ln.lstrip().startswith("#")),
    )
    out = []
    for line in text.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _pins(req: Path) -> dict[str, str]:
    pins = {}
    for line in req.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)", line.strip())
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


# ---- linters ---------------------------------------------------------------------------------
def test_both_dockerfiles_exist():
    assert {p.name for p in DOCKERFILES} >= {"server.Dockerfile", "jetson.Dockerfile"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint(dockerfile):
    proc = subprocess.run(
        [_tool("hadolint"), "--config", str(ROOT / "docker/.hadolint.yaml"), str(dockerfile)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _shell_scripts() -> list[Path]:
    found = set(ROOT.glob("scripts/*.sh")) | set(ROOT.glob("docker/*.sh")) | {ROOT / ".ci/run"}
    found |= {p for p in (ROOT / "tests/unit/deploy_shims").rglob("*") if p.is_file() and not p.is_symlink()}
    return sorted(
        p for p in found if p.is_file() and p.read_text(errors="replace").startswith("#!/usr/bin/env bash")
    )


def test_every_shell_script_is_found():
    names = {str(p.relative_to(ROOT)) for p in _shell_scripts()}
    assert {"scripts/deploy_jetson.sh", "docker/entrypoint.sh", ".ci/run", "scripts/env.sh"} <= names


@pytest.mark.parametrize("script", _shell_scripts(), ids=lambda p: str(p.relative_to(ROOT)))
def test_shellcheck(script):
    proc = subprocess.run(
        [_tool("shellcheck"), "-x", "-P", "SCRIPTDIR", str(script.relative_to(ROOT))],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---- one source of truth: images install what `make test` installs ----------------------------
IMAGE_REQUIREMENTS = {
    "server.Dockerfile": ["system1.txt", "system2.txt", "sim.txt"],
    "jetson.Dockerfile": ["system1.txt"],
}


@pytest.mark.parametrize("name, reqs", IMAGE_REQUIREMENTS.items())
def test_images_copy_and_install_the_requirements_files(name, reqs):
    instr = _instructions(ROOT / "docker" / name)
    copied = " ".join(a for i, a in instr if i == "COPY")
    installed = " ".join(a for i, a in instr if i == "RUN" and "pip install" in a)
    for req in reqs:
        assert (ROOT / "requirements" / req).is_file()
        assert f"requirements/{req}" in copied, f"{name} does not COPY requirements/{req}"
        assert f"-r requirements/{req}" in installed, f"{name} does not pip install -r requirements/{req}"
    # ROS comes from apt / the base image in the images; the pip route is for pip-only machines
    assert "requirements/ros.txt" not in copied + installed
    assert "requirements/dev.txt" not in copied + installed


def test_jetson_image_has_no_torch():
    text = (ROOT / "docker/jetson.Dockerfile").read_text()
    instr = _instructions(ROOT / "docker/jetson.Dockerfile")
    pip_cmds = [c for i, a in instr if i == "RUN" for c in a.split("&&") if "pip install" in c]
    assert pip_cmds and not any(re.search(r"\btorch\b", c) for c in pip_cmds)
    assert "system2.txt" not in text
    assert "torch" not in _pins(ROOT / "requirements/system1.txt")
    assert "find_spec('torch') is None" in text  # the build fails if the base image brought torch
    env = " ".join(a for i, a in instr if i == "ENV")
    assert re.search(r"PIP_INDEX_URL=https://pypi\.jetson-ai-lab\.io/jp6/cu12\d", env)
    assert "PIP_EXTRA_INDEX_URL=" in env


def test_server_torch_is_the_cuda_build_of_the_pinned_version():
    text = (ROOT / "docker/server.Dockerfile").read_text()
    assert re.search(r"ARG TORCH_INDEX_URL=https://download\.pytorch\.org/whl/cu\d+", text)
    # the version is read from requirements/system2.txt, never written in the Dockerfile
    assert "grep -E '^torch==' requirements/system2.txt" in text
    assert "torch.version.cuda" in text


def test_server_torchvision_is_the_release_paired_with_the_pinned_torch():
    """PyTorch releases torch 2.N with torchvision 0.(N+15) (2.14.1 with 0.29.1 seen installed
    together); a torch bump without its torchvision would break the image build."""
    torch_v = _pins(ROOT / "requirements/system2.txt")["torch"]
    tv_v = _pins(ROOT / "requirements/server-gpu.txt")["torchvision"]
    (t_major, t_minor), (v_major, v_minor) = (
        tuple(int(x) for x in v.split(".")[:2]) for v in (torch_v, tv_v)
    )
    assert (t_major, v_major, v_minor) == (2, 0, t_minor + 15), f"torch {torch_v} with torchvision {tv_v}"
    text = (ROOT / "docker/server.Dockerfile").read_text()
    assert (
        "grep -E '^torchvision==' requirements/server-gpu.txt" in text and "import torch, torchvision" in text
    )
    assert "server-gpu.txt" not in (ROOT / "requirements.txt").read_text()  # not on the pip-only machine


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_pins_do_not_contradict_requirements(dockerfile):
    pins = {}
    for req in (ROOT / "requirements").glob("*.txt"):
        pins.update(_pins(req))
    for instr, args in _instructions(dockerfile):
        if instr != "RUN" or "pip install" not in args:
            continue
        for name, version in re.findall(r"([A-Za-z0-9_.\-]+)==([0-9][^\s\"']*)", args):
            assert pins.get(name.lower()) == version, (
                f"{dockerfile.name} pins {name}=={version}; requirements say {pins.get(name.lower())}"
            )


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_images_build_the_project_like_make_test(dockerfile):
    instr = _instructions(dockerfile)
    runs = " ".join(a for i, a in instr if i == "RUN")
    copied = [a.split()[0] for i, a in instr if i == "COPY"]
    assert "pip install --no-cache-dir --no-deps -e ." in runs  # scripts/setup.sh: pip install --no-deps -e .
    assert "bash scripts/build_ws.sh" in runs  # the same colcon build of src/ as make test
    for needed in ("src/", "s1s2/", "scripts/", "config/", "models/", "pyproject.toml", "deploy/"):
        assert needed in copied, f"{dockerfile.name} does not COPY {needed}"
    build_ws = (ROOT / "scripts/build_ws.sh").read_text()
    assert "--base-paths ../src" in build_ws  # every package under src/ is built
    packages = [p.parent.name for p in (ROOT / "src").glob("*/package.xml")]
    assert {"s1s2_interfaces", "fast_policy", "vlm_planner", "adapter_manager", "conveyor_sim"} <= set(
        packages
    )
    for src in copied:
        if not src.startswith("--"):
            for part in src.split():
                assert (ROOT / part).exists(), f"{dockerfile.name}: COPY source {part} missing"
    entry = [a for i, a in instr if i == "ENTRYPOINT"]
    assert entry == ['["/opt/s1s2/docker/entrypoint.sh"]']


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerignore_keeps_local_builds_out(dockerfile):
    ignore = dockerfile.with_name(dockerfile.name + ".dockerignore")
    lines = ignore.read_text().split()
    for path in (".venv", "ros2_ws/build", "ros2_ws/install", "ros2_ws/log", "runs"):
        assert path in lines, f"{ignore.name} lets {path} into the build context"


# ---- compose ----------------------------------------------------------------------------------
def _compose(name: str) -> dict:
    return yaml.safe_load((ROOT / "deploy" / name).read_text())


def _launch_nodes() -> dict[str, dict]:
    stack = yaml.safe_load((ROOT / "config/recycling_sim.yaml").read_text())
    return {n["name"]: n for n in stack["nodes"]}


def _run_args(command: list[str]) -> tuple[str, str, str]:
    assert command[:2] == ["ros2", "run"], command
    params = command[command.index("--params-file") + 1]
    return command[2], command[3], params.removeprefix("/opt/s1s2/")


def test_compose_files_run_the_nodes_of_the_stack_with_its_parameter_files():
    robot, server = _compose("compose.robot.yaml")["services"], _compose("compose.server.yaml")["services"]
    placed = {"fast_policy": robot["fast_policy"]}
    placed.update({k: server[k] for k in ("vlm_planner", "adapter_manager", "conveyor_sim")})
    nodes = _launch_nodes()
    assert set(placed) == set(nodes), "every node of config/recycling_sim.yaml runs on exactly one side"
    for name, svc in placed.items():
        pkg, exe, params = _run_args(svc["command"])
        assert (pkg, exe) == (nodes[name]["package"], nodes[name]["executable"])
        assert [params] == nodes[name]["parameters"]
    assert server["conveyor_sim"]["profiles"] == ["sim"]  # the sim only runs for demos


@pytest.mark.parametrize("name", ["compose.robot.yaml", "compose.server.yaml"])
def test_compose_ros_environment(name):
    services = _compose(name)["services"]
    for svc_name, svc in services.items():
        if svc.get("profiles") == ["tools"]:
            continue
        env = svc["environment"]
        assert "ROS_DOMAIN_ID" in env, f"{name}:{svc_name}"
        assert svc["network_mode"] == "host", f"{name}:{svc_name}: DDS needs the host network"
        if svc_name != "discovery":
            assert env["RMW_IMPLEMENTATION"].endswith("rmw_fastrtps_cpp}")
            assert env["S1S2_DDS_PROFILE"].startswith("/opt/s1s2/deploy/dds/")
            assert {"S1S2_ROBOT_DS", "S1S2_SERVER_DS", "S1S2_PEER_IP"} <= set(env)


def test_discovery_server_ids_match_the_profile():
    prefixes = [
        s.get("prefix")
        for s in ElementTree.parse(ROOT / "deploy/dds/discovery_client.xml").iter(f"{DDS_NS}RemoteServer")
    ]
    for name, sid in (("compose.robot.yaml", "0"), ("compose.server.yaml", "1")):
        cmd = _compose(name)["services"]["discovery"]["command"]
        assert cmd[:2] == ["fastdds", "discovery"]
        assert cmd[cmd.index("-i") + 1] == sid and cmd[cmd.index("-p") + 1] == "11811"
        assert f"44.53.{int(sid):02x}.5f.45.50.52.4f.53.49.4d.41" in prefixes


def test_robot_compose_gpu_and_trt_cache_volume():
    doc = _compose("compose.robot.yaml")
    fp = doc["services"]["fast_policy"]
    assert fp["runtime"] == "nvidia" and fp["container_name"] == "s1s2-fast-policy"
    assert "trt-cache:/var/cache/s1s2/trt" in fp["volumes"]
    assert "trt_cache_dir:=/var/cache/s1s2/trt" in fp["command"]
    assert doc["volumes"]["trt-cache"]["name"] == "s1s2-trt-cache"
    # the 50 Hz loop's SCHED_FIFO thread (fast_policy realtime_priority) needs these in the container
    assert "SYS_NICE" in fp["cap_add"] and fp["ulimits"]["rtprio"] >= 80
    tools = doc["services"]["build_engine"]
    assert tools["profiles"] == ["tools"] and tools["command"][:3] == ["s1s2", "policy", "build-engine"]
    assert "trt-cache:/var/cache/s1s2/trt" in tools["volumes"]
    cli = (ROOT / "src/fast_policy/fast_policy/cli.py").read_text()
    for flag in (a for a in tools["command"] if a.startswith("--")):
        assert f'"{flag}"' in cli, f"s1s2 policy build-engine has no {flag}"
    # the parameter names the deployment sets exist in fast_policy's own parameter file
    params = yaml.safe_load((ROOT / "config/fast_policy.yaml").read_text())["fast_policy"]["ros__parameters"]
    assert {"providers", "trt_fp16", "trt_cache_dir"} <= set(params)
    assert params["providers"][0] == "TensorrtExecutionProvider"


def test_candidate_override_is_isolated():
    fp = _compose("compose.robot.candidate.yaml")["services"]["fast_policy"]
    assert fp["network_mode"] == "none" and fp["ipc"] == "private"
    assert fp["environment"]["S1S2_ISOLATED"] == "1"
    assert fp["container_name"] != _compose("compose.robot.yaml")["services"]["fast_policy"]["container_name"]


def test_server_compose_gpu_and_caches():
    doc = _compose("compose.server.yaml")
    for name in ("vlm_planner", "adapter_manager"):
        devices = doc["services"][name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert "hf-cache:/var/cache/s1s2/hf" in doc["services"]["vlm_planner"]["volumes"]
    assert "hf-cache" in doc["volumes"]


@pytest.mark.parametrize("name", ["robot.env", "server.env"])
def test_env_files_fill_every_profile_placeholder(name):
    env = {}
    for line in (ROOT / "deploy" / name).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    assert env["RMW_IMPLEMENTATION"] == "rmw_fastrtps_cpp" and env["ROS_DOMAIN_ID"].isdigit()
    for profile in (ROOT / "deploy/dds").glob("*.xml"):
        dds_profile.render(profile.read_text(), env)  # raises naming any missing variable
    assert (ROOT / "deploy/dds" / f"{env['S1S2_DDS_MODE']}.xml").is_file()


# ---- DDS profiles -----------------------------------------------------------------------------
SAMPLE_ENV = {"S1S2_ROBOT_DS": "127.0.0.1", "S1S2_SERVER_DS": "192.168.1.10", "S1S2_PEER_IP": "192.168.1.10"}


@pytest.mark.parametrize("profile", sorted((ROOT / "deploy/dds").glob("*.xml")), ids=lambda p: p.name)
def test_dds_profiles_are_well_formed_with_one_default_participant(profile):
    ElementTree.parse(profile)  # the template itself is well-formed
    tree = ElementTree.fromstring(dds_profile.render(profile.read_text(), SAMPLE_ENV))
    parts = list(tree.iter(f"{DDS_NS}participant"))
    assert [p.get("is_default_profile") for p in parts] == ["true"]
    assert not list(tree.iter(f"{DDS_NS}metatrafficMulticastLocatorList"))  # unicast only


def test_discovery_profile_lists_both_servers():
    tree = ElementTree.fromstring(
        dds_profile.render((ROOT / "deploy/dds/discovery_client.xml").read_text(), SAMPLE_ENV)
    )
    assert tree.find(f".//{DDS_NS}discoveryProtocol").text == "SUPER_CLIENT"
    servers = list(tree.iter(f"{DDS_NS}RemoteServer"))
    addrs = [s.find(f".//{DDS_NS}address").text for s in servers]
    ports = [s.find(f".//{DDS_NS}port").text for s in servers]
    assert addrs == ["127.0.0.1", "192.168.1.10"] and ports == ["11811", "11811"]


def test_static_peers_profile_lists_the_peer():
    tree = ElementTree.fromstring(
        dds_profile.render((ROOT / "deploy/dds/static_peers.xml").read_text(), SAMPLE_ENV)
    )
    peers = [a.text for a in tree.find(f".//{DDS_NS}initialPeersList").iter(f"{DDS_NS}address")]
    assert peers == ["127.0.0.1", "192.168.1.10"]


def test_profile_rendering_names_missing_variables_and_bad_xml():
    with pytest.raises(ValueError, match="S1S2_SERVER_DS"):
        dds_profile.render("<a>${S1S2_ROBOT_DS} ${S1S2_SERVER_DS}</a>", {"S1S2_ROBOT_DS": "1.2.3.4"})
    with pytest.raises(ValueError, match="not well-formed"):
        dds_profile.render("<a>${X}</a>", {"X": "</b>"})
    assert dds_profile.render("<a>${X}</a>", {"X": "10.0.0.1"}) == "<a>10.0.0.1</a>"


def test_profile_cli_exit_codes(tmp_path, monkeypatch):
    src, out = tmp_path / "p.xml", tmp_path / "out.xml"
    src.write_text("<a>${S1S2_PEER_IP}</a>")
    monkeypatch.delenv("S1S2_PEER_IP", raising=False)
    assert dds_profile.main([str(src), str(out)]) == 2 and not out.exists()
    monkeypatch.setenv("S1S2_PEER_IP", "10.1.1.1")
    assert dds_profile.main([str(src), str(out)]) == 0 and out.read_text() == "<a>10.1.1.1</a>"
    assert dds_profile.main([str(tmp_path / "missing.xml"), str(out)]) == 2


# ---- systemd unit -----------------------------------------------------------------------------
def test_systemd_unit_starts_at_boot_and_restarts_on_failure():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(ROOT / "deploy/systemd/s1s2-robot.service")
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    svc = unit["Service"]
    assert svc["Restart"] == "on-failure" and int(svc["RestartSec"]) > 0
    assert "docker.service" in unit["Unit"]["Requires"]
    assert "compose.robot.yaml" in svc["ExecStart"] and "--exit-code-from fast_policy" in svc["ExecStart"]
    assert "--env-file robot.env" in svc["ExecStart"]
    assert svc["WorkingDirectory"] == "/opt/s1s2/deploy"


# ---- Zenoh (cloud variant) --------------------------------------------------------------------
def test_zenoh_bridge_allows_only_known_topics_and_keeps_commands_local():
    import json

    from s1s2 import topics

    text = (ROOT / "deploy/zenoh/bridge_robot.json5").read_text()
    cfg = json.loads(re.sub(r"^\s*//.*$", "", text, flags=re.M))  # JSON5 comments only
    allow = cfg["plugins"]["ros2dds"]["allow"]
    names = {t.name for t in topics.ALL_TOPICS}
    for topic in allow["publishers"] + allow["subscribers"]:
        assert topic in names, f"{topic} is not in s1s2/topics.py"
    assert topics.GOAL_TOPIC.name in allow["subscribers"]
    assert topics.JOINT_COMMANDS.name not in allow["publishers"] + allow["subscribers"]


def test_deploy_doc_names_what_the_compose_files_provide():
    doc = (ROOT / "docs/deploy.md").read_text()
    for name in ("compose.robot.yaml", "compose.server.yaml"):
        compose = _compose(name)
        for service in compose["services"]:
            assert f"`{service}`" in doc or service in doc, (
                f"docs/deploy.md does not mention service {service}"
            )
        for volume in compose.get("volumes", {}).values():
            assert volume["name"] in doc, f"docs/deploy.md does not mention volume {volume['name']}"
    for var in (
        "ROS_DOMAIN_ID",
        "RMW_IMPLEMENTATION",
        "S1S2_DDS_MODE",
        "S1S2_ROBOT_DS",
        "S1S2_SERVER_DS",
        "S1S2_PEER_IP",
        "S1S2_EXPECT_PROVIDER",
    ):
        assert var in doc, var
    for var in ("SSH=", "DOCKER=", "--dry-run"):
        assert var in doc, var
