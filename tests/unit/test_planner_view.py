"""The VLM's input crop (vlm_planner.view): the box, its card entry, and the belt's box of the cell."""

from __future__ import annotations

import numpy as np
import pytest

from vlm_planner.view import InputCrop


def test_apply_cuts_the_box_of_frames_and_batches():
    frame = np.arange(240 * 320 * 3, dtype=np.int64).reshape(240, 320, 3)
    crop = InputCrop((0.25, 0.5, 0.75, 1.0))
    out = crop.apply(frame)
    assert out.shape == (120, 160, 3)
    assert out[0, 0, 0] == frame[120, 80, 0] and out[-1, -1, 2] == frame[239, 239, 2]
    batch = np.stack([frame, frame + 1])
    np.testing.assert_array_equal(crop.apply(batch)[1], out + 1)
    with pytest.raises(ValueError, match=r"\(240, 320\)"):
        crop.apply(frame[..., 0])


def test_to_unit_maps_the_box_onto_zero_one():
    crop = InputCrop((0.0, 0.1, 1.0, 0.5))  # rows 24..120 of a 240-row frame
    unit = crop.to_unit(np.array([[0.0, 24.0], [160.0, 72.0], [320.0, 120.0], [10.0, 200.0]]), 320, 240)
    np.testing.assert_allclose(unit, [[0, 0], [0.5, 0.5], [1, 1], [10 / 320, 176 / 96]])


def test_card_entries_round_trip_and_bad_ones_name_the_value():
    crop = InputCrop((0.0, 0.045833, 1.0, 0.379167))
    assert InputCrop.from_card({"input_crop": crop.to_card()}) == crop
    assert InputCrop.from_card({}) is None  # a hub model: the whole frame
    for bad in ([0.5, 0.0, 0.4, 1.0], [0, 0, 1], [0, 0, 1, float("nan")], [0, 0, 1.5, 1], [0, 0, True, 1]):
        with pytest.raises(ValueError, match="input_crop.box"):
            InputCrop.from_card({"input_crop": {"box": bad}})
    with pytest.raises(ValueError, match="input_crop = 'belt'"):
        InputCrop.from_card({"input_crop": "belt"})


def test_around_is_the_box_of_points_with_a_margin_clipped_to_the_frame():
    crop = InputCrop.around(np.array([[20.5, 30.2], [300.0, 80.0]]), 320, 240, 6.0)
    assert crop.pixels(320, 240) == (14, 24, 306, 86)
    wide = InputCrop.around(np.array([[2.0, 3.0], [318.0, 239.0]]), 320, 240, 6.0)
    assert wide.box == (0.0, 0.0, 1.0, 1.0)


def test_the_belts_box_holds_every_item_the_planner_may_be_asked_to_pick():
    """The box of the cell's belt (data.belt_crop) contains the pick pixel of every target of
    generated frames, and cuts away the bins below the belt."""
    from s1s2_training.vlm.data import FrameSpec, belt_crop, generate
    from s1s2_training.vlm.evaluate import camera

    cam = camera()
    crop = belt_crop(cam)
    u0, v0, u1, v1 = crop.pixels(cam.width, cam.height)
    assert v1 - v0 < cam.height / 2  # the bins' half of the frame is cut away
    d = generate(
        FrameSpec("dense", seeds=(4,), episode_s=8.0, frame_every_s=0.5, crop=crop.box), 32, progress=False
    )
    tgt = d["label"] >= 0
    assert tgt.sum() >= 5
    unit = crop.to_unit(d["uv"][tgt], cam.width, cam.height)
    assert np.all((unit >= 0) & (unit < 1))
    assert d["pixels"].shape[1:] == (32, 32, 3)
