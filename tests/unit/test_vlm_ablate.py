"""The VLM pretraining ablations: every variant is the shipped recipe at the short budget, changed
in exactly the settings it names (a renamed PretrainConfig field would fail here, not after a
13-minute run)."""

from dataclasses import asdict

import pytest


def _cfg(variant):
    from s1s2_training.vlm.ablate import config

    return asdict(config(variant, seed=0)[0])


@pytest.mark.parametrize(
    "variant", ["no_patch_head", "no_soft_numbers", "no_sinusoid_numbers", "label_weight_1"]
)
def test_each_variant_changes_only_what_it_names(variant):
    from s1s2_training.vlm.ablate import VARIANTS

    full, other = _cfg("full"), _cfg(variant)
    changed = {k for k in full if full[k] != other[k]}
    assert changed == set(VARIANTS[variant][0])
    for k, v in VARIANTS[variant][0].items():
        assert other[k] == v


def test_full_is_the_shipped_recipe_at_the_short_budget():
    from s1s2_training.vlm.ablate import SHORT
    from s1s2_training.vlm.build import Recipe

    full = _cfg("full")
    for k, v in Recipe.full().pretrain.items():
        assert full[k] == SHORT.get(k, v)
    assert full["aux_weight"] > 0 and full["sigma_px"] > 0 and full["sinusoid_numbers"]


def test_an_unknown_variant_is_refused_by_name():
    from s1s2_training.vlm.ablate import main

    with pytest.raises(SystemExit, match="no_such"):
        main(["--variants", "full,no_such"])
