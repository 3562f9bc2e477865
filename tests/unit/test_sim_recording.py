"""MCAP recording read back by an independent reader (mcap + mcap_ros2), and the dataset export."""

import numpy as np
import pytest

from conveyor_sim.datasets import export_mcap, make_policy_dataset
from conveyor_sim.recording import RECORDED_TOPICS, record_episodes
from s1s2 import topics as tp


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    out = tmp_path_factory.mktemp("rec")
    paths = record_episodes(1, out, seed=5, episode_s=4.0, domains=["warm_tungsten"], width=64, height=48,
                            progress=False)  # fmt: skip
    return paths


def test_mcap_readable_by_mcap_ros2_with_ros2_schemas(recorded):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    counts, types = {}, {}
    with open(recorded[0], "rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        summary = reader.get_summary()
        assert summary is not None
        for schema in summary.schemas.values():
            assert schema.encoding == "ros2msg"
        for ch in summary.channels.values():
            assert ch.message_encoding == "cdr"
        f.seek(0)
        for schema, channel, _msg, decoded in reader.iter_decoded_messages():
            counts[channel.topic] = counts.get(channel.topic, 0) + 1
            types[channel.topic] = schema.name
            if channel.topic == tp.CAMERA_IMAGE.name:
                assert (decoded.width, decoded.height, decoded.encoding) == (64, 48, "rgb8")
                assert len(decoded.data) == 64 * 48 * 3
            if channel.topic == tp.JOINT_STATES.name:
                assert list(decoded.name) == ["shoulder_pan", "shoulder_lift", "elbow", "wrist_pitch"]
            if channel.topic == tp.BELT_STATE.name:
                assert list(decoded.name) == ["belt"]
                assert decoded.velocity[0] == pytest.approx(0.1)
    for topic in RECORDED_TOPICS:
        if topic is tp.SORT_EVENTS:
            continue  # no item leaves play within 4 s
        assert types[topic.name] == topic.type
    assert counts[tp.JOINT_STATES.name] == 200  # 50 Hz * 4 s
    assert counts[tp.JOINT_COMMANDS.name] == 200
    assert counts[tp.CAMERA_IMAGE.name] == 40  # 10 Hz * 4 s
    assert counts[tp.GROUND_TRUTH.name] == 40


def test_export_matches_direct_policy_dataset(recorded, tmp_path):
    res = export_mcap(recorded, tmp_path / "exp", progress=False)
    pol = np.load(res["policy"]["path"])
    direct = make_policy_dataset(1, 5, tmp_path / "direct.npz", episode_s=4.0, domains=["warm_tungsten"],
                                 progress=False)  # fmt: skip
    d = np.load(direct["path"])
    spec = {
        "joint_pos": ((200, 4), np.float32), "joint_vel": ((200, 4), np.float32), "suction": ((200,), np.float32),
        "goal_target": ((200, 3), np.float32), "goal_place": ((200, 3), np.float32),
        "goal_latent": ((200, 32), np.float32), "has_goal": ((200,), np.float32),
        "holding": ((200,), np.float32), "belt_speed": ((200,), np.float32),
        "goal_target_vel": ((200, 3), np.float32),
        "action_joint_pos": ((200, 10, 4), np.float32), "action_suction": ((200, 10), np.float32),
        "episode_index": ((200,), np.int64),
    }  # fmt: skip
    for key, (shape, dtype) in spec.items():
        assert pol[key].shape == shape and pol[key].dtype == dtype, key
        np.testing.assert_allclose(pol[key], d[key], atol=1e-6, err_msg=key)
    assert set(pol.files) == set(spec)
    # the action window is the next 10 commands: row t+1's first action is row t's second
    np.testing.assert_array_equal(pol["action_joint_pos"][:-10, 1], pol["action_joint_pos"][1:-9, 0])
    assert pol["has_goal"].sum() > 0
    rows = pol["has_goal"] > 0
    np.testing.assert_allclose(np.linalg.norm(pol["goal_latent"][rows], axis=1), 1.0, atol=1e-6)
    assert not pol["goal_latent"][~rows].any()
    planner = np.load(res["planner"]["path"])
    assert planner["images"].shape == (40, 48, 64, 3)
    assert set(planner["lighting"]) == {"warm_tungsten"}
