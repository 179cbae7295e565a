"""Parameters of /generate and /generate_chain, checked once with messages a person can act on."""

from __future__ import annotations

import json

LIMITS = {"n": (1, 64), "steps": (0, 1024), "seed": (0, 2**31 - 1)}
DEFAULTS = {"n": 16, "steps": 256, "label": None, "seed": 0}


def check_params(body: bytes, classes: list[str]) -> str | None:
    """None when the JSON body is a valid request, else the problem."""
    try:
        params = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        return f"body is not JSON ({e}); send e.g. {{\"n\": 16, \"steps\": 256, \"label\": \"a\", \"seed\": 0}}"
    if not isinstance(params, dict):
        return "body must be a JSON object with any of n, steps, label, seed"
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        return f"unknown field(s) {', '.join(map(repr, unknown))}; expected n, steps, label, seed"
    for key, (lo, hi) in LIMITS.items():
        if key in params:
            v = params[key]
            if isinstance(v, bool) or not isinstance(v, int):
                return f"{key} must be an integer, got {json.dumps(v)}"
            if not lo <= v <= hi:
                return f"{key}={v} is out of range: expected {lo}..{hi}"
    label = params.get("label")
    if label is not None and label not in classes:
        return f"label {label!r} is not a class of this model; classes: {' '.join(classes)} (or omit it for unconditional)"
    return None
