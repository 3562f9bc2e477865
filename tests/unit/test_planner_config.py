"""PlannerConfig validation: every bad value is named in the error."""

import math
from pathlib import Path

import pytest

from s1s2.params import ConfigError
from s1s2.topics import LATENT_DIM
from vlm_planner.config import PlannerConfig, PlannerNodeConfig


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
        ("belt_margin", math.inf, r"belt_margin.*inf"),
        ("cell", "config/no_cell.yaml", r"'cell'.*no_cell.yaml"),
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


def test_cell_facts_come_from_the_cell_description(tmp_path):
    from s1s2.cell import DEFAULT_CELL

    cfg = PlannerConfig()
    assert cfg.classes == DEFAULT_CELL.class_names and cfg.class_to_bin == DEFAULT_CELL.class_to_bin
    assert cfg.pick_plane_z == DEFAULT_CELL.belt.surface_height
    other = tmp_path / "cell.yaml"
    text = Path(DEFAULT_CELL.source).read_text().replace("{bin_id: glass,", "{bin_id: compost,")
    other.write_text(text)
    with pytest.raises(ConfigError, match=r"'cell'.*glass_bottle.*unknown bin 'glass'"):
        PlannerConfig(cell=str(other))


def test_node_config_adds_the_node_parameters_only():
    node = PlannerNodeConfig(rate_hz=2.0, min_confidence=0.4)
    assert node.planner_config() == PlannerConfig(min_confidence=0.4)
    with pytest.raises(ConfigError, match=r"rate_hz.*50"):
        PlannerNodeConfig(rate_hz=50.0)
