"""docker/healthcheck.py's verdict on a fast_policy diagnostics status (pure part, no ROS)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "docker"))
from healthcheck import evaluate  # noqa: E402

TRT = "TensorrtExecutionProvider"


def test_healthy_status_passes():
    ok, line = evaluate({"loop_rate_hz": "49.80", "provider": TRT}, 45.0, TRT)
    assert ok and "49.8 Hz" in line


@pytest.mark.parametrize(
    "values, expect, message",
    [
        ({"loop_rate_hz": "31.00", "provider": TRT}, TRT, "below 45.0 Hz"),
        ({"loop_rate_hz": "nan", "provider": TRT}, TRT, "below"),
        ({"loop_rate_hz": "fast", "provider": TRT}, TRT, "not a number: 'fast'"),
        ({"provider": TRT}, TRT, "below"),
        (
            {"loop_rate_hz": "50.0", "provider": "CPUExecutionProvider"},
            TRT,
            "'CPUExecutionProvider', expected",
        ),
        ({"loop_rate_hz": "50.0"}, TRT, "'unknown', expected"),
    ],
)
def test_unhealthy_status_names_the_value(values, expect, message):
    ok, line = evaluate(values, 45.0, expect)
    assert not ok and message in line


def test_any_provider_when_none_expected():
    assert evaluate({"loop_rate_hz": "50", "provider": "CPUExecutionProvider"}, 45.0, None)[0]
