"""A periodic real-time loop for System 1 (pure Python, no rclpy).

    loop = RealtimeLoop(0.02, tick, priority=80, log=print)
    loop.start(); ...; loop.stop()

- A dedicated thread sleeps to ABSOLUTE deadlines (t0 + k * period): a late tick never shifts the
  ones after it, unlike a relative timer that drifts by every tick's lateness.
- Real-time scheduling where allowed: SCHED_FIFO at `priority` for this thread only (root, or
  CAP_SYS_NICE with an rtprio limit, e.g. Docker `cap_add: [SYS_NICE]`, `ulimits: rtprio: 99`).
  Where it is not allowed it says so in one log line and runs at normal priority.
- The last part of each wait spins (`spin_s`, default 0.2 ms): a sleeping thread wakes up to a
  scheduler tick late; spinning the last fraction of a millisecond lands on the deadline.
- Python's garbage collector and the GIL are shared with the node's other threads; the node
  freezes the startup heap (`gc.freeze()`) and shortens the interpreter's switch interval, and
  this loop measures each tick's lateness so their effect is visible (`stats`).
- A tick that ends after the next deadline skips the deadlines it missed (counted), never
  bursts to catch up.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable

import numpy as np


class LoopTiming:
    """Lateness of each tick start against its deadline, tick durations, missed deadlines."""

    def __init__(self, period_s: float, window: int = 3000):
        self.period = period_s
        self.lateness: deque[float] = deque(maxlen=window)  # start - deadline, s
        self.durations: deque[float] = deque(maxlen=window)
        self.starts: deque[float] = deque(maxlen=window)
        self.ticks = 0
        self.missed = 0  # deadlines skipped because a tick (or a stall) ran past them
        self.max_lateness = 0.0

    def record(self, deadline: float, start: float, end: float) -> None:
        late = start - deadline
        self.lateness.append(late)
        self.durations.append(end - start)
        self.starts.append(start)
        self.max_lateness = max(self.max_lateness, late)
        self.ticks += 1

    def percentile_ms(self, what: str, q: float) -> float:
        data = getattr(self, what)
        return float(np.percentile(np.asarray(data), q) * 1e3) if data else 0.0

    def rate_hz(self) -> float:
        if len(self.starts) < 2 or self.starts[-1] <= self.starts[0]:
            return 0.0
        return (len(self.starts) - 1) / (self.starts[-1] - self.starts[0])


class RealtimeLoop:
    def __init__(
        self,
        period_s: float,
        tick: Callable[[], None],
        priority: int = 0,
        spin_s: float = 0.0002,
        log: Callable[[str], None] = print,
        name: str = "s1_loop",
    ):
        if not period_s > 0:
            raise ValueError(f"period must be > 0, got {period_s!r}")
        if not 0 <= priority <= 99:
            raise ValueError(f"SCHED_FIFO priority must be 0..99 (0 = normal scheduling), got {priority!r}")
        self.period = float(period_s)
        self.tick = tick
        self.priority = int(priority)
        self.spin_s = float(spin_s)
        self.log = log
        self.timing = LoopTiming(self.period)
        self.scheduling = "not started"
        self.errors = 0
        self.last_error = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _set_scheduling(self) -> None:
        if self.priority <= 0:
            self.scheduling = "SCHED_OTHER (real-time priority not requested)"
            return
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(self.priority))  # this thread only
            self.scheduling = f"SCHED_FIFO priority {self.priority}"
        except (PermissionError, OSError, AttributeError) as exc:
            self.scheduling = f"SCHED_OTHER (SCHED_FIFO {self.priority} refused: {exc})"
            self.log(
                f"real-time scheduling not allowed here ({exc}); the control loop runs at normal "
                "priority. Grant CAP_SYS_NICE and an rtprio limit (docker: cap_add SYS_NICE, ulimits rtprio)."
            )

    def _run(self) -> None:
        self._set_scheduling()
        period, spin = self.period, self.spin_s
        deadline = time.monotonic() + period
        while not self._stop.is_set():
            wait = deadline - time.monotonic() - spin
            if wait > 0 and self._stop.wait(wait):
                break
            while time.monotonic() < deadline:
                pass  # the last fraction of a millisecond: land on the deadline
            start = time.monotonic()
            try:
                self.tick()
            except Exception as exc:  # noqa: BLE001 - the loop must survive a bad tick
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
            end = time.monotonic()
            self.timing.record(deadline, start, end)
            deadline += period
            if end > deadline:  # overran one or more deadlines: skip them, keep the phase
                skipped = int((end - deadline) // period) + 1
                self.timing.missed += skipped
                deadline += skipped * period
