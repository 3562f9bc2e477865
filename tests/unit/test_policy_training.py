"""Training side: config validation, dataset checks, model forward/loss, ONNX export parity with
torch, policy.json round trip, and the exported model running in the torch-free runtime."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from policy_helpers import cell_limits, goal  # noqa: E402

from fast_policy.controller import Controller, ControllerConfig, OnnxPolicySource  # noqa: E402
from fast_policy.runtime import PolicySession  # noqa: E402
from fast_policy.spec import ACTION_DIM, OBS_DIM  # noqa: E402
from s1s2.cell import DEFAULT_CELL  # noqa: E402
from s1s2_training.policy import data as pdata  # noqa: E402
from s1s2_training.policy.configuration import (  # noqa: E402
    ACTConfig,
    FlowConfig,
    MLPConfig,
    TrainConfig,
    make_policy_config,
    policy_config_from_dict,
)
from s1s2_training.policy.export import load_model, save_policy  # noqa: E402
from s1s2_training.policy.modeling import make_model  # noqa: E402
from s1s2_training.policy.train import train  # noqa: E402

ARM = DEFAULT_CELL.arm
SMALL = {
    "act": {"d_model": 32, "n_heads": 2, "n_layers": 1, "ff_dim": 64},
    "act_vae": {"d_model": 32, "n_heads": 2, "n_layers": 1, "ff_dim": 64, "use_vae": True, "latent_dim": 4},
    "flow": {"hidden": 64, "net_layers": 1, "flow_steps": 4},
    "mlp": {"hidden": 64, "layers": 2},
}


def _cfg(name):
    return make_policy_config(name.split("_")[0], **SMALL[name])


@pytest.mark.parametrize(
    "bad,name",
    [
        (lambda: ACTConfig(d_model=30, n_heads=4), "d_model"),
        (lambda: ACTConfig(chunk_size=0), "chunk_size"),
        (lambda: FlowConfig(flow_steps=0), "flow_steps"),
        (lambda: MLPConfig(dropout=1.0), "dropout"),
        (lambda: TrainConfig(lr=0), "lr"),
        (lambda: ACTConfig(drop_features=("nope",)), "drop_features"),
        (lambda: FlowConfig(time_sampling="x"), "time_sampling"),
    ],
)
def test_configs_name_the_bad_value(bad, name):
    with pytest.raises(ValueError, match=name):
        bad()


def test_config_round_trip_and_unknown_keys():
    c = ACTConfig(use_vae=True)
    assert policy_config_from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="unknown.*bogus"):
        policy_config_from_dict({**c.to_dict(), "bogus": 1})


def _fake_data(n_eps=6, n=80, k=10, seed=0):
    """A learnable toy: offsets proportional to some observation features, suction from the sign
    of another."""
    rng = np.random.default_rng(seed)
    obs = rng.standard_normal((n_eps * n, OBS_DIM)).astype(np.float32)
    act = np.zeros((n_eps * n, k, ACTION_DIM), np.float32)
    act[..., :3] = 0.1 * obs[:, None, 6:9] * np.linspace(0.1, 1, k)[None, :, None]
    act[..., 3] = np.where(obs[:, None, 0] > 0, 6.0, -6.0)
    return {
        "obs": obs,
        "act": act,
        "phase": rng.integers(0, 6, n_eps * n).astype(np.int8),
        "episode": np.repeat(np.arange(n_eps), n),
        "belt_speed": np.zeros(n_eps * n, np.float32),
        "planner": np.zeros(n_eps * n, bool),
    }


def test_dataset_is_checked_on_load(tmp_path):
    data = _fake_data(n_eps=2, n=10)
    p = pdata.save(tmp_path / "d.npz", data)
    assert pdata.load(p)["obs"].shape == (20, OBS_DIM)
    pdata.save(tmp_path / "missing.npz", {k: v for k, v in data.items() if k != "phase"})
    with pytest.raises(ValueError, match="missing array.*phase"):
        pdata.load(tmp_path / "missing.npz")
    nan = dict(data, obs=data["obs"].copy())
    nan["obs"][7, 3] = np.nan
    pdata.save(tmp_path / "nan.npz", nan)
    with pytest.raises(ValueError, match="obs contains NaN.*row 7"):
        pdata.load(tmp_path / "nan.npz")
    pdata.save(tmp_path / "rows.npz", dict(data, phase=data["phase"][:5]))
    with pytest.raises(ValueError, match="row count"):
        pdata.load(tmp_path / "rows.npz")
    (tmp_path / "bad.npz").write_bytes(b"nope")
    with pytest.raises(ValueError, match="cannot read"):
        pdata.load(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="cannot read"):
        pdata.load(tmp_path / "absent.npz")


def test_training_rejects_mismatched_shapes():
    data = _fake_data(n_eps=2, n=10, k=5)
    with pytest.raises(ValueError, match="chunk_size 10"):
        train(_cfg("mlp"), TrainConfig(max_steps=2), data, progress=False)


@pytest.mark.parametrize("name", list(SMALL))
def test_train_export_parity_and_session(tmp_path, name):
    data = _fake_data()
    model, metrics = train(
        _cfg(name), TrainConfig(max_steps=60, batch_size=64, val_fraction=0.2), data, progress=False
    )
    assert np.isfinite(metrics["val"]["loss"])
    meta = save_policy(
        model, tmp_path, ARM, {"aim_index": -1}, True, {"data": "toy"}, metrics, data["obs"][:8]
    )
    # float32 graph vs float32 eager on the same CPU: differences are rounding, well under 1e-4
    assert meta["metrics"]["onnx_parity_max_abs_diff"] <= 1e-4
    sess = PolicySession(tmp_path / "policy.onnx", arm=ARM, log=lambda _m: None)
    assert sess.meta.trained is True and sess.meta.policy_type == name.split("_")[0]
    x = data["obs"][3]
    with torch.no_grad():
        ref = model(torch.from_numpy(x[None]))[0].numpy()
    assert sess(x).shape == (model.k, ACTION_DIM)
    np.testing.assert_allclose(sess(x), ref, atol=1e-4)
    again = load_model(tmp_path / "policy.onnx")
    with torch.no_grad():
        np.testing.assert_allclose(again(torch.from_numpy(x[None]))[0].numpy(), ref, atol=1e-6)
    on_disk = json.loads((tmp_path / "policy.json").read_text())
    assert on_disk["provenance"] == {"data": "toy"} and on_disk["chunk_size"] == model.k


def test_training_learns_the_toy_and_drives_the_controller(tmp_path):
    data = _fake_data(n_eps=10)
    model0 = make_model(_cfg("mlp"))
    model, metrics = train(_cfg("mlp"), TrainConfig(max_steps=600, batch_size=64, val_fraction=0.2), data,
                           progress=False)  # fmt: skip
    # held-out episodes: suction sign is learned far above chance
    assert metrics["val"]["suction_acc"] > 0.9, metrics["val"]
    assert model0 is not model
    save_policy(model, tmp_path, ARM, {"aim_index": -1}, True, {}, metrics)
    sess = PolicySession(tmp_path / "policy.onnx", arm=ARM, log=lambda _m: None)
    ctrl = Controller(OnnxPolicySource(sess), sess.meta.chunk_size, cell_limits(), ARM,
                      ControllerConfig().with_execution(sess.meta.execution))  # fmt: skip
    q = ARM.home()
    ctrl.on_joint_state(list(ARM.joint_names), list(q), [0.0] * 4, 0.0)
    ctrl.on_vacuum(False, 0.0)
    ctrl.on_belt(0.0, 0.1, 0.0)
    ctrl.on_goal(goal(0.0, valid_for=10))
    cmd = ctrl.tick(0.02)
    assert cmd is not None and cmd.mode == "policy" and np.all(np.isfinite(cmd.positions))


def test_normalisation_lives_in_the_model():
    m = make_model(_cfg("mlp"))
    stats = {
        "obs_mean": np.full(OBS_DIM, 2.0),
        "obs_std": np.full(OBS_DIM, 4.0),
        "act_mean": np.zeros((10, 3)),
        "act_std": np.full((10, 3), 0.5),
    }
    m.norm.set_stats(stats)
    x = torch.full((1, OBS_DIM), 6.0)
    assert torch.allclose(m.norm.obs(x), torch.ones(1, OBS_DIM))
    assert "norm.obs_mean" in m.state_dict()


def test_spec_v3_policy_reads_the_goal_latent_through_the_controller(tmp_path):
    """Spec v3 = v2 + the goal latent. A toy whose suction is the sign of a latent dimension is
    learned only through that field; exported, the runtime reads v3 and the controller feeds the
    current goal's latent (so two goals that differ only in their latent give different chunks)."""
    from fast_policy.spec import LATENT_FIELD, obs_dim, obs_slices

    n_obs = obs_dim(3)
    assert n_obs == OBS_DIM + LATENT_FIELD[1]
    data = _fake_data(n_eps=10)
    rng = np.random.default_rng(1)
    lat = rng.standard_normal((len(data["obs"]), LATENT_FIELD[1])).astype(np.float32)
    data["obs"] = np.concatenate([data["obs"], lat], 1)
    data["act"][..., 3] = np.where(lat[:, None, 5] > 0, 6.0, -6.0)
    cfg = make_policy_config("mlp", **SMALL["mlp"], spec_version=3)
    model, metrics = train(cfg, TrainConfig(max_steps=600, batch_size=64, val_fraction=0.2), data,
                           progress=False)  # fmt: skip
    assert metrics["val"]["suction_acc"] > 0.9, metrics["val"]
    blind = make_policy_config("mlp", **SMALL["mlp"], spec_version=3, drop_features=("goal_latent",))
    _, m_blind = train(blind, TrainConfig(max_steps=600, batch_size=64, val_fraction=0.2), data,
                       progress=False)  # fmt: skip
    assert m_blind["val"]["suction_acc"] < 0.7  # the ablation: without the latent it is chance
    meta = save_policy(model, tmp_path, ARM, {"aim_index": -1}, True, {}, metrics, data["obs"][:8])
    assert meta["spec"]["spec_version"] == 3 and meta["spec"]["obs_dim"] == n_obs
    sess = PolicySession(tmp_path / "policy.onnx", arm=ARM, log=lambda _m: None)
    assert sess.meta.spec_version == 3 and sess.meta.obs_dim == n_obs
    ctrl = Controller(OnnxPolicySource(sess), sess.meta.chunk_size, cell_limits(), ARM,
                      ControllerConfig().with_execution(sess.meta.execution), None, sess.meta.spec_version)  # fmt: skip
    q = ARM.home()
    chunks = []
    for i, sign in enumerate((1.0, -1.0)):
        latent = [0.0] * LATENT_FIELD[1]
        latent[5] = 3.0 * sign
        ctrl.on_joint_state(list(ARM.joint_names), list(q), [0.0] * 4, i)
        ctrl.on_vacuum(False, i)
        ctrl.on_belt(0.0, 0.1, i)
        ctrl.on_goal(goal(i, valid_for=10, latent=latent, plan_id=f"p{i}"))
        st = ctrl.prepare(i + 0.02)
        assert st.obs.shape == (n_obs,)
        np.testing.assert_allclose(st.obs[obs_slices(3)["goal_latent"]], latent)
        chunks.append(sess(st.obs))
    assert chunks[0][0, 3] > 0 > chunks[1][0, 3]  # suction logit follows the latent
