"""The shipped adapters' recipe per domain (s1s2_training/vlm/build_adapters.py): the shared recipe,
with each domain's measured departures on top."""

from s1s2_training.vlm import build_adapters as ba
from s1s2_training.vlm.finetune import FinetuneConfig


def test_each_domain_gets_the_shared_recipe_with_its_overrides_on_top():
    shared = dict(ba.SHIPPED, seed=0)
    fields, episodes = ba.recipe_of("overcast_dim", shared, ba.TRAIN_EPISODES)
    assert fields == shared and episodes == ba.TRAIN_EPISODES
    fields, episodes = ba.recipe_of("low_sun_glare", shared, ba.TRAIN_EPISODES)
    assert episodes == 128 and fields["colour_constancy"] is False and fields["steps"] == 4800
    assert fields == shared | {"colour_constancy": False, "steps": 4800}
    FinetuneConfig(**fields)  # every override is a FinetuneConfig field, or train_episodes
    # recipe_of left the table alone
    assert ba.OVERRIDES["low_sun_glare"] == {"colour_constancy": False, "steps": 4800, "train_episodes": 128}
    assert ba.TRAIN_EPISODES == 64 and ba.max_train_episodes() == 128  # the seed-set test counts the largest


def test_a_per_domain_episode_count_is_taken_out_of_the_fields(monkeypatch):
    monkeypatch.setitem(ba.OVERRIDES, "overcast_dim", {"train_episodes": 80, "steps": 100})
    fields, episodes = ba.recipe_of("overcast_dim", dict(ba.SHIPPED), ba.TRAIN_EPISODES)
    assert episodes == 80 and fields["steps"] == 100 and "train_episodes" not in fields
    assert ba.max_train_episodes() == 128  # the seed-set test must count the largest (low sun's)
    monkeypatch.setitem(ba.OVERRIDES, "overcast_dim", {"train_episodes": 200})
    assert ba.max_train_episodes() == 200
    monkeypatch.setitem(ba.OVERRIDES, "overcast_dim", {"train_episodes": 80, "steps": 100})
    assert (
        ba.overrides_note() == "low_sun_glare: --no-colour-constancy --steps 4800 --train-episodes 128; "
        "overcast_dim: --train-episodes 80 --steps 100"
    )


def test_the_manifest_note_names_each_override_as_finetune_flags():
    assert ba.overrides_note() == "low_sun_glare: --no-colour-constancy --steps 4800 --train-episodes 128"


def test_every_override_names_a_domain_that_gets_an_adapter():
    assert set(ba.OVERRIDES) <= set(ba.domains())
