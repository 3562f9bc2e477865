"""DAgger data: expert relabelling of rolled-out states (schema, labels that start from the command
actually sent, suction labelled by phase) and fine-tuning from a model with its own stats."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mujoco")

from s1s2_training.policy.configuration import PolicyConfig  # noqa: E402
from s1s2_training.policy.dagger import SUCTION_PHASES, collect  # noqa: E402
from s1s2_training.policy.data import SCHEMA, load_npz, synthetic_npz  # noqa: E402
from s1s2_training.policy.export import save_policy  # noqa: E402
from s1s2_training.policy.train import train  # noqa: E402

TINY = {"d_model": 32, "n_heads": 2, "n_layers": 1, "ff_dim": 64, "epochs": 1, "batch_size": 64}


def test_expert_only_collection_matches_schema_and_sorts(tmp_path):
    arr, score = collect(None, 1, 2000, beta=1.0, noise_rad=0.0, episode_s=10.0, progress=False)
    n = len(arr["joint_pos"])
    assert n == 500 and set(arr) == set(SCHEMA)
    assert arr["action_joint_pos"].shape == (n, 10, 4) and arr["action_suction"].shape == (n, 10)
    # labels are a rate-limited path: consecutive chunk steps move at most vlim * dt
    steps = np.abs(np.diff(arr["action_joint_pos"], axis=1))
    assert steps.max() < 0.1
    # the labelling wrapper keeps the expert itself working: it still sorts items
    assert score["correct"] >= 1 and score["wrong_bin"] == 0
    np.savez_compressed(tmp_path / "d.npz", **arr)
    assert load_npz(tmp_path / "d.npz", 10, relative=False).obs.shape[0] == n
    assert "descend" in SUCTION_PHASES and "approach" not in SUCTION_PHASES


def test_policy_rollout_is_relabelled_and_finetunes(tmp_path):
    p = synthetic_npz(tmp_path / "syn.npz", n_episodes=6, steps=20)
    cfg = PolicyConfig(**TINY, val_fraction=0.25)
    model, st, _ = train(cfg, p, progress=False)
    save_policy(model, st, tmp_path / "m", trained=True, provenance={}, metrics={})
    # a (bad) policy drives with no expert blocks: every state still gets an expert label
    arr, _ = collect(tmp_path / "m" / "policy.onnx", 1, 2001, beta=0.0, episode_s=2.0, episode_offset=50,
                     progress=False)  # fmt: skip
    assert np.all(np.isfinite(arr["action_joint_pos"])) and np.all(arr["episode_index"] == 50)
    np.savez_compressed(tmp_path / "dag.npz", **arr)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model2, st2, metrics = train(cfg, [p, tmp_path / "dag.npz"], progress=False, init=(model, st))
    assert st2 is st and metrics["train_samples"] + metrics["val_samples"] == 6 * 20 + 100
    assert any(not torch.equal(before[k], v) for k, v in model2.state_dict().items())
