"""Fit and evaluate the lighting classifier (numpy only: multinomial logistic regression, full-batch
Adam on the L2-regularised cross-entropy of standardised features)."""

from __future__ import annotations

import numpy as np

from adapter_manager.classifier import LightingClassifier, untrained
from adapter_manager.configuration_classifier import LightingClassifierConfig


def fit(features: np.ndarray, labels: np.ndarray, config: LightingClassifierConfig) -> LightingClassifier:
    """Train on feature vectors (N, len(FEATURE_NAMES)) and integer labels (N,) indexing
    `config.class_names`. Rows with non-finite features are dropped (they would poison the stats)."""
    x_all = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if x_all.ndim != 2 or len(x_all) != len(y) or len(y) == 0:
        raise ValueError(f"features {x_all.shape} and labels {y.shape} do not match")
    n_classes = len(config.class_names)
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"labels must be in [0, {n_classes}), got range [{y.min()}, {y.max()}]")
    model = untrained(config)
    x = model.transform(x_all)
    ok = np.all(np.isfinite(x), axis=1)
    x, y = x[ok], y[ok]
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std = np.where(std > 1e-8, std, 1.0)  # a constant feature carries no information; keep it inert
    z = (x - mean) / std
    onehot = np.eye(n_classes)[y]
    w = np.zeros((n_classes, z.shape[1]))
    b = np.zeros(n_classes)
    # Adam on the mean cross-entropy + l2/2 * |W|^2.
    m_w, v_w, m_b, v_b = (np.zeros_like(w), np.zeros_like(w), np.zeros_like(b), np.zeros_like(b))
    beta1, beta2, eps, lr = 0.9, 0.999, 1e-8, config.learning_rate
    prev = np.inf
    for it in range(1, config.max_iter + 1):
        logits = z @ w.T + b
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        loss = -np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1.0))) + 0.5 * config.l2 * np.sum(
            w * w
        )
        g = (p - onehot) / len(y)
        g_w = g.T @ z + config.l2 * w
        g_b = g.sum(axis=0)
        for param, grad, m, v in ((w, g_w, m_w, v_w), (b, g_b, m_b, v_b)):
            m *= beta1
            m += (1 - beta1) * grad
            v *= beta2
            v += (1 - beta2) * grad * grad
            param -= lr * (m / (1 - beta1**it)) / (np.sqrt(v / (1 - beta2**it)) + eps)
        if abs(prev - loss) < config.tol:
            break
        prev = loss
    model = LightingClassifier(config, mean, std, w, b, trained=True)
    model.info["train_loss"] = float(loss)
    model.info["train_iterations"] = it
    return model


def evaluate(model: LightingClassifier, features: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy, per-class recall and the confusion matrix (rows = true class, cols = predicted)."""
    y = np.asarray(labels, dtype=np.int64)
    pred = np.argmax(model.predict_proba(np.asarray(features, dtype=np.float64)), axis=1)
    n = len(model.class_names)
    conf = np.zeros((n, n), dtype=np.int64)
    np.add.at(conf, (y, pred), 1)
    support = conf.sum(axis=1)
    recall = {
        c: (float(conf[i, i] / support[i]) if support[i] else None) for i, c in enumerate(model.class_names)
    }
    return {
        "accuracy": float(np.mean(pred == y)) if len(y) else float("nan"),
        "n": int(len(y)),
        "per_class_recall": recall,
        "confusion_matrix": conf.tolist(),
        "confusion_labels": list(model.class_names),
    }


def fit_ood(model: LightingClassifier, features: np.ndarray, labels: np.ndarray, ridge: float = 1e-3) -> None:
    """Class means and the inverse pooled within-class covariance of the standardised features
    (the Mahalanobis out-of-distribution model); the threshold is set by `calibrate_ood`."""
    x = model.transform(np.asarray(features, dtype=np.float64))
    y = np.asarray(labels, dtype=np.int64)
    ok = np.all(np.isfinite(x), axis=1)
    z = (x[ok] - model.mean) / model.std
    y = y[ok]
    means = np.stack([z[y == c].mean(axis=0) for c in range(len(model.class_names))])
    centred = z - means[y]
    cov = centred.T @ centred / max(1, len(z) - len(means)) + ridge * np.eye(z.shape[1])
    model.class_means = means
    model.inv_cov = np.linalg.inv(cov)


def calibrate_ood(
    model: LightingClassifier, features: np.ndarray, quantile: float = 0.995, margin: float = 1.2
) -> float:
    """Threshold = `margin` x the `quantile` of the distances of held-out frames of the TRAINED
    domains (never of unknown lighting): at most ~0.5 % of known frames are called unknown."""
    d = model.ood_distance(np.asarray(features, dtype=np.float64))
    model.ood_threshold = float(margin * np.quantile(d[np.isfinite(d)], quantile))
    return model.ood_threshold
