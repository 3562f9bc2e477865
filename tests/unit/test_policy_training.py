"""Training side: PolicyConfig validation, dataset schema checks, a tiny BC run, ONNX export parity
with torch, and the exported model running in the torch-free runtime."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from policy_helpers import cell_limits, goal  # noqa: E402

from fast_policy.controller import Controller  # noqa: E402
from fast_policy.runtime import CPU, PolicySession  # noqa: E402
from fast_policy.spec import OBS_DIM  # noqa: E402
from s1s2_training.policy.configuration import PolicyConfig  # noqa: E402
from s1s2_training.policy.data import load_npz, split_episodes, stats, synthetic_npz  # noqa: E402
from s1s2_training.policy.export import export_onnx, save_policy  # noqa: E402
from s1s2_training.policy.modeling import ChunkPolicy  # noqa: E402
from s1s2_training.policy.train import train  # noqa: E402

TINY = {"d_model": 32, "n_heads": 2, "n_layers": 1, "ff_dim": 64, "epochs": 2, "batch_size": 64}


@pytest.mark.parametrize(
    "kw,name",
    [
        ({"d_model": 30, "n_heads": 4}, "d_model"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"dropout": 1.0}, "dropout"),
        ({"latent_dim": 16}, "latent_dim"),
        ({"n_joints": 6}, "n_joints"),
        ({"lr": -1.0}, "lr"),
        ({"val_fraction": 0.9}, "val_fraction"),
        ({"epochs": 2.5}, "epochs"),
    ],
)
def test_policy_config_names_bad_value(kw, name):
    with pytest.raises(ValueError, match=f"PolicyConfig.{name} = "):
        PolicyConfig(**kw)


def test_policy_config_roundtrip_and_unknown_field():
    cfg = PolicyConfig(chunk_size=5)
    assert PolicyConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown field.*banana"):
        PolicyConfig.from_dict({"banana": 1})


def test_dataset_schema_checked(tmp_path):
    p = synthetic_npz(tmp_path / "d.npz", n_episodes=3, steps=20)
    data = load_npz(p, chunk_size=10)
    assert data.obs.shape == (60, OBS_DIM) and data.target.shape == (60, 10, 4)
    with pytest.raises(ValueError, match="chunk size 10, the config wants 5"):
        load_npz(p, chunk_size=5)
    z = dict(np.load(p))
    z.pop("goal_latent")
    np.savez(tmp_path / "missing.npz", **z)
    with pytest.raises(ValueError, match="missing array.*goal_latent"):
        load_npz(tmp_path / "missing.npz")
    z = dict(np.load(p))
    z["joint_vel"][3, 1] = np.nan
    np.savez(tmp_path / "nan.npz", **z)
    with pytest.raises(ValueError, match="joint_vel contains NaN"):
        load_npz(tmp_path / "nan.npz")
    (tmp_path / "bad.npz").write_bytes(b"nope")
    with pytest.raises(ValueError, match="cannot read"):
        load_npz(tmp_path / "bad.npz")


def test_split_holds_out_whole_episodes(tmp_path):
    data = load_npz(synthetic_npz(tmp_path / "d.npz", n_episodes=6, steps=10))
    tr, va = split_episodes(data, 0.34, seed=0)
    assert not set(tr.episode) & set(va.episode)
    assert len(tr.obs) + len(va.obs) == len(data.obs)
    st = stats(tr, 1e-2)
    assert np.all(st["obs_std"] >= 1e-2)


def test_export_parity_with_torch(tmp_path):
    torch.manual_seed(0)
    model = ChunkPolicy(PolicyConfig(**TINY)).eval()
    diff = export_onnx(model, tmp_path / "p.onnx")
    assert diff < 1e-4


def test_tiny_training_lowers_loss_exports_and_runs_in_runtime(tmp_path):
    p = synthetic_npz(tmp_path / "d.npz", n_episodes=12, steps=30)
    # the synthetic expert's steps are relative moves, so learn deltas here
    cfg = PolicyConfig(**(TINY | {"epochs": 10, "lr": 3e-3, "val_fraction": 0.25, "action_relative": True}))
    model, st, metrics = train(cfg, p, progress=False)
    # it learned something that carries over to held-out episodes
    assert metrics["val_loss"] < 0.7 * metrics["val_loss_untrained"], metrics
    meta = save_policy(
        model, st, tmp_path / "out", trained=True, provenance={"data": "synthetic"}, metrics=metrics
    )
    assert meta["metrics"]["onnx_parity_max_abs_diff"] < 1e-4
    assert (tmp_path / "out" / "policy.onnx").stat().st_size < 5e6
    on_disk = json.loads((tmp_path / "out" / "policy.json").read_text())
    assert on_disk["trained"] is True and on_disk["chunk_size"] == 10 and len(on_disk["obs_mean"]) == OBS_DIM
    # the exported model drives the torch-free controller
    sess = PolicySession(tmp_path / "out" / "policy.onnx", providers=[CPU], log=lambda _m: None)
    ctrl = Controller(sess, sess.meta, cell_limits())
    ctrl.on_goal(goal(0.0, valid_for=10))
    ctrl.on_joint_state(sess.meta.joint_names, [0.0, 0.5, -1.0, -0.5], [0.0] * 4, 0.0)
    cmd = ctrl.tick(0.02)
    assert cmd.mode == "policy" and np.all(np.isfinite(cmd.positions))


def test_untrained_fallback_is_marked(tmp_path):
    from s1s2_training.policy.build import _untrained

    _untrained(tmp_path, 0, "test: no demonstrations")
    d = json.loads((tmp_path / "policy.json").read_text())
    assert d["trained"] is False and "no demonstrations" in d["provenance"]["reason_untrained"]
    assert d["action_relative"] is True and max(max(r) for r in d["action_std"]) <= 1.01e-3  # barely moves
    lines = []
    PolicySession(tmp_path / "policy.onnx", providers=[CPU], log=lines.append)
    assert "UNTRAINED" in lines[0]
