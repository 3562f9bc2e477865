"""GoalTracker: validation (latent length / NaN / frame), age vs valid_for, belt -> world."""

import math

import numpy as np
import pytest
from policy_helpers import goal

from fast_policy.goal_tracker import GoalTracker, belt_to_world
from s1s2.topics import LATENT_DIM


@pytest.mark.parametrize(
    "bad",
    [
        {"latent": [0.0] * (LATENT_DIM - 1)},
        {"latent": [0.0] * (LATENT_DIM + 1)},
        {"latent": []},
        {"latent": [0.0] * (LATENT_DIM - 1) + [math.nan]},
        {"latent": [math.inf] + [0.0] * (LATENT_DIM - 1)},
        {"target": (0.0, math.nan, 0.0)},
        {"place": (0.0, 0.0)},
        {"frame": "camera_optical"},
        {"valid_for": -1.0},
    ],
)
def test_bad_goal_rejected_counted_and_previous_kept(bad):
    tr = GoalTracker()
    assert tr.update(goal(10.0, plan_id="good"))
    assert not tr.update(goal(11.0, plan_id="bad", **bad))
    assert tr.rejected == 1 and tr.accepted == 1
    assert tr.goal.plan_id == "good"
    assert "bad" in tr.last_rejection


def test_latent_error_names_length():
    tr = GoalTracker()
    tr.update(goal(0.0, latent=[0.0] * 16))
    assert "16" in tr.last_rejection and str(LATENT_DIM) in tr.last_rejection


def test_age_and_staleness_use_header_stamp_and_valid_for():
    tr = GoalTracker(default_valid_for_s=2.0, timeout_margin_s=0.1)
    assert tr.current(5.0, 0.0) is None  # no goal
    tr.update(goal(10.0, valid_for=0.5))
    assert tr.age(10.3) == pytest.approx(0.3)
    assert tr.current(10.55, 0.0) is not None  # within valid_for + margin
    assert tr.current(10.61, 0.0) is None  # stale
    tr.update(goal(20.0, valid_for=0.0))  # 0 = use the default
    assert tr.current(21.9, 0.0) is not None
    assert tr.current(22.2, 0.0) is None
    assert tr.age(19.0) == 0.0  # stamp from the future (clock skew): age 0, not negative


def test_belt_frame_extrapolated_with_current_odometry():
    tr = GoalTracker()
    tr.update(goal(0.0, frame="belt", target=(0.1, -0.2, 0.32)))
    g0 = tr.current(0.1, belt_odometry=5.0)
    g1 = tr.current(0.5, belt_odometry=5.04)  # the belt moved 4 cm
    np.testing.assert_allclose(g0.target_world, [5.1, -0.2, 0.32], atol=1e-5)
    np.testing.assert_allclose(g1.target_world - g0.target_world, [0.04, 0, 0], atol=1e-5)
    np.testing.assert_allclose(g1.place_world, [-0.5, -0.95, 0.5])  # place is in world, not moved
    assert tr.current(0.1, belt_odometry=None) is None  # cannot place a belt-frame goal: hold


def test_world_frame_not_moved_and_empty_label_means_no_pick():
    tr = GoalTracker()
    tr.update(goal(0.0, frame="world", label=""))
    g = tr.current(0.1, belt_odometry=3.0)
    np.testing.assert_allclose(g.target_world, [0.1, -0.2, 0.32], atol=1e-6)
    assert g.has_goal == 0.0
    assert g.latent.dtype == np.float32 and g.latent.shape == (LATENT_DIM,)


def test_belt_to_world():
    np.testing.assert_allclose(belt_to_world([[0, 1, 2], [1, 1, 1]], 0.5), [[0.5, 1, 2], [1.5, 1, 1]])


def test_tracker_args_validated():
    with pytest.raises(ValueError, match="default_valid_for_s"):
        GoalTracker(default_valid_for_s=0)
