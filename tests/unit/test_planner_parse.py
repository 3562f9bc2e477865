"""The answer parser: good answers become targets, anything else a hold -- never an exception."""

import math

import pytest

from vlm_planner.parse import parse_answer

CLASSES = ["pet_bottle", "aluminium_can", "glass_bottle"]


@pytest.mark.parametrize(
    "text, label, u, v",
    [
        ("label=pet_bottle u=120 v=45", "pet_bottle", 120.0, 45.0),
        ("  LABEL: Aluminium_Can  U: 10.5, V: 200 </s>", "aluminium_can", 10.5, 200.0),
        ("I see a bottle. label=glass_bottle u=0 v=239 done", "glass_bottle", 0.0, 239.0),
    ],
)
def test_good_answers(text, label, u, v):
    p = parse_answer(text, CLASSES, 320, 240)
    assert p.ok and p.reason == ""
    assert (p.label, p.u, p.v) == (label, u, v)


@pytest.mark.parametrize(
    "text, why",
    [
        ("", "empty"),
        (None, "empty"),
        ("465\ufffd39\ufffd53039", "no 'label='"),
        ("label=banana u=1 v=2", "unknown class 'banana'"),
        ("label=pet_bottle", "no numeric"),
        ("label=pet_bottle u=nan v=3", "no numeric"),
        ("label=pet_bottle u=inf v=3", "no numeric"),
        ("label=pet_bottle u=1e999 v=3", "non-finite"),
        ("label=pet_bottle u=12abc v=3", "no numeric"),
        ("label=pet_bottle u=320 v=10", "outside the 320x240 image"),
        ("label=pet_bottle u=-1 v=10", "outside"),
        ("u=10 v=10 label=pet_bottle", "no numeric"),  # coordinates must follow their label
    ],
)
def test_garbage_is_a_hold_with_a_reason(text, why):
    p = parse_answer(text, CLASSES, 320, 240)
    assert not p.ok and p.label == "" and math.isnan(p.u) and math.isnan(p.v)
    assert why in p.reason


def test_label_none_is_an_explicit_hold():
    p = parse_answer("label=none", CLASSES, 320, 240)
    assert not p.ok and p.hold


def test_norm1000_coordinates_scale_to_pixels():
    p = parse_answer("label=pet_bottle u=500 v=1000", CLASSES, 321, 241, "norm1000")
    assert p.ok and p.u == pytest.approx(160.0) and p.v == pytest.approx(240.0)
    assert not parse_answer("label=pet_bottle u=1001 v=0", CLASSES, 320, 240, "norm1000").ok


def test_sub_token_numbers_replace_the_printed_ones_only_nearby():
    p = parse_answer("label=pet_bottle u=120 v=45", CLASSES, 320, 240, numbers=(120.4, 44.7))
    assert p.ok and (p.u, p.v) == (120.4, 44.7)
    # numbers far from the printed ones belong to other tokens: the text wins
    p = parse_answer("label=pet_bottle u=120 v=45", CLASSES, 320, 240, numbers=(12.0, 44.7))
    assert p.ok and (p.u, p.v) == (120.0, 45.0)
    # norm1000 answers refine in their own units, then scale
    p = parse_answer("label=pet_bottle u=500 v=500", CLASSES, 321, 241, "norm1000", numbers=(502.0, 498.0))
    assert p.ok and math.isclose(p.u, 0.502 * 320) and math.isclose(p.v, 0.498 * 240)
    # an edge pixel's refinement stays in the image; a printed point outside it is not rescued
    p = parse_answer("label=pet_bottle u=319 v=0", CLASSES, 320, 240, numbers=(319.6, -0.4))
    assert p.ok and (p.u, p.v) == (319.0, 0.0)
    assert not parse_answer("label=pet_bottle u=320 v=5", CLASSES, 320, 240, numbers=(319.0, 5.0)).ok
    # a hold stays a hold whatever the numbers
    assert not parse_answer("label=none", CLASSES, 320, 240, numbers=(1.0, 2.0)).ok
