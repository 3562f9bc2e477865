"""Lighting classifier: training on separable data, save/load round trip, bad files, NaN features."""

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest

from adapter_manager.classifier import ClassifierFileError, LightingClassifier, untrained
from adapter_manager.configuration_classifier import LightingClassifierConfig
from adapter_manager.features import FEATURE_NAMES
from s1s2_training.lighting.train import evaluate, fit

CLASSES = ["bright", "dim", "warm"]


def toy_data(n=60, seed=0):
    """Three classes separated along mean_luma and gw_r_over_b."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.9, 1.1, size=(n, len(FEATURE_NAMES)))
    y = np.arange(n) % 3
    li, ri = FEATURE_NAMES.index("mean_luma"), FEATURE_NAMES.index("gw_r_over_b")
    x[:, li] = np.where(y == 1, 0.15, 0.6) + rng.normal(0, 0.03, n)
    x[:, ri] = np.where(y == 2, 1.6, 1.0) + rng.normal(0, 0.05, n)
    return x, y


@pytest.fixture
def model():
    x, y = toy_data()
    return fit(x, y, LightingClassifierConfig(class_names=CLASSES, max_iter=500))


def test_fit_learns_separable_classes(model):
    xt, yt = toy_data(seed=1)
    metrics = evaluate(model, xt, yt)
    assert metrics["accuracy"] >= 0.95
    assert np.array(metrics["confusion_matrix"]).sum() == len(yt)
    p = model.predict_proba(xt)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)


def test_untrained_model_is_uniform():
    m = untrained(LightingClassifierConfig(class_names=CLASSES))
    np.testing.assert_allclose(m.predict_proba(toy_data()[0][0]), 1 / 3)
    assert not m.trained


def test_save_load_round_trip(model, tmp_path):
    path = model.save(tmp_path / "sub" / "classifier.json")
    loaded = LightingClassifier.load(path)
    x, _ = toy_data(seed=2)
    np.testing.assert_allclose(loaded.predict_proba(x), model.predict_proba(x))
    assert loaded.class_names == CLASSES and loaded.feature_names == list(FEATURE_NAMES)
    assert loaded.trained and loaded.config.feature_params == model.config.feature_params


def test_missing_file_names_path(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(ClassifierFileError, match="nope.json"):
        LightingClassifier.load(path)


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        json.dumps({"format": "something-else"}),
        json.dumps({"format": "s1s2-lighting-classifier", "version": 99}),
        json.dumps({"format": "s1s2-lighting-classifier", "version": 1, "config": {"class_names": ["a"]}}),
    ],
)
def test_corrupt_file_names_path(tmp_path, content):
    path = tmp_path / "corrupt.json"
    path.write_text(content)
    with pytest.raises(ClassifierFileError, match="corrupt.json"):
        LightingClassifier.load(path)


def test_wrong_shapes_and_nan_weights_rejected(model, tmp_path):
    data = model.to_dict()
    data["weights"] = data["weights"][:2]
    (tmp_path / "a.json").write_text(json.dumps(data))
    with pytest.raises(ClassifierFileError, match="a.json.*shape"):
        LightingClassifier.load(tmp_path / "a.json")
    data = model.to_dict()
    data["bias"][0] = None  # JSON has no NaN: a null is what a broken writer leaves
    (tmp_path / "b.json").write_text(json.dumps(data))
    with pytest.raises(ClassifierFileError, match="b.json"):
        LightingClassifier.load(tmp_path / "b.json")


def test_nan_features_are_imputed_not_propagated(model):
    x, y = toy_data(seed=3)
    row = x[y == 2][0].copy()
    row[FEATURE_NAMES.index("mean_luma")] = np.nan  # the r/b feature still says "warm"
    pred = model.predict(row)
    assert np.all(np.isfinite(pred.probabilities))
    assert pred.n_imputed == 1 and pred.label == "warm"
    all_nan = model.predict(np.full(len(FEATURE_NAMES), np.nan))
    np.testing.assert_allclose(all_nan.probabilities, 1 / 3)
    assert all_nan.n_imputed == len(FEATURE_NAMES)


def test_wrong_feature_length_raises(model):
    with pytest.raises(ValueError, match="expected 15 features"):
        model.predict_proba(np.zeros(3))


@pytest.mark.parametrize(
    "kwargs, msg",
    [
        ({"class_names": ["only"]}, "at least 2"),
        ({"class_names": ["a", "a"]}, "unique"),
        ({"class_names": ["a", "b"], "feature_names": ["mean_luma", "bogus"]}, "bogus"),
        ({"class_names": ["a", "b"], "l2": -1.0}, "l2"),
        ({"class_names": ["a", "b"], "learning_rate": float("nan")}, "learning_rate"),
        ({"class_names": ["a", "b"], "max_iter": 0}, "max_iter"),
        ({"class_names": ["a", "b"], "feature_names": ["mean_luma"], "log_features": ["flicker"]}, "flicker"),
    ],
)
def test_config_validation_names_bad_value(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        LightingClassifierConfig(**kwargs)


def test_fit_rejects_bad_labels():
    x, y = toy_data()
    with pytest.raises(ValueError, match="labels"):
        fit(x, y + 5, LightingClassifierConfig(class_names=CLASSES))


def test_far_from_every_domain_is_unknown_with_low_confidence():
    """The Mahalanobis detector: frames near a trained domain keep their label, a frame far from
    all of them is UNKNOWN whatever the softmax says (a linear model is confident far away)."""
    from adapter_manager.classifier import UNKNOWN
    from adapter_manager.features import FEATURE_NAMES
    from s1s2_training.lighting.train import calibrate_ood, fit_ood

    rng = np.random.default_rng(0)
    n, f = 200, len(FEATURE_NAMES)
    centres = {"a": np.full(f, 0.3), "b": np.full(f, 0.6)}
    xs = np.concatenate([c + 0.01 * rng.standard_normal((n, f)) for c in centres.values()])
    ys = np.repeat([0, 1], n)
    model = fit(xs, ys, LightingClassifierConfig(class_names=list(centres), log_features=[], max_iter=300))
    fit_ood(model, xs, ys)
    calibrate_ood(model, np.concatenate([c + 0.01 * rng.standard_normal((50, f)) for c in centres.values()]))
    near = model.predict(centres["b"] + 0.01 * rng.standard_normal(f))
    assert near.label == "b" and near.known and near.ood_distance < model.ood_threshold
    far = model.predict(np.full(f, 2.5))  # the softmax would say "b" with certainty
    assert far.label == UNKNOWN and not far.known and far.confidence < 0.5 and far.nearest == "b"
    again = type(model).load(model.save(Path(tempfile.mkdtemp()) / "c.json"))
    assert again.predict(np.full(f, 2.5)).label == UNKNOWN  # the detector is saved with the model
