"""Input colour constancy of the VLM (vlm_planner.colour): the gains undo a global colour cast,
leave frames in the reference light alone, never blow up a black frame, and bad card entries are
refused with the bad value named."""

from __future__ import annotations

import numpy as np
import pytest

from vlm_planner.colour import CARD_KEY, GAIN_RANGE, InputNorm, for_adapter, reference_of

REF = (91.0, 92.0, 89.0)


def scene(rng, ref=REF):
    """A belt-coloured frame (the median is the belt) with a few bright items."""
    img = np.empty((60, 80, 3), np.float32)
    img[:] = ref
    img += rng.normal(0, 3, img.shape)
    for _ in range(4):
        y, x = rng.integers(0, 45), rng.integers(0, 65)
        img[y : y + 12, x : x + 12] = rng.uniform(20, 150, 3)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def test_gains_undo_a_global_colour_cast_and_leave_reference_light_alone():
    rng = np.random.default_rng(0)
    norm = InputNorm(REF)
    base = scene(rng)
    # at the reference light the frame comes back (almost) unchanged
    assert np.abs(norm.apply(base).astype(int) - base).max() <= 2
    for cast in ((1.4, 1.0, 0.6), (0.45, 0.5, 0.55), (0.9, 1.1, 1.0)):  # tungsten, dim, fluorescent
        tinted = np.clip(np.rint(base * np.float32(cast)), 0, 255).astype(np.uint8)
        before = np.abs(tinted.astype(int) - base).mean()
        after = np.abs(norm.apply(tinted).astype(int) - base).mean()
        assert after < 0.15 * before and after < 2.5, (cast, before, after)


def test_batches_match_frames_and_reference_of_is_the_median_light():
    rng = np.random.default_rng(1)
    frames = np.stack([scene(rng) for _ in range(5)])
    norm = InputNorm(reference_of(frames))
    assert np.allclose(norm.reference_rgb, REF, atol=1.0)
    batch = norm.apply(frames)
    assert batch.shape == frames.shape and batch.dtype == np.uint8
    for i in range(len(frames)):
        assert np.array_equal(batch[i], norm.apply(frames[i]))


def test_a_black_frame_is_not_stretched_past_the_gain_limit():
    norm = InputNorm(REF)
    black = np.zeros((10, 10, 3), np.uint8)
    black[0, 0] = 5
    assert np.all(norm.gains(black) <= GAIN_RANGE[1])
    assert norm.apply(black).max() <= 5 * GAIN_RANGE[1]


def test_card_entries():
    assert InputNorm.from_card({}) is None  # a user's model: frames go in unchanged
    n = InputNorm.from_card({CARD_KEY: {"method": "channel_median", "reference_rgb": [91, 92, 89]}})
    assert n.reference_rgb == REF and InputNorm.from_card({CARD_KEY: n.to_card()}) == n
    for bad, named in (
        ({"reference_rgb": [0, 300, 5]}, "reference_rgb"),
        ({"reference_rgb": [1, 2]}, "reference_rgb"),
        ({"reference_rgb": [90, float("nan"), 90]}, "reference_rgb"),
        ({"method": "grey_world", "reference_rgb": [9, 9, 9]}, "grey_world"),
        ([91, 92, 89], "input_normalisation"),
    ):
        with pytest.raises(ValueError, match=named):
            InputNorm.from_card({CARD_KEY: bad})
    with pytest.raises(ValueError, match="uint8"):
        InputNorm(REF).apply(np.zeros((4, 4, 3), np.float32))


def test_only_an_adapter_trained_on_raw_frames_gets_raw_frames():
    card = InputNorm((91.0, 92.0, 89.0))
    assert for_adapter(card, None) is card  # the base, or an adapter with no manifest yet
    assert for_adapter(card, True) is card
    assert for_adapter(card, False) is None
    assert for_adapter(None, True) is None  # a card without normalisation has nothing to apply
