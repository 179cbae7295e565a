"""The robustness panel: the ID test split under each perturbation a real pipeline applies
(crop convention, binarisation, stroke weight, resolution, JPEG, rotation), scored at the
shipped threshold beside the clean figures, so a change of verdict shows up as a number."""

from __future__ import annotations

import numpy as np
import torch

from corpus.augment import PANEL, apply_panel


def robustness_panel(runner, x: np.ndarray, y: np.ndarray, threshold: float) -> dict[str, dict]:
    """{row: {accuracy, flagged, d_accuracy, d_flagged}} with "clean" first; d_* are the
    changes from clean in points of share (positive d_flagged = more real glyphs flagged)."""
    rows = {}
    for name in ("clean", *PANEL):
        xp = x if name == "clean" else apply_panel(torch.as_tensor(x), name).numpy()
        logits, energy = runner.run(xp, batch=256)
        rows[name] = {
            "accuracy": float(np.mean(logits.argmax(1) == y)),
            "flagged": float(np.mean(energy > threshold)),
        }
    clean = rows["clean"]
    for r in rows.values():
        r["d_accuracy"] = r["accuracy"] - clean["accuracy"]
        r["d_flagged"] = r["flagged"] - clean["flagged"]
    return rows


def panel_examples(x: np.ndarray, per_row: int = 8) -> np.ndarray:
    """The first `per_row` test images under every panel row, one row each (for the report grid)."""
    sample = torch.as_tensor(x[:per_row])
    return torch.cat([sample] + [apply_panel(sample, name) for name in PANEL]).numpy()
