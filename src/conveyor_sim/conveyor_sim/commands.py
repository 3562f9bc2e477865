"""Joint command validation shared by the Gazebo relay (the MuJoCo core has the same rules in
CellSim.command_joints): wrong length or NaN/inf -> rejected, out of limits -> clamped."""

from __future__ import annotations

import math


def validate_command(values, lower, upper) -> tuple[list[float] | None, str]:
    """(clamped values, "ok"/"clamped") or (None, "rejected_length"/"rejected_nonfinite")."""
    try:
        vals = [float(v) for v in values]
    except (TypeError, ValueError):
        return None, "rejected_length"
    if len(vals) != len(lower):
        return None, "rejected_length"
    if not all(math.isfinite(v) for v in vals):
        return None, "rejected_nonfinite"
    out = [min(max(v, lo), hi) for v, lo, hi in zip(vals, lower, upper, strict=True)]
    return out, "clamped" if out != vals else "ok"
