"""The report's PNGs (matplotlib and glyph grids) and report/figures.json, which names them for
the HTML report; `glyphgate evaluate` and `glyphgate peers` re-render the HTML from that list."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from calibration.robustness import panel_examples  # noqa: E402
from glyphgate.core.contract.scores import GATE_SCORE, id_vs_ood  # noqa: E402
from glyphgate.core.image.grid import save_grid  # noqa: E402

KIND_COLOUR = {"far": "tab:red", "near": "tab:orange", "unknown": "tab:grey"}
FIGURES_JSON = "figures.json"


def energy_histograms(path: Path, e_id, e_ood: dict, kinds: dict, threshold: float) -> None:
    """The sheet's Fig. 2: ID test energies against each OOD set, threshold drawn."""
    names = list(e_ood)
    cols = 4
    rows = max(1, int(np.ceil(len(names) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.8 * rows), squeeze=False)
    lo = min(np.min(e_id), *(np.min(v) for v in e_ood.values()))
    hi = max(np.max(e_id), *(np.max(v) for v in e_ood.values()))
    bins = np.linspace(lo, hi, 60)
    for ax, name in zip(axes.flat, names):
        ax.hist(e_id, bins=bins, density=True, alpha=0.6, color="tab:blue", label="ID test")
        ax.hist(
            e_ood[name],
            bins=bins,
            density=True,
            alpha=0.6,
            color=KIND_COLOUR.get(kinds.get(name), "tab:grey"),
            label=f"{name} ({kinds.get(name, '?')})",
        )
        ax.axvline(threshold, color="black", linestyle="--", linewidth=1)
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.supxlabel("energy  (higher = more OOD; dashed = threshold)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def roc_curves(path: Path, scores_id: dict, scores_ood: dict, kinds: dict) -> None:
    """One panel per score function, one curve per OOD set (ID = negative, OOD = positive)."""
    names = list(scores_id)
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 4), squeeze=False)
    for ax, score in zip(axes[0], names):
        for ood_name, by_score in scores_ood.items():
            s, y = id_vs_ood(scores_id[score], by_score[score])
            fpr, tpr, _ = roc_curve(y, s)
            ax.plot(fpr, tpr, color=KIND_COLOUR.get(kinds.get(ood_name), "tab:grey"), alpha=0.7, linewidth=1)
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=0.8)
        ax.set_title(score)
        ax.set_xlabel("ID flagged (false alarm rate)")
        ax.set_ylabel("OOD flagged")
    handles = [
        plt.Line2D([], [], color=c, label=k) for k, c in KIND_COLOUR.items() if k in set(kinds.values())
    ]
    axes[0][-1].legend(handles=handles, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def reliability_diagram(path: Path, rel: dict, ece: float, title: str = "ID test") -> None:
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    centres = (rel["edges"][:-1] + rel["edges"][1:]) / 2
    width = rel["edges"][1] - rel["edges"][0]
    filled = rel["count"] > 0
    ax.bar(centres[filled], rel["accuracy"][filled], width=width * 0.9, color="tab:blue", label="accuracy")
    ax.plot([0, 1], [0, 1], color="black", linestyle="--", linewidth=1, label="perfect calibration")
    ax.set_xlabel("confidence (max softmax)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Reliability, {title} (ECE {ece:.3f})", fontsize=9)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_figures_json(out: Path, figures: dict[str, str]) -> dict[str, str]:
    (out / FIGURES_JSON).write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")
    return figures


def calibration_figures(out: Path, rec, x_id, s_id, scores, x_ood, kinds, rel) -> dict[str, str]:
    """A full data set's figures: {title: PNG name}."""
    out.mkdir(parents=True, exist_ok=True)
    energy_histograms(
        out / "energy_histograms.png",
        s_id[GATE_SCORE],
        {n: s[GATE_SCORE] for n, s in scores.items()},
        kinds,
        rec.threshold,
    )
    roc_curves(out / "roc_curves.png", s_id, scores, kinds)
    reliability_diagram(
        out / "reliability.png",
        rel,
        rec.id.ece,
        f"synthetic {rec.id.n} ID glyphs, T = {rec.temperature:.2f}",
    )
    save_grid(x_id[np.argsort(-s_id[GATE_SCORE])], out / "false_alarms.png", nrow=8, limit=64)
    save_grid(panel_examples(x_id), out / "robustness_examples.png", nrow=8)
    figures = {
        "Energy: ID test vs each OOD set (the sheet's Fig. 2)": "energy_histograms.png",
        "ROC curves per score function (red far, orange near)": "roc_curves.png",
        "Reliability diagram": "reliability.png",
        "False alarms: the 64 highest-energy ID test glyphs": "false_alarms.png",
        "Robustness panel: the same 8 test glyphs clean (top row), then under each perturbation in the panel's order": "robustness_examples.png",
    }
    for kind in sorted(set(kinds.values())):
        names = [n for n in x_ood if kinds.get(n) == kind]
        x = np.concatenate([x_ood[n] for n in names])
        e = np.concatenate([scores[n][GATE_SCORE] for n in names])
        save_grid(x[np.argsort(e)], out / f"misses_{kind}.png", nrow=8, limit=64)
        figures[f"Misses, {kind} OOD: the 64 lowest-energy images"] = f"misses_{kind}.png"
    return write_figures_json(out, figures)


def collection_figures(out: Path, threshold: float, x: np.ndarray, e_id: np.ndarray, e_ood: dict) -> dict:
    """A collection's figures: its glyphs against its own rejects, and its false alarms."""
    out.mkdir(parents=True, exist_ok=True)
    figures = {}
    if e_ood:
        energy_histograms(
            out / "energy_histograms.png", e_id, e_ood, {k: "unknown" for k in e_ood}, threshold
        )
        figures["Energy: the collection's glyphs vs each of its OOD sets"] = "energy_histograms.png"
    save_grid(x[np.argsort(-e_id)], out / "false_alarms.png", nrow=8, limit=64)
    figures["False alarms: the collection's 64 highest-energy glyphs"] = "false_alarms.png"
    return write_figures_json(out, figures)
