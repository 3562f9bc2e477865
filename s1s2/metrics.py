"""Pure-Python measurement helpers shared by the demo, the system tests and the benchmarks."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class RateMeter:
    """Arrival times of one stream -> rate and period statistics over a window."""

    name: str
    times: list[float] = field(default_factory=list)

    def tick(self, t: float) -> None:
        self.times.append(t)

    def count_between(self, t0: float, t1: float) -> int:
        return sum(1 for t in self.times if t0 <= t < t1)

    def summary(self, t0: float | None = None, t1: float | None = None) -> dict:
        ts = [t for t in self.times if (t0 is None or t >= t0) and (t1 is None or t < t1)]
        out = {"topic": self.name, "count": len(ts), "rate_hz": float("nan"), "period_p99_ms": float("nan")}
        if len(ts) >= 2:
            span = (t1 - t0) if (t0 is not None and t1 is not None) else (ts[-1] - ts[0])
            n = len(ts) if (t0 is not None and t1 is not None) else len(ts) - 1
            out["rate_hz"] = n / span if span > 0 else float("nan")
            periods = sorted(b - a for a, b in zip(ts, ts[1:], strict=False))
            out["period_p50_ms"] = 1e3 * percentile(periods, 50)
            out["period_p99_ms"] = 1e3 * percentile(periods, 99)
            out["period_max_ms"] = 1e3 * periods[-1]
        return out


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile of an already sorted list (nan when empty)."""
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * q / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    if lo == hi:
        return sorted_values[lo]
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def within(value: float, target: float, rel_tol: float) -> bool:
    return math.isfinite(value) and abs(value - target) <= rel_tol * target
