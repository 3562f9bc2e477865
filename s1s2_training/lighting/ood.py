"""Lighting that lies outside every trained domain: the fixed test set of the classifier's
"unknown" answer. Declared here once, before the detector was calibrated; the detector's threshold
is set from held-out frames of the trained domains only, never from these specs."""

from __future__ import annotations

from conveyor_sim.lighting import custom_domain

OOD_SPECS: dict[str, dict] = {
    "sodium_vapour": {"colour_temp_k": 1900.0, "intensity": 0.7, "exposure": 1.3},
    "blue_led": {"colour_temp_k": 12000.0, "white_balance": (0.75, 1.0, 1.35)},
    "green_cast": {"white_balance": (0.8, 1.35, 0.8)},
    "magenta_cast": {"white_balance": (1.3, 0.75, 1.3)},
    "overexposed": {"intensity": 2.2, "exposure": 2.2},
    "very_dark_clean": {"intensity": 0.08, "ambient": 0.05, "noise_std": 1.5},
    "strobe": {"flicker_amp": 0.8, "flicker_hz": 3.1},
    "heavy_noise_bright": {"noise_std": 35.0},
    "hard_side_light": {"direction": (-1.0, 0.0, -0.2), "intensity": 1.6},
    "cold_glare": {"colour_temp_k": 9000.0, "glare": 1.0},
    "red_darkroom": {
        "colour_temp_k": 1200.0,
        "intensity": 0.4,
        "exposure": 2.0,
        "white_balance": (1.4, 0.8, 0.6),
    },
    "low_contrast_fog": {"ambient": 1.0, "intensity": 0.2},
}


def ood_domains():
    return [custom_domain(name, **spec) for name, spec in OOD_SPECS.items()]
