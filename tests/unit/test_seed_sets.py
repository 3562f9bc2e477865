"""The end-to-end seed sets against the scenes every model trained or was tuned on: a scene (sim
seed at the default belt speed) a model has seen is not a held-out scene for that model."""

from s1s2_training.policy import build as policy_build
from s1s2_training.policy.evaluate import DEV_SEEDS, STACK_TEST_SEEDS, TEST_SEEDS
from s1s2_training.vlm import build_adapters
from s1s2_training.vlm import data as dm
from s1s2_training.vlm.build import Recipe


def _vlm_scenes() -> set[int]:
    r = Recipe.full()
    n = build_adapters.max_train_episodes()  # episodes split over modes: n seeds of each is a superset
    return (
        set(dm.seeds(dm.TRAIN_DEFAULT_SEED0, r.train_default_episodes))
        | set(dm.seeds(dm.TRAIN_DENSE_SEED0, r.train_dense_episodes))
        | set(dm.seeds(dm.CALIB_DEFAULT_SEED0, r.calib_default_episodes))
        | set(dm.seeds(dm.CALIB_DENSE_SEED0, r.calib_dense_episodes))
        | set(dm.seeds(dm.DOMAIN_TRAIN_DEFAULT_SEED0, n))
        | set(dm.seeds(dm.DOMAIN_TRAIN_DENSE_SEED0, n))
    )


def _policy_scenes() -> set[int]:
    c = policy_build.BuildConfig()
    base = policy_build.EXPERT_SEED_BASE + 10_000 * c.seed
    dagger = policy_build.DAGGER_SEED_BASE + 10_000 * c.seed
    return set(range(base, base + c.expert_episodes)) | set(range(dagger, dagger + 1000 * c.dagger_rounds))


def test_the_stack_test_seeds_are_held_out_from_every_model():
    assert not set(STACK_TEST_SEEDS) & (_vlm_scenes() | _policy_scenes() | set(DEV_SEEDS))


def test_the_policy_test_seeds_are_held_out_from_the_policy_but_not_from_the_vlm():
    """Why the whole stack has its own set: the policy's held-out seeds are sim VLM training
    scenes, and its dev seeds are adapter training scenes."""
    assert not set(TEST_SEEDS) & _policy_scenes()
    assert set(TEST_SEEDS) <= _vlm_scenes() and set(DEV_SEEDS) & _vlm_scenes()
