"""PlannerConfig validation: every bad value is named in the error."""

import math

import pytest

from s1s2.params import ConfigError
from s1s2.topics import LATENT_DIM
from vlm_planner.config import PlannerConfig, parse_class_bins


def test_defaults_are_valid_and_map_every_class_to_a_cell_bin():
    cfg = PlannerConfig()
    assert cfg.class_to_bin["pet_bottle"] == "plastic"
    assert cfg.class_to_bin["aluminium_can"] == "metal"
    assert cfg.class_to_bin["cardboard"] == cfg.class_to_bin["paper"] == "paper"
    assert cfg.class_to_bin["glass_bottle"] == "glass"
    assert cfg.class_to_bin["residual"] == "residual"
    assert LATENT_DIM == 32


@pytest.mark.parametrize(
    "field, value, pattern",
    [
        ("device", "tpu", r"device.*'tpu'.*cpu, cuda, auto"),
        ("quantization", "int3", r"quantization.*'int3'"),
        ("compute_dtype", "float8", r"compute_dtype.*'float8'"),
        ("coordinate_format", "polar", r"coordinate_format.*'polar'"),
        ("max_new_tokens", 0, r"max_new_tokens.*0"),
        ("max_new_tokens", 2.5, r"max_new_tokens.*2\.5"),
        ("max_resident_adapters", 0, r"max_resident_adapters.*0"),
        ("valid_for_s", math.nan, r"valid_for_s.*nan"),
        ("valid_for_s", -1.0, r"valid_for_s.*-1\.0"),
        ("min_confidence", 1.5, r"min_confidence.*1\.5"),
        ("pick_plane_z", math.inf, r"pick_plane_z.*inf"),
        ("model_id", "", r"model_id.*''"),
        ("instruction", "  ", r"instruction"),
        ("prompt_template", "no placeholder", r"prompt_template.*no placeholder"),
        ("allow_download", "yes", r"allow_download.*'yes'"),
        ("num_threads", -1, r"num_threads.*-1"),
    ],
)
def test_bad_values_are_named(field, value, pattern):
    with pytest.raises(ConfigError, match=pattern):
        PlannerConfig(**{field: value})


def test_class_bins_entries_are_checked():
    assert parse_class_bins(["a=plastic", " b = metal "]) == {"a": "plastic", "b": "metal"}
    with pytest.raises(ConfigError, match=r"'pet_bottle'.*not 'class=bin'"):
        parse_class_bins(["pet_bottle"])
    with pytest.raises(ConfigError, match=r"'x' is mapped twice"):
        parse_class_bins(["x=plastic", "x=metal"])
    with pytest.raises(ConfigError, match="empty"):
        parse_class_bins([])
    with pytest.raises(ConfigError, match=r"'pet_bottle'.*unknown bin 'compost'"):
        PlannerConfig(class_bins=("pet_bottle=compost",))
