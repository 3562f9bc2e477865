"""Sorting score: correct / wrong bin / missed / dropped per lighting domain, and throughput."""

from __future__ import annotations

from dataclasses import dataclass, field

# Outcome codes: the same values as s1s2_interfaces/msg/SortEvent.
CORRECT, WRONG_BIN, MISSED, DROPPED = 0, 1, 2, 3
OUTCOME_NAMES = {CORRECT: "correct", WRONG_BIN: "wrong_bin", MISSED: "missed", DROPPED: "dropped"}


@dataclass(frozen=True)
class SortEventRecord:
    time: float
    item_id: str
    class_label: str
    bin_id: str  # "" when missed or dropped
    outcome: int
    correct: bool
    lighting_domain: str


@dataclass
class DomainScore:
    correct: int = 0
    wrong_bin: int = 0
    missed: int = 0
    dropped: int = 0
    time_s: float = 0.0

    @property
    def total(self) -> int:
        return self.correct + self.wrong_bin + self.missed + self.dropped

    @property
    def accuracy(self) -> float:
        """Correctly sorted items over all items that left play (nan if none did)."""
        return self.correct / self.total if self.total else float("nan")

    @property
    def throughput_per_min(self) -> float:
        """Correctly sorted items per minute of time spent in this domain."""
        return 60.0 * self.correct / self.time_s if self.time_s > 0 else 0.0

    def as_dict(self) -> dict:
        return {
            "correct": self.correct,
            "wrong_bin": self.wrong_bin,
            "missed": self.missed,
            "dropped": self.dropped,
            "total": self.total,
            "accuracy": self.accuracy,
            "time_s": round(self.time_s, 3),
            "throughput_per_min": self.throughput_per_min,
        }


@dataclass
class Scoreboard:
    domains: dict[str, DomainScore] = field(default_factory=dict)

    def _dom(self, name: str) -> DomainScore:
        return self.domains.setdefault(name, DomainScore())

    def add_time(self, domain: str, dt: float) -> None:
        self._dom(domain).time_s += dt

    def add_event(self, ev: SortEventRecord) -> None:
        ds = self._dom(ev.lighting_domain)
        setattr(ds, OUTCOME_NAMES[ev.outcome], getattr(ds, OUTCOME_NAMES[ev.outcome]) + 1)

    def totals(self) -> DomainScore:
        t = DomainScore()
        for ds in self.domains.values():
            t.correct += ds.correct
            t.wrong_bin += ds.wrong_bin
            t.missed += ds.missed
            t.dropped += ds.dropped
            t.time_s += ds.time_s
        return t

    def as_dict(self) -> dict:
        return {
            "domains": {k: v.as_dict() for k, v in self.domains.items()},
            "totals": self.totals().as_dict(),
        }

    def table(self) -> str:
        """Plain-text score table, one row per domain plus totals."""
        head = f"{'domain':<26}{'correct':>8}{'wrong':>7}{'missed':>7}{'dropped':>8}{'acc %':>7}{'items/min':>10}"
        rows = [head, "-" * len(head)]
        for name, ds in list(self.domains.items()) + [("TOTAL", self.totals())]:
            acc = f"{100 * ds.accuracy:.1f}" if ds.total else "-"
            rows.append(
                f"{name:<26}{ds.correct:>8}{ds.wrong_bin:>7}{ds.missed:>7}{ds.dropped:>8}{acc:>7}"
                f"{ds.throughput_per_min:>10.2f}"
            )
        return "\n".join(rows)
