"""Lighting features on synthetic images: each feature moves the way its name says."""

import numpy as np
import pytest

from adapter_manager.features import FEATURE_NAMES, FeatureExtractor, FeatureParams, features_dict


def scene(seed=0, h=120, w=160, gain=(1.0, 1.0, 1.0), offset=0.0):
    """Textured grey-ish scene with a few coloured patches, lit by per-channel `gain`."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 0.4, np.float32)
    img[h // 3 : 2 * h // 3] = 0.2
    for _ in range(5):
        y, x = rng.integers(0, h - 20), rng.integers(0, w - 30)
        img[y : y + 20, x : x + 30] = rng.uniform(0.2, 0.8, 3)
    img = img * np.asarray(gain, np.float32) + offset
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def feats(img):
    return features_dict(FeatureExtractor()(img))


def test_feature_vector_has_fixed_names_and_is_finite():
    v = FeatureExtractor()(scene())
    assert v.shape == (len(FEATURE_NAMES),)
    assert np.all(np.isfinite(v))
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)


def test_brighter_image_has_higher_luma():
    dim, bright = feats(scene(gain=(0.5, 0.5, 0.5))), feats(scene(gain=(1.4, 1.4, 1.4)))
    for name in ("mean_luma", "luma_p50", "luma_p95"):
        assert bright[name] > dim[name] + 0.05, name
    assert dim["dark_fraction"] >= bright["dark_fraction"]


def test_warm_cast_raises_r_over_b_and_cold_lowers_it():
    neutral = feats(scene())["gw_r_over_b"]
    warm = feats(scene(gain=(1.2, 1.0, 0.7)))["gw_r_over_b"]
    cold = feats(scene(gain=(0.8, 1.0, 1.2)))["gw_r_over_b"]
    assert warm > neutral * 1.3 and cold < neutral * 0.8


def test_green_cast_raises_g_ratio_and_chroma():
    neutral, green = feats(scene()), feats(scene(gain=(0.85, 1.15, 0.85)))
    assert green["gw_g_ratio"] > neutral["gw_g_ratio"] + 0.05
    assert green["chroma"] > neutral["chroma"]


def test_noise_raises_noise_estimate():
    clean = scene(h=240, w=320)
    rng = np.random.default_rng(1)
    noisy = np.clip(clean + rng.normal(0, 12, clean.shape), 0, 255).astype(np.uint8)
    n_clean, n_noisy = feats(clean)["noise_sigma"], feats(noisy)["noise_sigma"]
    assert n_noisy > 3 * max(n_clean, 1e-3)
    # Robust estimator: close to the true luma noise despite the patch edges. Independent noise of
    # std 12 per channel gives luma noise 12 * |(0.299, 0.587, 0.114)| = 8.0 grey levels.
    assert n_noisy == pytest.approx(12 * 0.668 / 255, rel=0.2)


def test_flicker_sequence_raises_flicker():
    steady, flick = FeatureExtractor(), FeatureExtractor()
    idx = FEATURE_NAMES.index("flicker")
    assert steady(scene())[idx] == 0.0  # one frame: no flicker information yet
    for i in range(8):
        f_steady = steady(scene(seed=0))[idx]
        f_flick = flick(scene(seed=0, gain=[1.0 + 0.3 * (-1) ** i] * 3))[idx]
    assert f_flick > 0.1 and f_steady < 0.01
    flick.reset()
    assert flick(scene())[idx] == 0.0


def test_glare_and_saturation_from_white_patch():
    img = scene()
    glary = img.copy()
    glary[:, :40] = 255
    base, g = feats(img), feats(glary)
    assert g["glare_fraction"] > 0.2 > base["glare_fraction"]
    assert g["saturated_fraction"] > 0.2 > base["saturated_fraction"]
    assert g["lr_luma_ratio"] > base["lr_luma_ratio"] * 1.2


def test_top_bottom_gradient():
    img = scene().astype(np.float32)
    ramp = np.linspace(1.4, 0.6, img.shape[0])[:, None, None]
    grad = np.clip(img * ramp, 0, 255).astype(np.uint8)
    assert feats(grad)["tb_luma_ratio"] > 1.3 * feats(scene())["tb_luma_ratio"]


def test_float_image_matches_uint8():
    u8 = scene()
    a, b = FeatureExtractor()(u8), FeatureExtractor()(u8.astype(np.float32) / 255.0)
    np.testing.assert_allclose(a, b, atol=1e-3)


def test_black_image_is_finite():
    assert np.all(np.isfinite(FeatureExtractor()(np.zeros((64, 64, 3), np.uint8))))


@pytest.mark.parametrize(
    "bad, msg",
    [
        (np.zeros((64, 64), np.uint8), "HxWx3"),
        (np.zeros((64, 64, 4), np.uint8), "HxWx3"),
        (np.zeros((4, 64, 3), np.uint8), "too small"),
        (np.zeros((64, 64, 3), np.int32), "dtype"),
        (np.full((64, 64, 3), np.nan, np.float32), "non-finite"),
        ([[1, 2, 3]], "numpy array"),
    ],
)
def test_bad_images_raise_clear_errors(bad, msg):
    with pytest.raises(ValueError, match=msg):
        FeatureExtractor()(bad)


def test_feature_params_validated():
    with pytest.raises(ValueError, match="flicker_window"):
        FeatureParams(flicker_window=1)
    with pytest.raises(ValueError, match="downscale_width"):
        FeatureParams(downscale_width=2)
