"""The calibration report a person opens: report/index.html beside its PNGs."""

from __future__ import annotations

import html
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from glyphgate.core.contract.artifacts import PEERS_JSON, REAL_SCANS_JSON  # noqa: E402
from glyphgate.core.contract.scores import id_vs_ood  # noqa: E402

KIND_COLOUR = {"far": "tab:red", "near": "tab:orange", "unknown": "tab:grey"}


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


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _real_section(real_scans: dict) -> str:
    if not real_scans:
        return "<p>No real pages evaluated (<code>glyphgate evaluate</code> writes them here).</p>"
    kinds = sorted({k for r in real_scans.values() for k in r["ood"]})
    table = _table(
        [
            "collection",
            "model",
            "glyphs",
            "classes",
            "accuracy",
            "ECE raw → at T",
            "glyphs flagged at threshold",
        ]
        + [f"{k}: caught at threshold / AUROC" for k in kinds],
        [
            [
                html.escape(n),
                who,
                r["n_glyphs"],
                r["n_classes"],
                f"{m['accuracy']:.4f}",
                f"{m['ece_raw']:.3f} → {m['ece']:.3f}" if "ece_raw" in m else "",
                f"{m['flagged_at_threshold']:.4f}",
            ]
            + [
                f"{m['ood'][k].get('caught_at_threshold', float('nan')):.3f} / {m['ood'][k]['auroc']:.3f}"
                if k in m["ood"]
                else ""
                for k in kinds
            ]
            for n, r in real_scans.items()
            for who, m in [("this model", r), *([("baseline", r["baseline"])] if "baseline" in r else [])]
        ],
    )
    sources = "".join(
        f"<li><b>{html.escape(n)}</b>: {html.escape(r['source'])}</li>" for n, r in real_scans.items()
    )
    figs = "".join(
        f"<h3>{html.escape(n)}: real glyphs flagged or mislabelled, highest energy first "
        "(made on the machine that has the pages; not in the repository)</h3>"
        f"<img src='real_{html.escape(n)}_misses.png' alt='{html.escape(n)} misses'>"
        f"<h3>{html.escape(n)}: reliability of the confidence at the fitted temperature</h3>"
        f"<img src='real_{html.escape(n)}_reliability.png' alt='{html.escape(n)} reliability'>"
        for n in real_scans
    )
    return f"{table}<ul>{sources}</ul>{figs}"


def _peers_section(peers: dict | None) -> str:
    if not peers:
        return "<p>Not measured (<code>glyphgate peers</code> writes them here).</p>"
    parts = [
        f"<p>Each row's threshold flags {peers['flag_share']:.0%} of the collection's glyphs; cells are AUROC / "
        "caught at that threshold. Mahalanobis and kNN: pytorch-ood on each network's penultimate features, "
        f"fitted on {peers['fit']['n']} training glyphs.</p>"
    ]
    if skipped := peers["ocr"].get("skipped"):
        parts.append(f"<p>Tesseract rows not measured: {html.escape(skipped)}.</p>")
    for name, table in peers["collections"].items():
        kinds = sorted({k for r in table["rows"].values() for k in r["auroc"]})
        parts.append(f"<h3>{html.escape(name)} ({table['n_glyphs']} glyphs)</h3>")
        parts.append(
            _table(
                ["score", "accuracy", "flagged"] + kinds,
                [
                    [
                        html.escape(row),
                        "—" if r["accuracy"] is None else f"{r['accuracy']:.4f}",
                        f"{r['flagged']:.3f}",
                    ]
                    + [
                        f"{r['auroc'][k]:.3f} / {r['caught'][k]:.3f}" if k in r["auroc"] else ""
                        for k in kinds
                    ]
                    for row, r in table["rows"].items()
                ],
            )
        )
    return "".join(parts)


def rerender_index(folder: Path, cal: dict) -> None:
    """index.html again from what the artifacts folder now holds (after `glyphgate evaluate`
    or `glyphgate peers` added their figures); nothing when calibrate has not made a report."""
    import json

    figures = folder / "report" / "figures.json"
    if not figures.is_file():
        return

    def read(name: str) -> dict | None:
        path = folder / name
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    write_index(
        folder / "report" / "index.html",
        cal,
        cal["comparison"],
        json.loads(figures.read_text(encoding="utf-8")),
        read(REAL_SCANS_JSON),
        read(PEERS_JSON),
    )


def write_index(
    path: Path,
    cal: dict,
    comparison: dict,
    figures: dict[str, str],
    real_scans: dict | None = None,
    peers: dict | None = None,
) -> None:
    """index.html: summary, per-set metrics of every score, the detector comparison, figures."""
    sets = cal["metrics"]["sets"]
    kinds_m = cal["metrics"]["kinds"]
    summary = _table(
        ["", ""],
        [
            ["score", f"{cal['score']} (higher = more OOD; flagged when energy &gt; threshold)"],
            ["threshold", f"{cal['threshold']:.4f}"],
            *(
                [
                    [
                        "fitted on",
                        html.escape(f"{p['population']} glyphs: {p['data']} (N = {p['n']})")
                        + "".join(
                            html.escape(f"; {k} caught {v['caught_at_threshold']:.1%}")
                            for k, v in p.get("ood", {}).items()
                        ),
                    ]
                ]
                if (p := cal.get("threshold_population"))
                else []
            ),
            *(
                [["synthetic ID glyphs flagged at threshold", f"{cal['id']['flagged_at_threshold']:.4f}"]]
                if "flagged_at_threshold" in cal["id"]
                else []
            ),
            [
                "target / measured TPR on ID " + html.escape(cal["split"]),
                f"{cal['target_tpr']:.3f} / {cal['measured_tpr']:.4f}  (N = {cal['id']['n']})",
            ],
            [
                "ID accuracy / ECE",
                "unlabelled"
                if cal["id"]["accuracy"] is None
                else f"{cal['id']['accuracy']:.4f} / {cal['id']['ece']:.4f}",
            ],
            *(
                [
                    [
                        "collection",
                        html.escape(
                            f"{c['name']} ({c['data']}): {c['n_glyphs']} glyphs"
                            + (f"; classes {' '.join(c['classes_present'])}" if c["classes_present"] else "")
                            + (
                                f"; not classes of the model: {', '.join(f'{k} ({v})' for k, v in c['unknown_classes'].items())}"
                                if c["unknown_classes"]
                                else ""
                            )
                        ),
                    ]
                ]
                if (c := cal.get("collection"))
                else []
            ),
            *(
                [["<b>warning</b>", html.escape(cal["collection"]["warning"])]]
                if cal.get("collection", {}).get("warning")
                else []
            ),
            ["model.onnx sha256", f"<code>{cal['model_sha256']}</code>"],
        ],
    )
    per_set = _table(
        ["OOD set", "kind", "N", "missed at threshold", "caught at threshold"]
        + [f"{s} AUROC" for s in cal["score_functions"]]
        + ["energy AUPR-in", "energy AUPR-out", "energy FPR95"],
        [
            [
                html.escape(n),
                m["kind"],
                m["n"],
                f"{m['fpr_at_threshold']:.3f}",
                f"{m.get('caught_at_threshold', 1 - m['fpr_at_threshold']):.3f}",
            ]
            + [f"{m['scores'][s]['auroc']:.3f}" for s in cal["score_functions"]]
            + [f"{m['scores']['energy'][k]:.3f}" for k in ("aupr_in", "aupr_out", "fpr95")]
            for n, m in {**sets, **{f"all {k}": v for k, v in kinds_m.items()}}.items()
        ],
    )
    cols = list(next(iter(comparison.values())).keys()) if comparison else []
    compare = _table(
        ["detector"] + cols,
        [
            [html.escape(d)] + [f"{v[c]['auroc']:.3f} / {v[c]['fpr95']:.3f}" for c in cols]
            for d, v in comparison.items()
        ],
    )
    panel = cal.get("robustness", {})
    robust = (
        _table(
            ["perturbation", "accuracy", "Δ accuracy", "flagged at threshold", "Δ flagged"],
            [
                [
                    html.escape(n),
                    f"{r['accuracy']:.4f}",
                    f"{100 * r['d_accuracy']:+.1f} pt",
                    f"{r['flagged']:.4f}",
                    f"{100 * r['d_flagged']:+.1f} pt",
                ]
                for n, r in panel.items()
            ],
        )
        if panel
        else "<p>not measured</p>"
    )
    real = _real_section(real_scans or {})
    figs = "".join(
        f"<h3>{html.escape(t)}</h3><img src='{html.escape(f)}' alt='{html.escape(t)}'>"
        for t, f in figures.items()
    )
    path.write_text(
        f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>glyphgate calibration report</title>
<style>body{{font-family:sans-serif;max-width:1400px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse;margin:1em 0;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 7px;text-align:right}}
td:first-child,th:first-child{{text-align:left}}img{{max-width:100%;border:1px solid #ddd}}</style></head><body>
<h1>glyphgate calibration report</h1>
<p>Created {html.escape(cal["created"])} from <code>{html.escape(cal["data"])}</code>. Every score is oriented
higher = more OOD. AUROC and AUPR-out take OOD as positive; AUPR-in and FPR95 take ID glyphs as positive
(FPR95 = share of an OOD set still accepted when 95% of real glyphs are kept).</p>
<h2>Threshold</h2>{summary}
<h2>Per OOD set</h2>{per_set}
<h2>Detectors compared (AUROC / FPR95)</h2>{compare}
<h2>Robustness panel (ID {html.escape(cal["split"])} split at the shipped threshold)</h2>
<p>Each row re-cuts or degrades every test glyph as a real pipeline would, then re-applies the one
preprocessing function; Δ is the change from clean in points.</p>{robust}
<h2>Real pages</h2>{real}
<h2>Peers on real pages (<code>glyphgate peers</code>)</h2>{_peers_section(peers)}
<h2>Figures</h2>{figs}
</body></html>
""",
        encoding="utf-8",
    )
