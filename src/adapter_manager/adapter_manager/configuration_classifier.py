"""Configuration of the lighting classifier, kept apart from the model code and saved with it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from adapter_manager.features import FEATURE_NAMES, FeatureParams


@dataclass
class LightingClassifierConfig:
    """Standardised features -> multinomial logistic regression over lighting domains.

    class_names: lighting domains, in output order.
    feature_names: features the model reads, in input order (must be known to `features.py`).
    log_features: features fed to the model as log(x + log_eps) (ratios and heavy-tailed
        statistics become closer to linear in the log domain).
    l2: L2 penalty on the weights (not the biases) used in training.
    learning_rate, max_iter, tol: full-batch Adam settings of the trainer.
    feature_params: how the features are computed (downscale width, noise crop, flicker window).
    """

    class_names: list[str]
    feature_names: list[str] = field(default_factory=lambda: list(FEATURE_NAMES))
    log_features: list[str] = field(
        default_factory=lambda: [
            "gw_r_over_b",
            "gw_g_ratio",
            "noise_sigma",
            "flicker",
            "lr_luma_ratio",
            "tb_luma_ratio",
        ]
    )
    log_eps: float = 1e-4
    l2: float = 1e-3
    learning_rate: float = 0.05
    max_iter: int = 3000
    tol: float = 1e-7
    feature_params: FeatureParams = field(default_factory=FeatureParams)

    def __post_init__(self):
        if isinstance(self.feature_params, dict):
            self.feature_params = FeatureParams(**self.feature_params)
        self.class_names = list(self.class_names)
        self.feature_names = list(self.feature_names)
        self.log_features = list(self.log_features)
        if len(self.class_names) < 2:
            raise ValueError(f"class_names needs at least 2 classes, got {self.class_names!r}")
        if len(set(self.class_names)) != len(self.class_names) or any(
            not isinstance(c, str) or not c for c in self.class_names
        ):
            raise ValueError(f"class_names must be unique non-empty strings, got {self.class_names!r}")
        unknown = [f for f in self.feature_names if f not in FEATURE_NAMES]
        if unknown or not self.feature_names:
            raise ValueError(f"unknown feature name(s) {unknown!r}; known: {', '.join(FEATURE_NAMES)}")
        if len(set(self.feature_names)) != len(self.feature_names):
            raise ValueError(f"feature_names has duplicates: {self.feature_names!r}")
        bad_log = [f for f in self.log_features if f not in self.feature_names]
        if bad_log:
            raise ValueError(f"log_features {bad_log!r} are not in feature_names")
        for name in ("log_eps", "learning_rate", "tol"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
        if not (isinstance(self.l2, (int, float)) and math.isfinite(self.l2) and self.l2 >= 0):
            raise ValueError(f"l2 must be a finite number >= 0, got {self.l2!r}")
        if not (isinstance(self.max_iter, int) and self.max_iter >= 1):
            raise ValueError(f"max_iter must be an integer >= 1, got {self.max_iter!r}")

    def to_dict(self) -> dict:
        return asdict(self)
