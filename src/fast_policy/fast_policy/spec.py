"""Observation and action layout of the System 1 policy, defined once.

The runtime (numpy only) and the trainer (`s1s2_training.policy`) both build observations with
`build_observation`, so the order of features cannot drift between training and deployment.

Observation (OBS_DIM = 48 floats, world frame, metres / radians):
    joint_pos (4) | joint_vel (4) | suction (1) | goal_target (3) | goal_place (3) | has_goal (1) | latent (32)
Action chunk (K x 5): for each of the next K ticks, 4 joint-position targets (absolute, the ACT
formulation; or deltas from the observed joint positions when policy.json says action_relative),
normalised with the action stats, + 1 suction logit.
"""

from __future__ import annotations

import numpy as np

from s1s2.topics import LATENT_DIM

N_JOINTS = 4
OBS_FIELDS: tuple[tuple[str, int], ...] = (
    ("joint_pos", N_JOINTS),
    ("joint_vel", N_JOINTS),
    ("suction", 1),
    ("goal_target", 3),
    ("goal_place", 3),
    ("has_goal", 1),
    ("goal_latent", LATENT_DIM),
)
OBS_DIM = sum(n for _, n in OBS_FIELDS)
ACTION_DIM = N_JOINTS + 1  # joint targets + suction logit
ONNX_INPUT = "obs"  # float32 (1, OBS_DIM), normalised
ONNX_OUTPUT = "actions"  # float32 (1, K, ACTION_DIM), joint part normalised


def build_observation(
    joint_pos, joint_vel, suction, goal_target, goal_place, has_goal, goal_latent
) -> np.ndarray:
    """Concatenate raw features in OBS_FIELDS order. Works on one sample or a batch (leading dims)."""
    parts = [
        np.asarray(joint_pos, np.float32),
        np.asarray(joint_vel, np.float32),
        np.asarray(suction, np.float32)[..., None],
        np.asarray(goal_target, np.float32),
        np.asarray(goal_place, np.float32),
        np.asarray(has_goal, np.float32)[..., None],
        np.asarray(goal_latent, np.float32),
    ]
    for (name, n), p in zip(OBS_FIELDS, parts, strict=True):
        if p.shape[-1] != n:
            raise ValueError(f"observation field '{name}' needs {n} values, got shape {p.shape}")
    return np.concatenate(parts, axis=-1)
