"""The System 1 loop thread: absolute deadlines (no drift), skipped deadlines counted rather than
burst through, a failing tick does not stop the loop, SCHED_FIFO refused -> one log line."""

import os
import time

import numpy as np
import pytest

from fast_policy.rt_loop import RealtimeLoop


def _run(loop: RealtimeLoop, seconds: float) -> None:
    loop.start()
    time.sleep(seconds)
    loop.stop()


def test_ticks_on_absolute_deadlines_without_drift():
    calls = []
    loop = RealtimeLoop(0.01, lambda: calls.append(time.monotonic()), priority=0)
    _run(loop, 1.0)
    t = loop.timing
    assert 80 <= t.ticks <= 101 and len(calls) == t.ticks
    # each start is measured against its own deadline k * period after the first: the phase never
    # drifts, whatever the per-tick lateness
    first = t.starts[0] - t.lateness[0]
    deadlines = np.array([s - late for s, late in zip(t.starts, t.lateness, strict=True)])
    k = (deadlines - first) / 0.01
    # every deadline is an exact multiple of the period after the first (skipped ones leave gaps)
    np.testing.assert_allclose(k, np.round(k), atol=1e-6)
    assert np.all(np.diff(np.round(k)) >= 1)
    assert np.round(k[-1]) - (len(k) - 1) == t.missed


def test_overrun_skips_deadlines_and_counts_them():
    n = {"k": 0}

    def slow():
        n["k"] += 1
        if n["k"] == 3:
            time.sleep(0.035)  # 3.5 periods

    loop = RealtimeLoop(0.01, slow, priority=0)
    _run(loop, 0.3)
    assert loop.timing.missed >= 3
    assert loop.timing.ticks < 0.3 / 0.01  # no burst of catch-up ticks


def test_a_failing_tick_is_counted_and_the_loop_goes_on():
    n = {"k": 0}

    def flaky():
        n["k"] += 1
        if n["k"] % 2:
            raise RuntimeError("boom")

    loop = RealtimeLoop(0.01, flaky, priority=0)
    _run(loop, 0.2)
    assert loop.errors >= 5 and loop.last_error == "RuntimeError: boom" and n["k"] >= 10


def test_refused_realtime_priority_falls_back_with_one_log_line(monkeypatch):
    def refuse(*a):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    logs = []
    loop = RealtimeLoop(0.01, lambda: None, priority=80, log=logs.append)
    _run(loop, 0.1)
    assert len(logs) == 1 and "not allowed" in logs[0] and "SYS_NICE" in logs[0]
    assert loop.scheduling.startswith("SCHED_OTHER") and loop.timing.ticks > 3


def test_bad_arguments():
    with pytest.raises(ValueError, match="priority"):
        RealtimeLoop(0.01, lambda: None, priority=120)
    with pytest.raises(ValueError, match="period"):
        RealtimeLoop(0.0, lambda: None)
