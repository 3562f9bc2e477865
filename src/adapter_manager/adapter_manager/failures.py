"""Which camera frames are the day's failures (pure Python, no rclpy): the core of the failure
recorder that feeds `s1s2 nightly`.

Frames wait in a buffer (`buffer_s`) until a verdict arrives:
- a LOW-CONFIDENCE PLAN: a goal made from a frame with confidence below `min_confidence` (the
  planner was unsure: the frame it answered is kept);
- a BAD SORT: a sort event whose outcome is wrong_bin, missed or dropped: up to `frames_per_sort`
  frames of the `window_s` seconds before it are kept (what the planner saw while it went wrong).
A frame is kept once. Everything is keyed by the image stamp (the planner stamps its goals with
the image time), so payloads are opaque here: the node stores serialised messages.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from s1s2.params import check_fields, param

BAD_OUTCOMES = {1: "wrong_bin", 2: "missed", 3: "dropped"}  # s1s2_interfaces/msg/SortEvent


@dataclass
class FailureRecorderConfig:
    output_dir: str = param("runs/failures", "folder the day's failure MCAP files go to (relative: repo root)",
                            read_only=True)  # fmt: skip
    min_confidence: float = param(
        0.5, "plans below this confidence are recorded as failures", min=0.0, max=1.0
    )
    window_s: float = param(4.0, "frames this long before a bad sort are candidates", min=0.1, max=60.0)
    frames_per_sort: int = param(3, "frames kept per bad sort", min=1, max=50)
    buffer_s: float = param(12.0, "how long a frame waits for a verdict", min=1.0, max=600.0)
    rotate_s: float = param(600.0, "start a new MCAP file after this many seconds", min=10.0, max=86400.0)

    def __post_init__(self):
        check_fields(self)


@dataclass
class Frame:
    stamp: float
    payload: dict  # opaque: serialised messages of this frame (image, truth, context, ...)
    goal: object | None = None


@dataclass
class Failure:
    kind: str  # "low_confidence_plan" | "wrong_bin" | "missed" | "dropped"
    frame: Frame
    detail: dict = field(default_factory=dict)


class FailureSelector:
    def __init__(self, config: FailureRecorderConfig | None = None):
        self.cfg = config or FailureRecorderConfig()
        self._frames: OrderedDict[float, Frame] = OrderedDict()
        self._kept: set[float] = set()
        self.counts: dict[str, int] = {}

    def add_frame(self, stamp: float, payload: dict) -> None:
        self._frames[stamp] = Frame(stamp, payload)
        while self._frames and next(iter(self._frames)) < stamp - self.cfg.buffer_s:
            old, _ = self._frames.popitem(last=False)
            self._kept.discard(old)

    def on_goal(
        self, image_stamp: float, confidence: float, goal_payload: object, detail: dict
    ) -> list[Failure]:
        frame = self._frames.get(image_stamp)
        if frame is None:
            return []
        frame.goal = goal_payload
        if confidence >= self.cfg.min_confidence:
            return []
        return self._keep([frame], "low_confidence_plan", detail | {"confidence": confidence})

    def on_sort_event(self, t: float, outcome: int, detail: dict) -> list[Failure]:
        kind = BAD_OUTCOMES.get(int(outcome))
        if kind is None:
            return []
        window = [f for s, f in self._frames.items() if t - self.cfg.window_s <= s <= t]
        n = self.cfg.frames_per_sort
        if len(window) > n:  # evenly spread over the window, the latest included
            step = len(window) / n
            window = [window[min(len(window) - 1, int(round((i + 1) * step)) - 1)] for i in range(n)]
        return self._keep(window, kind, detail)

    def _keep(self, frames: list[Frame], kind: str, detail: dict) -> list[Failure]:
        out = []
        for f in frames:
            if f.stamp in self._kept:
                continue
            self._kept.add(f.stamp)
            out.append(Failure(kind, f, dict(detail)))
        if out:
            self.counts[kind] = self.counts.get(kind, 0) + len(out)
        return out
