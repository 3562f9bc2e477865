"""Observation and action layout of the System 1 policy, defined once (numpy only).

Spec versions (policy.json carries `spec_version`; the runtime reads 2 and 3 and refuses any other,
e.g. version 1, joint targets from absolute goals, with one line):
  2  task space (SPEC_VERSION, the default): the 34 fields below.
  3  the same + `goal_latent` (LATENT_DIM): the goal's latent (s1s2.latent layout), 0 when there
     is no target, as for target_rel. For the latent ablation (docs/policy.md).
The trainer and the runtime both build observations with `build_observation`, so the order and
meaning of features cannot drift between them.

Observation (OBS_DIM = 34 float32, world frame, metres, m/s, radians):

    field        size  meaning
    tip_pos         3  suction-tip position, forward kinematics of the measured joints
    tip_vel         3  tip velocity, Jacobian x measured joint velocities
    target_rel      3  pick point - tip (the goal's target in the world *now*); 0 when there is no
                       target or an item is held (the goal may already name the next item)
    target_vel      3  velocity of the pick point: belt velocity for belt-frame goals, 0 for
                       world-frame goals; 0 when there is no target or an item is held
    place_rel       3  place point - tip; while holding, the place latched at grasp time; 0 if none
    has_target      1  1: a pick target is given (and nothing is held)
    has_place       1  1: a place point is known
    suction         1  the last suction command, 0/1
    holding         1  the vacuum sensor: 1 while an item is attached to the cup
    joint_pos       4  measured joint positions (description order)
    joint_vel       4  measured joint velocities
    belt_speed      1  belt speed from the belt state (m/s)
    target_fine     3  tanh(target_rel / FINE_SCALE_M): centimetre resolution where the grasp is
                       decided (a global normalisation of target_rel, std ~0.3 m, blurs it)
    place_fine      3  tanh(place_rel / FINE_SCALE_M): the same for the release

Spec v2 has no goal latent: a task-space policy needs where to pick and where to place, not the
class; the Goal message's latent is still validated by the GoalTracker. Spec v3 appends it
(docs/policy.md: the latent ablation measures what it adds).

Action chunk (K x ACTION_DIM float32, K = chunk_size from policy.json): for each of the next K
ticks, the tip position relative to the tip in the observation (3, metres; waypoint k is where
the tip should be k+1 ticks ahead) and a suction logit (1). The ONNX graph takes raw
observations and returns raw actions: normalisation lives inside the graph (its statistics are
also written to policy.json for inspection).
"""

from __future__ import annotations

import numpy as np

from s1s2.topics import LATENT_DIM

SPEC_VERSION = 2
SPEC_NAMES = {2: "task_space_tip_waypoints", 3: "task_space_tip_waypoints_goal_latent"}
SPEC_NAME = SPEC_NAMES[SPEC_VERSION]
N_JOINTS = 4

OBS_FIELDS: tuple[tuple[str, int], ...] = (
    ("tip_pos", 3),
    ("tip_vel", 3),
    ("target_rel", 3),
    ("target_vel", 3),
    ("place_rel", 3),
    ("has_target", 1),
    ("has_place", 1),
    ("suction", 1),
    ("holding", 1),
    ("joint_pos", N_JOINTS),
    ("joint_vel", N_JOINTS),
    ("belt_speed", 1),
    ("target_fine", 3),
    ("place_fine", 3),
)
OBS_DIM = sum(n for _, n in OBS_FIELDS)
LATENT_FIELD = ("goal_latent", LATENT_DIM)
ACTION_FIELDS: tuple[tuple[str, int], ...] = (("tip_offset", 3), ("suction_logit", 1))
ACTION_DIM = sum(n for _, n in ACTION_FIELDS)
FINE_SCALE_M = 0.03
ONNX_INPUT = "obs"  # float32 (1, OBS_DIM), raw
ONNX_OUTPUT = "actions"  # float32 (1, K, ACTION_DIM), raw


def field_slices() -> dict[str, slice]:
    out, i = {}, 0
    for name, n in OBS_FIELDS:
        out[name] = slice(i, i + n)
        i += n
    return out


OBS_SLICES = field_slices()  # spec v2; v3 only appends goal_latent, so these hold there too


def check_version(version) -> int:
    if version not in SPEC_NAMES:
        raise ValueError(
            f"spec_version {version!r} unknown; this runtime reads {', '.join(map(str, SPEC_NAMES))}"
        )
    return int(version)


def obs_fields(version: int = SPEC_VERSION) -> tuple[tuple[str, int], ...]:
    return OBS_FIELDS + ((LATENT_FIELD,) if check_version(version) == 3 else ())


def obs_dim(version: int = SPEC_VERSION) -> int:
    return sum(n for _, n in obs_fields(version))


def obs_slices(version: int = SPEC_VERSION) -> dict[str, slice]:
    return {**OBS_SLICES, **({LATENT_FIELD[0]: slice(OBS_DIM, OBS_DIM + LATENT_DIM)} if version == 3 else {})}


def build_observation(
    tip_pos,
    tip_vel,
    target,
    target_vel,
    place,
    has_target,
    has_place,
    suction,
    holding,
    joint_pos,
    joint_vel,
    belt_speed,
    latent=None,
) -> np.ndarray:
    """Raw features -> observation. Absolute `target` and `place` (world) go in; the relative
    fields are computed here and zeroed where the flags say absent. Works on one sample or a batch
    (leading dims); flags and belt_speed are scalars per sample. `latent` (LATENT_DIM) given: the
    spec-v3 observation (zeroed without a target), else spec v2."""
    tip = np.asarray(tip_pos, np.float64)
    has_t = np.asarray(has_target, np.float64)[..., None]
    has_p = np.asarray(has_place, np.float64)[..., None]
    on_t, on_p = has_t > 0.5, has_p > 0.5
    target_rel = np.where(on_t, np.asarray(target, np.float64) - tip, 0.0)  # where: no NaN from 0 * NaN
    place_rel = np.where(on_p, np.asarray(place, np.float64) - tip, 0.0)
    parts = [
        tip,
        np.asarray(tip_vel, np.float64),
        target_rel,
        np.where(on_t, np.asarray(target_vel, np.float64), 0.0),
        place_rel,
        on_t.astype(np.float64),
        on_p.astype(np.float64),
        np.asarray(suction, np.float64)[..., None],
        np.asarray(holding, np.float64)[..., None],
        np.asarray(joint_pos, np.float64),
        np.asarray(joint_vel, np.float64),
        np.asarray(belt_speed, np.float64)[..., None],
        np.tanh(target_rel / FINE_SCALE_M),
        np.tanh(place_rel / FINE_SCALE_M),
    ]
    if latent is not None:
        parts.append(np.where(on_t, np.asarray(latent, np.float64), 0.0))
    for (name, n), p in zip(obs_fields(3 if latent is not None else 2), parts, strict=True):
        if p.shape[-1] != n:
            raise ValueError(f"observation field '{name}' needs {n} values, got shape {p.shape}")
    return np.concatenate(parts, axis=-1).astype(np.float32)


def spec_dict(chunk_size: int, version: int = SPEC_VERSION) -> dict:
    """What policy.json records about the interface (checked at load)."""
    return {
        "spec_version": check_version(version),
        "spec_name": SPEC_NAMES[version],
        "obs_fields": [list(f) for f in obs_fields(version)],
        "obs_dim": obs_dim(version),
        "action_fields": [list(f) for f in ACTION_FIELDS],
        "action_dim": ACTION_DIM,
        "chunk_size": int(chunk_size),
        "onnx_input": ONNX_INPUT,
        "onnx_output": ONNX_OUTPUT,
    }
