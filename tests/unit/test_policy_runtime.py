"""PolicySession: provider fallback, corrupt/missing model files, metadata checks, no torch."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from policy_helpers import tiny_meta, write_tiny_policy

from fast_policy.runtime import CPU, TRT, PolicySession, check_providers, load_policy_meta
from fast_policy.spec import ACTION_DIM, OBS_DIM
from s1s2.cell import DEFAULT_CELL
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
    assert out.shape == (10, ACTION_DIM)
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


def _norm(d, key, value):
    d["normalization"][key] = value
    return d


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda d: "{not json", "not valid JSON"),
        (lambda d: d.pop("arm_geometry") and d, "missing key.*arm_geometry"),
        (lambda d: d.update(chunk_size=0) or d, "chunk_size"),
        (lambda d: d.update(policy_type="gpt") or d, "policy_type 'gpt'"),
        (lambda d: d.update(joint_names=["a"]) or d, "joint_names"),
        (lambda d: d.update(execution={"aim": 3}) or d, "execution"),
        (lambda d: _norm(d, "obs_std", [1.0] * 3), "normalization.obs_std"),
        (lambda d: _norm(d, "action_mean", [[float("nan")] * ACTION_DIM] * 10), "action_mean"),
        (lambda d: d["spec"].update(obs_fields=d["spec"]["obs_fields"][::-1]) or d, "obs_fields"),
        (lambda d: d.update(format=3) or d, "format 3"),
    ],
)
def test_bad_metadata_named(tmp_path, mutate, match):
    write_tiny_policy(tmp_path)
    p = tmp_path / "policy.json"
    d = mutate(json.loads(p.read_text()))
    p.write_text(d if isinstance(d, str) else json.dumps(d))
    with pytest.raises(ConfigError, match=match) as e:
        load_policy_meta(p)
    assert "\n" not in str(e.value) and "policy.json" in str(e.value)


def test_old_spec_version_refused_with_one_line(tmp_path):
    """A format-1 policy.json (joint targets from absolute goals) names its spec version and the
    one this runtime reads, and how to rebuild."""
    old = {"format": 1, "obs_dim": 48, "action_dim": 5, "chunk_size": 10, "joint_names": ["a"] * 4}
    model = write_tiny_policy(tmp_path, meta=old)
    with pytest.raises(ConfigError) as e:
        PolicySession(model, providers=[CPU], log=lambda _m: None)
    msg = str(e.value)
    assert "\n" not in msg and "policy.json" in msg
    assert "spec_version 1" in msg and "spec_version 2" in msg and "s1s2 models policy" in msg


def test_onnx_inputs_must_match_policy_json(tmp_path):
    with pytest.raises(ConfigError, match="inputs .*do not match policy.json") as e:
        PolicySession(write_tiny_policy(tmp_path, obs_dim=OBS_DIM + 1), providers=[CPU], log=lambda _m: None)
    assert "\n" not in str(e.value) and "policy.onnx" in str(e.value)


def test_chunk_size_mismatch_between_json_and_onnx(tmp_path):
    model = write_tiny_policy(tmp_path, k=10, meta=tiny_meta(5).to_json())
    with pytest.raises(ConfigError, match="outputs .*do not match.*chunk_size 5"):
        PolicySession(model, providers=[CPU], log=lambda _m: None)


def test_model_for_another_arm_refused(tmp_path):
    d = tiny_meta().to_json()
    d["arm_geometry"]["upper_len"] = 0.6
    model = write_tiny_policy(tmp_path, meta=d)
    with pytest.raises(ConfigError, match="another arm.*upper_len"):
        PolicySession(model, providers=[CPU], arm=DEFAULT_CELL.arm, log=lambda _m: None)
    PolicySession(model, providers=[CPU], log=lambda _m: None)  # no arm given: not checked


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
