"""Custom lighting specs (beyond the six named domains): validated field by field, rendered."""

import numpy as np
import pytest

from conveyor_sim.cell import CellSim, SimConfig
from conveyor_sim.lighting import DOMAINS, custom_domain


def test_custom_spec_defaults_to_daylight_and_renders_differently():
    dom = custom_domain("teal_lab", colour_temp_k=12000, white_balance=(0.7, 1.1, 1.4), intensity=1.6)
    assert dom.name == "teal_lab" and dom.exposure == DOMAINS["daylight"].exposure
    sim = CellSim(SimConfig(seed=0, spawn_interval_s=0.0, camera_width=80, camera_height=60))
    try:
        day = sim.render().astype(float).reshape(-1, 3).mean(0)
        sim.set_lighting(dom)
        assert sim.lighting == "teal_lab"
        teal = sim.render().astype(float).reshape(-1, 3).mean(0)
        assert teal[2] / teal[0] > 1.3 * day[2] / day[0]  # much bluer
        sim.step(0.1)
        assert "teal_lab" in sim.score.domains  # time is scored under the spec's name
    finally:
        sim.close()


@pytest.mark.parametrize(
    "spec, pattern",
    [
        ({"intensity": 9.0}, r"intensity = 9.0 outside"),
        ({"colour_temp_k": float("nan")}, r"colour_temp_k = nan"),
        ({"white_balance": (1.0, 1.0)}, r"white_balance"),
        ({"direction": (0.0, 0.0, 1.0)}, r"direction.*pointing down"),
        ({"sparkle": 1.0}, r"unknown field.*sparkle"),
    ],
)
def test_bad_specs_are_refused_naming_the_field(spec, pattern):
    with pytest.raises(ValueError, match=pattern):
        custom_domain("x", **spec)
    with pytest.raises(ValueError, match="named domain"):
        custom_domain("daylight")


def test_named_domains_are_untouched():
    assert np.allclose(DOMAINS["daylight"].white_balance, (1.0, 1.0, 1.0))


def test_lighting_spec_parameter_is_validated_and_names_the_bad_value():
    from conveyor_sim.config import ConfigError, ConveyorSimConfig, parse_lighting_spec

    dom = parse_lighting_spec('{"name": "sodium_vapour", "colour_temp_k": 1900, "intensity": 0.7}')
    assert dom.name == "sodium_vapour" and dom.colour_temp_k == 1900.0 and dom.intensity == 0.7
    assert parse_lighting_spec("") is None
    for bad, words in (
        ('{"intensity": 99}', "intensity = 99"),
        ("[1, 2]", "expected a JSON object"),
        ("{not json", "lighting_spec"),
        ('{"name": "daylight"}', "not a named domain"),
        ('{"colour": 3}', "unknown field"),
    ):
        with pytest.raises(ConfigError, match="lighting_spec") as e:
            ConveyorSimConfig(lighting_spec=bad)
        assert words in str(e.value), str(e.value)
