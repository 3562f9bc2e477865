"""Lighting classifier: standardised features -> multinomial logistic regression (numpy only),
with an "unknown" answer for lighting far from every trained domain.

Out-of-distribution test (Lee et al. 2018, "Mahalanobis" detector): the standardised feature
vector's Mahalanobis distance to the nearest class mean under the pooled within-class covariance.
Above `ood_threshold` (calibrated on held-out frames of the trained domains, s1s2_training.lighting)
the prediction is UNKNOWN with a low confidence, whatever the softmax says: a logistic regression
is confidently wrong far from its training data.

Saved as one small JSON file holding the config (class names, feature names, feature parameters),
the normalisation stats (mean/std of the transformed features), weights and biases, and whether the
model was trained (and on what). Training lives in `s1s2_training.lighting`; this module only
predicts, so the runtime needs numpy and nothing else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from adapter_manager.configuration_classifier import LightingClassifierConfig
from adapter_manager.features import FEATURE_NAMES
from s1s2.files import load_mapping

FORMAT = "s1s2-lighting-classifier"
FORMAT_VERSION = 2
UNKNOWN = "unknown"


class ClassifierFileError(RuntimeError):
    """A classifier file that is missing, unreadable or inconsistent (the message names the path)."""


@dataclass
class Prediction:
    label: str  # a class name, or UNKNOWN
    confidence: float  # probability of `label`; for UNKNOWN, how far inside the known domains (< 0.5)
    probabilities: np.ndarray  # one per known class, sums to 1
    n_imputed: int  # non-finite input features replaced by their training mean
    ood_distance: float = 0.0  # Mahalanobis distance to the nearest class mean (nan: no OOD model)
    nearest: str = ""  # the most probable known class (also when UNKNOWN)

    @property
    def known(self) -> bool:
        return self.label != UNKNOWN


@dataclass
class LightingClassifier:
    config: LightingClassifierConfig
    mean: np.ndarray  # (F,) of transformed features
    std: np.ndarray  # (F,)
    weights: np.ndarray  # (C, F)
    bias: np.ndarray  # (C,)
    trained: bool = False
    info: dict = field(default_factory=dict)  # provenance: data, seed, metrics, notes
    class_means: np.ndarray | None = None  # (C, F) standardised; None: no OOD model
    inv_cov: np.ndarray | None = None  # (F, F) inverse pooled within-class covariance
    ood_threshold: float = float("inf")

    def __post_init__(self):
        c, f = len(self.config.class_names), len(self.config.feature_names)
        self.mean = np.asarray(self.mean, dtype=np.float64).reshape(-1)
        self.std = np.asarray(self.std, dtype=np.float64).reshape(-1)
        self.weights = np.asarray(self.weights, dtype=np.float64)
        self.bias = np.asarray(self.bias, dtype=np.float64).reshape(-1)
        shapes = {"mean": (self.mean.shape, (f,)), "std": (self.std.shape, (f,))}
        shapes |= {"weights": (self.weights.shape, (c, f)), "bias": (self.bias.shape, (c,))}
        for name, (got, want) in shapes.items():
            if got != want:
                raise ValueError(f"{name} has shape {got}, expected {want} ({c} classes, {f} features)")
        for name in ("mean", "std", "weights", "bias"):
            if not np.all(np.isfinite(getattr(self, name))):
                raise ValueError(f"{name} contains non-finite values")
        if np.any(self.std <= 0):
            raise ValueError(f"std must be > 0, got {self.std.tolist()}")
        if self.class_means is not None:
            self.class_means = np.asarray(self.class_means, dtype=np.float64)
            self.inv_cov = np.asarray(self.inv_cov, dtype=np.float64)
            if self.class_means.shape != (c, f) or self.inv_cov.shape != (f, f):
                raise ValueError(
                    f"OOD model shapes {self.class_means.shape}, {self.inv_cov.shape}, expected ({c}, {f}), ({f}, {f})"
                )
            if not (np.all(np.isfinite(self.class_means)) and np.all(np.isfinite(self.inv_cov))):
                raise ValueError("OOD model contains non-finite values")
            if not self.ood_threshold > 0:
                raise ValueError(f"ood_threshold must be > 0, got {self.ood_threshold!r}")
        self._index = [FEATURE_NAMES.index(n) for n in self.config.feature_names]
        self._log_mask = np.array([n in self.config.log_features for n in self.config.feature_names])

    @property
    def class_names(self) -> list[str]:
        return self.config.class_names

    @property
    def feature_names(self) -> list[str]:
        return self.config.feature_names

    def transform(self, features: np.ndarray) -> np.ndarray:
        """Full feature vectors (order `FEATURE_NAMES`, shape (F_all,) or (N, F_all)) -> model inputs
        (before standardisation): selected, log-transformed where configured. NaNs pass through."""
        x = np.asarray(features, dtype=np.float64)
        if x.shape[-1] != len(FEATURE_NAMES):
            raise ValueError(
                f"expected {len(FEATURE_NAMES)} features (FEATURE_NAMES order), got shape {x.shape}"
            )
        x = x[..., self._index].copy()
        with np.errstate(invalid="ignore", divide="ignore"):
            x[..., self._log_mask] = np.log(np.maximum(x[..., self._log_mask], 0.0) + self.config.log_eps)
        return x

    def logits_standardised(self, z: np.ndarray) -> np.ndarray:
        return z @ self.weights.T + self.bias

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities for feature vectors in `FEATURE_NAMES` order ((F,) -> (C,), (N, F) -> (N, C)).

        Non-finite features are imputed with the training mean (they then carry no evidence);
        a vector with no finite feature gets the uniform distribution.
        """
        z = (self.transform(features) - self.mean) / self.std
        z = np.where(np.isfinite(z), z, 0.0)
        logits = self.logits_standardised(z)
        logits -= logits.max(axis=-1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=-1, keepdims=True)

    def ood_distance(self, features: np.ndarray) -> np.ndarray:
        """Mahalanobis distance to the nearest class mean ((F,) -> (), (N, F) -> (N,)); nan without
        an OOD model. Non-finite features are imputed with the training mean, as in predict."""
        if self.class_means is None:
            return np.full(np.asarray(features).shape[:-1], np.nan)
        z = (self.transform(features) - self.mean) / self.std
        z = np.where(np.isfinite(z), z, 0.0)
        d = z[..., None, :] - self.class_means  # (..., C, F)
        m2 = np.einsum("...cf,fg,...cg->...c", d, self.inv_cov, d)
        return np.sqrt(np.maximum(m2.min(axis=-1), 0.0))

    def predict(self, features: np.ndarray) -> Prediction:
        """Prediction for one feature vector (order `FEATURE_NAMES`)."""
        x = np.asarray(features, dtype=np.float64).reshape(-1)
        n_bad = int(np.count_nonzero(~np.isfinite(self.transform(x))))
        if n_bad == len(self.feature_names):
            p = np.full(len(self.class_names), 1.0 / len(self.class_names))
            return Prediction(UNKNOWN, 0.0, p, n_bad, float("nan"), self.class_names[0])
        p = self.predict_proba(x)
        k = int(np.argmax(p))
        dist = float(self.ood_distance(x))
        if dist > self.ood_threshold:  # far from every trained domain
            return Prediction(
                UNKNOWN, float(0.5 * self.ood_threshold / dist), p, n_bad, dist, self.class_names[k]
            )
        return Prediction(self.class_names[k], float(p[k]), p, n_bad, dist, self.class_names[k])

    # -- persistence ---------------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "trained": bool(self.trained),
            "config": self.config.to_dict(),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "weights": self.weights.tolist(),
            "bias": self.bias.tolist(),
            "ood": None
            if self.class_means is None
            else {
                "method": "mahalanobis distance to the nearest class mean, pooled within-class covariance",
                "class_means": self.class_means.tolist(),
                "inv_cov": self.inv_cov.tolist(),
                "threshold": float(self.ood_threshold),
            },
            "info": self.info,
        }

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n")
        tmp.replace(path)  # atomic: a reader never sees half a file
        return path

    @classmethod
    def load(cls, path: str | Path) -> LightingClassifier:
        """Load a classifier JSON; any problem raises ClassifierFileError naming the path."""
        path = Path(path)
        data = load_mapping(
            path,
            "lighting classifier",
            ClassifierFileError,
            "run `s1s2 models lighting_classifier` or fix the path",
        )
        if data.get("format") != FORMAT:
            raise ClassifierFileError(f"lighting classifier {str(path)!r}: not a {FORMAT} file")
        if data.get("version") != FORMAT_VERSION:
            raise ClassifierFileError(
                f"lighting classifier {str(path)!r}: format version {data.get('version')!r}, "
                f"this code reads {FORMAT_VERSION}"
            )
        try:
            return cls(
                config=LightingClassifierConfig(**data["config"]),
                mean=data["mean"],
                std=data["std"],
                weights=data["weights"],
                bias=data["bias"],
                trained=bool(data.get("trained", False)),
                info=dict(data.get("info") or {}),
                **(
                    {}
                    if not data.get("ood")
                    else {
                        "class_means": data["ood"]["class_means"],
                        "inv_cov": data["ood"]["inv_cov"],
                        "ood_threshold": float(data["ood"]["threshold"]),
                    }
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ClassifierFileError(f"lighting classifier {str(path)!r} is inconsistent: {exc!r}") from exc


def untrained(config: LightingClassifierConfig) -> LightingClassifier:
    """Zero-weight classifier (uniform output); only for tests and as the trainer's starting point."""
    c, f = len(config.class_names), len(config.feature_names)
    return LightingClassifier(config, np.zeros(f), np.ones(f), np.zeros((c, f)), np.zeros(c), trained=False)
