"""The targets of targets.json, and how a measured figure is held against one. The card and the
report read them from here, so a target changes in one place."""

from __future__ import annotations

import json
from pathlib import Path

from calibration.render import Verdict

TARGETS_JSON = Path(__file__).with_name("targets.json")
TARGETS: dict = json.loads(TARGETS_JSON.read_text(encoding="utf-8"))


def bounds(targets: dict) -> dict[str, dict]:
    """The targets of one table, without its `about` line and its lists."""
    return {q: t for q, t in targets.items() if isinstance(t, dict)}


def met(v: float, target: dict) -> bool:
    if "above" in target:  # a figure to beat, such as a baseline's
        return v > target["above"]
    if "range" in target:
        lo, hi = target["range"]
        return lo <= v <= hi
    return v >= target["min"] if "min" in target else v <= target["max"]


def gap(v: float, target: dict) -> float:
    """How far v lies outside the target (0 when met)."""
    if met(v, target):
        return 0.0
    if "range" in target:
        lo, hi = target["range"]
        return lo - v if v < lo else v - hi
    return abs(v - next(target[k] for k in ("above", "min", "max") if k in target))


def label(target: dict, digits: int = 2) -> str:
    """The target in words: ≥ 0.95, ≤ 0.08, 3–7 %, > 0.9250."""
    if "range" in target:
        lo, hi = target["range"]
        return f"{100 * lo:.0f}–{100 * hi:.0f} %"
    for key, sign in (("above", ">"), ("min", "≥"), ("max", "≤")):
        if key in target:
            return f"{sign} {target[key]:.{digits}f}"
    raise ValueError(f"not a target: {target}")


def verdict(v: float, target: dict, digits: int | None = 3, shown: str | None = None) -> Verdict:
    """met, or missed by the gap (`digits` None: missed, without the gap); `shown`: the target
    written before the verdict, in the same cell."""
    ok = met(v, target)
    return Verdict(ok, None if ok or digits is None else f"{gap(v, target):.{digits}f}", shown)
