"""PolicySession: provider fallback, corrupt/missing model files, metadata checks, no torch."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from policy_helpers import write_tiny_policy

from fast_policy.runtime import CPU, TRT, PolicySession, check_providers, load_policy_meta
from fast_policy.spec import OBS_DIM
from s1s2.params import ConfigError


def test_gpu_providers_fall_back_to_cpu_and_one_line_names_it(tmp_path):
    """On a machine without a usable GPU, TensorRT/CUDA are listed by onnxruntime-gpu but cannot
    start; the session must end up on CPU and say so in exactly one line."""
    import onnxruntime as ort

    model = write_tiny_policy(tmp_path)
    lines = []
    sess = PolicySession(
        model, providers=[TRT, "CUDAExecutionProvider", CPU], log=lines.append, trt_cache_dir=tmp_path / "trt"
    )
    assert sess.provider == sess.session.get_providers()[0]
    assert len(lines) == 1 and f"provider = {sess.provider}" in lines[0]
    if sess.provider == CPU:  # this CI box
        assert "dropped" in lines[0] and "TensorrtExecutionProvider" in lines[0]
    out = sess(np.zeros(OBS_DIM, np.float32))
    assert out.shape == (10, 5)
    assert "untrained" in lines[0].lower()  # tiny test model has trained=false
    assert ort.get_available_providers()  # sanity


def test_cpu_only_has_no_dropped(tmp_path):
    lines = []
    sess = PolicySession(write_tiny_policy(tmp_path), providers=[CPU], log=lines.append)
    assert sess.provider == CPU and sess.dropped == [] and "dropped" not in lines[0]
    assert sess.warmup(3) > 0


def test_unknown_provider_is_config_error():
    with pytest.raises(ConfigError, match="unknown provider.*'TensorRT'"):
        check_providers(["TensorRT", CPU])
    with pytest.raises(ConfigError, match="providers"):
        check_providers([])


def test_provider_missing_from_build_dropped_with_reason():
    usable, dropped = check_providers(["CoreMLExecutionProvider", CPU])
    assert usable == [CPU] and "CoreMLExecutionProvider (not in this onnxruntime build)" in dropped


def test_missing_model_names_path(tmp_path):
    with pytest.raises(ConfigError, match="model_path.*nope.onnx"):
        PolicySession(tmp_path / "nope.onnx", providers=[CPU])


@pytest.mark.parametrize("gpu", [False, True])
def test_corrupt_onnx_is_config_error(tmp_path, gpu):
    model = write_tiny_policy(tmp_path)
    model.write_bytes(b"this is not a protobuf" * 10)
    providers = [TRT, CPU] if gpu else [CPU]
    with pytest.raises(ConfigError, match="cannot load.*policy.onnx"):
        PolicySession(model, providers=providers, trt_cache_dir=tmp_path / "trt")


def test_missing_json_is_config_error(tmp_path):
    model = write_tiny_policy(tmp_path)
    (tmp_path / "policy.json").unlink()
    with pytest.raises(ConfigError, match="policy.json.*not found"):
        PolicySession(model, providers=[CPU])


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda d: "{not json", "not valid JSON"),
        (lambda d: d.pop("obs_std") and d, "missing key.*obs_std"),
        (lambda d: d.update(chunk_size=0) or d, "chunk_size"),
        (lambda d: d.update(obs_dim=47) or d, "obs_dim"),
        (lambda d: d.update(joint_names=["a"]) or d, "joint_names"),
        (lambda d: d.update(obs_std=[0.0] * OBS_DIM) or d, "obs_std must be > 0"),
        (lambda d: d.update(action_mean=[[float("nan")] * 4] * 10) or d, "action_mean"),
    ],
)
def test_bad_metadata_named(tmp_path, mutate, match):
    write_tiny_policy(tmp_path)
    p = tmp_path / "policy.json"
    d = mutate(json.loads(p.read_text()))
    p.write_text(d if isinstance(d, str) else json.dumps(d))
    with pytest.raises(ConfigError, match=match):
        load_policy_meta(p)


def test_chunk_size_mismatch_between_json_and_onnx(tmp_path):
    model = write_tiny_policy(tmp_path, k=10)
    d = json.loads((tmp_path / "policy.json").read_text())
    d.update(chunk_size=5, action_mean=[[0.0] * 4] * 5, action_std=[[1.0] * 4] * 5)
    (tmp_path / "policy.json").write_text(json.dumps(d))
    with pytest.raises(ConfigError, match="expected output 'actions' \\[1, 5, 5\\]"):
        PolicySession(model, providers=[CPU])


def test_runtime_and_node_do_not_import_torch():
    code = textwrap.dedent(
        """
        import sys
        import fast_policy.runtime, fast_policy.controller, fast_policy.safety, fast_policy.goal_tracker
        import fast_policy.config, fast_policy.cli, fast_policy.node
        bad = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
        print("TORCH:" + ",".join(bad))
        """
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))  # same imports as here
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert "TORCH:\n" in out.stdout or out.stdout.strip() == "TORCH:", out.stdout
