"""The one sensor_msgs/Image -> RGB converter (s1s2.images) every node uses."""

import numpy as np
import pytest

from s1s2.images import SUPPORTED_ENCODINGS, image_to_rgb

RGB = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)


def test_colour_encodings_are_reordered_to_rgb():
    np.testing.assert_array_equal(image_to_rgb("rgb8", 2, 3, 9, RGB.tobytes()), RGB)
    np.testing.assert_array_equal(image_to_rgb("BGR8", 2, 3, 9, RGB[:, :, ::-1].tobytes()), RGB)
    rgba = np.concatenate([RGB, np.full((2, 3, 1), 255, np.uint8)], axis=2)
    np.testing.assert_array_equal(image_to_rgb("rgba8", 2, 3, 12, rgba.tobytes()), RGB)


def test_padded_rows_and_mono8_are_converted():
    padded = np.zeros((2, 11), np.uint8)
    padded[:, :9] = RGB.reshape(2, 9)
    np.testing.assert_array_equal(image_to_rgb("rgb8", 2, 3, 11, padded.tobytes()), RGB)
    grey = np.array([[1, 2, 3], [4, 5, 6]], np.uint8)
    out = image_to_rgb("mono8", 2, 3, 3, grey.tobytes())
    assert out.shape == (2, 3, 3) and np.all(out == grey[:, :, None])
    assert "mono8" in SUPPORTED_ENCODINGS


@pytest.mark.parametrize(
    "args, msg",
    [
        (("mono16", 2, 3, 6, b"\0" * 12), "unsupported image encoding 'mono16'"),
        (("rgb8", 0, 3, 9, b""), "no pixels"),
        (("rgb8", 2, 3, 8, b"\0" * 16), "step 8"),
        (("rgb8", 2, 3, 9, b"\0" * 10), "10 bytes"),
    ],
)
def test_bad_images_are_refused_naming_the_problem(args, msg):
    with pytest.raises(ValueError, match=msg):
        image_to_rgb(*args)
