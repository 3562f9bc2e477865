"""The shipped adapters' recipe per domain (s1s2_training/vlm/build_adapters.py): the shared recipe,
with each domain's measured departures on top."""

from s1s2_training.vlm import build_adapters as ba
from s1s2_training.vlm.finetune import FinetuneConfig


def test_each_domain_gets_the_shared_recipe_with_its_overrides_on_top():
    shared = dict(ba.SHIPPED, seed=0)
    fields, episodes = ba.recipe_of("overcast_dim", shared, ba.TRAIN_EPISODES)
    assert fields == shared and episodes == ba.TRAIN_EPISODES
    fields, episodes = ba.recipe_of("low_sun_glare", shared, ba.TRAIN_EPISODES)
    assert episodes == 64 and fields["steps"] == 2400 and fields["colour_constancy"] is False
    assert {k: v for k, v in fields.items() if k not in ("steps", "colour_constancy")} == {
        k: v for k, v in shared.items() if k != "steps"
    }
    FinetuneConfig(**fields)  # every override is a FinetuneConfig field, or train_episodes
    assert "train_episodes" in ba.OVERRIDES["low_sun_glare"]  # recipe_of did not consume the table
    assert ba.max_train_episodes() == 64


def test_the_manifest_note_names_each_override_as_finetune_flags():
    assert ba.overrides_note() == "low_sun_glare: --no-colour-constancy --steps 2400 --train-episodes 64"


def test_every_override_names_a_domain_that_gets_an_adapter():
    assert set(ba.OVERRIDES) <= set(ba.domains())
