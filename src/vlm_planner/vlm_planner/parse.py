"""Read the VLM's structured answer. Never raises, never invents a target.

Expected answer (anywhere in the generated text, case-insensitive, `=` or `:`):

    label=<class> u=<number> v=<number>      pick the item of <class> whose pick point is at (u, v)
    label=none                               nothing to pick: hold

u is the column, v the row: image pixels of the image given to the planner (coordinate_format
"pixel"), or 0..1000 of the image width/height (coordinate_format "norm1000", the Qwen2-VL
convention). Anything else -- empty text, an unknown class, missing or non-finite coordinates,
a point outside the image -- is not a target: `ParsedAnswer.ok` is False and `reason` says why.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .confidence import WINDOW_PX

_NUM = r"([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)(?![\w.])"
_LABEL_RE = re.compile(r"\blabel\s*[=:]\s*([a-z][a-z0-9_]*)")
_U_RE = re.compile(r"\bu\s*[=:]\s*" + _NUM)
_V_RE = re.compile(r"\bv\s*[=:]\s*" + _NUM)


@dataclass(frozen=True)
class ParsedAnswer:
    ok: bool  # True: a target with a known label and (u, v) inside the image
    label: str  # "" unless ok
    u: float  # image pixels (converted from norm1000 if needed); nan unless ok
    v: float
    hold: bool  # the model said label=none
    reason: str  # why not ok ("" when ok)


def _fail(reason: str, hold: bool = False) -> ParsedAnswer:
    return ParsedAnswer(False, "", math.nan, math.nan, hold, reason)


# How far sub-token numbers may move the answer's own: they are means over +-WINDOW_PX of the
# printed number, so further means they belong to other tokens.
MAX_REFINE = float(WINDOW_PX)


def parse_answer(
    text, classes, width: int, height: int, coordinate_format: str = "pixel", numbers=None
) -> ParsedAnswer:
    """`numbers`: (u, v) in the answer's own units to use instead of its printed integers, e.g.
    their sub-token expectation (confidence.refined_numbers); ignored unless each lies within
    MAX_REFINE of the printed one."""
    if not isinstance(text, str) or not text.strip():
        return _fail("empty answer")
    low = text.lower()
    m_label = _LABEL_RE.search(low)
    if m_label is None:
        return _fail(f"no 'label=' in answer {text[:80]!r}")
    label = m_label.group(1)
    if label == "none":
        return _fail("model answered label=none", hold=True)
    if label not in classes:
        return _fail(f"unknown class {label!r} in answer; known: {', '.join(classes)}")
    rest = low[m_label.end() :]  # coordinates belong to this label: search after it
    m_u, m_v = _U_RE.search(rest), _V_RE.search(rest)
    if m_u is None or m_v is None:
        return _fail(f"no numeric u=/v= after label in answer {text[:80]!r}")
    try:
        u, v = float(m_u.group(1)), float(m_v.group(1))
    except ValueError:  # the regex only passes numbers; belt and braces
        return _fail(f"unreadable coordinates in answer {text[:80]!r}")
    if not (math.isfinite(u) and math.isfinite(v)):
        return _fail(f"non-finite coordinates u={u} v={v}")
    norm1000 = coordinate_format == "norm1000"

    def to_pixels(a: float, b: float) -> tuple[float, float]:
        return (a / 1000.0 * (width - 1), b / 1000.0 * (height - 1)) if norm1000 else (a, b)

    if norm1000 and not (0 <= u <= 1000 and 0 <= v <= 1000):
        return _fail(f"normalised coordinates u={u} v={v} outside 0..1000")
    printed = (u, v)
    u, v = to_pixels(u, v)
    if not (0 <= u <= width - 1 and 0 <= v <= height - 1):
        return _fail(f"pixel u={u} v={v} outside the {width}x{height} image")
    if numbers is not None and all(abs(a - b) <= MAX_REFINE for a, b in zip(numbers, printed, strict=True)):
        # the printed point is in the image, and its refinement stays there (an edge pixel's window
        # reaches past it)
        ru, rv = to_pixels(float(numbers[0]), float(numbers[1]))
        u, v = min(max(ru, 0.0), width - 1.0), min(max(rv, 0.0), height - 1.0)
    return ParsedAnswer(True, label, u, v, False, "")
