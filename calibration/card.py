"""MODEL_CARD.md for an artifacts folder: data, training config, measured metrics against the
targets, the baselines, and the command that made it. Everything is read from the run and
calibration files, so the card cannot drift from the numbers."""

from __future__ import annotations

import json
from pathlib import Path

from calibration.card_gate import REAL_TARGETS, gate_section, set_caught
from calibration.card_peers import baseline_lines, peers_section, tried_section
from calibration.modes import (
    GEN_STEPS,
    GENERATION_JSON,
    comparison_lines,
    decide,
    evaluation_sets,
    exposure_kinds,
    fmt,
    mix_sets,
    mode_column,
)
from calibration.real import REAL_SCANS_JSON
from corpus.load import load_glyph_data
from corpus.page_import import VD_SBB_SPLITS
from glyphgate.core.contract.artifacts import PEERS_JSON, load_calibration, read_json

# The default model's targets (the shipping issue); the card says met or missed for each.
TARGETS = {
    "test accuracy": 0.98,
    "far-OOD energy AUROC (each set)": 0.995,
    "near-OOD energy AUROC (each evaluation set)": 0.95,
}
PANEL_LIMIT = 0.03  # no perturbation may move accuracy down or the flag rate up by more than 3 points


def write_card(
    artifacts: str | Path,
    run: str | Path,
    data: str | Path,
    baseline_run: str | Path | None = None,
    command: str = "make model",
    compare: tuple[str | Path, str | Path] | None = None,
    before: str | Path | None = None,
) -> Path:
    """`compare`: (artifacts, run) of a model trained in another mode on the same data, for the
    side-by-side table and the rule that picks the shipped mode."""
    artifacts, run = Path(artifacts), Path(run)
    cal = load_calibration(artifacts)
    cfg = read_json(run / "config.json")
    metrics = read_json(run / "metrics.json")
    d = load_glyph_data(data)
    wall = metrics.get("fit_wall_s")
    if wall is None:  # runs made before fit_wall_s was recorded: config.json is written at start
        wall = (run / "metrics.json").stat().st_mtime - (run / "config.json").stat().st_mtime
    real = cfg.get("real_dir")
    real_flag = f" --real {real}" if real else ""
    evaluated = read_json(artifacts / REAL_SCANS_JSON) if (artifacts / REAL_SCANS_JSON).is_file() else {}
    sets = cal["metrics"]["sets"]
    exposure = exposure_kinds(cfg)
    mixes = mix_sets(data)
    far, near_eval = evaluation_sets(cal, cfg, data)
    generation = read_json(artifacts / GENERATION_JSON) if (artifacts / GENERATION_JSON).is_file() else None
    peers = read_json(artifacts / PEERS_JSON) if (artifacts / PEERS_JSON).is_file() else None
    shipped_baseline = next((b["artifacts"] for b in cal.get("baselines", [])), None)
    columns = [mode_column(artifacts, run, data), mode_column(*compare, data)] if compare else []
    acc = cal["id"]["accuracy"]
    cmp = cal["comparison"]
    clf = next((v for k, v in cmp.items() if k.startswith("classifier · neg_max_softmax")), None)
    checks = [
        ("test accuracy", acc, TARGETS["test accuracy"], acc >= TARGETS["test accuracy"]),
        (
            "far-OOD energy AUROC (each set)",
            min(far.values()),
            TARGETS["far-OOD energy AUROC (each set)"],
            min(far.values()) >= TARGETS["far-OOD energy AUROC (each set)"],
        ),
        (
            "near-OOD energy AUROC (each evaluation set)",
            min(near_eval.values()),
            TARGETS["near-OOD energy AUROC (each evaluation set)"],
            min(near_eval.values()) >= TARGETS["near-OOD energy AUROC (each evaluation set)"],
        ),
    ]
    gen256 = (generation or {}).get("steps", {}).get(GEN_STEPS)
    if gen256 and gen256.get("conditional_accuracy") is not None:
        v = gen256["conditional_accuracy"]
        checks.append(("conditional accuracy of 256-step samples", v, 0.90, v >= 0.90))
    if clf is not None:
        jem_near = cal["metrics"]["kinds"]["near"]["scores"]["energy"]["auroc"]
        checks.append(
            (
                "near-OOD AUROC above the classifier's max-softmax",
                jem_near,
                clf["all near"]["auroc"],
                jem_near > clf["all near"]["auroc"],
            )
        )
    lines = [
        f"# Model card: `{artifacts.name}`",
        "",
        "A Joint Energy-based Model (JEM) that classifies 42 classes of early-printed glyphs, flags scans that are "
        "not glyphs (energy above a calibrated threshold) and samples glyphs by SGLD.",
        "",
        "## How it was made",
        "",
        f"`{command}` from the repository root; the steps (each a `glyphgate` sub-command):",
        "",
        "```",
        f"glyphgate data synth --out {data}",
        *(
            [
                f"glyphgate data import-page ../shared/real/vd-sbb-16c --split-by-work corpus/vd_sbb_splits.json --out {real}"
            ]
            if real
            else []
        ),
        f"glyphgate train --data {data}{real_flag} --out {run}",
        *(
            [
                f"glyphgate train --data {data}{real_flag} --out {baseline_run} --mode classifier",
                f"glyphgate export --ckpt {baseline_run}/checkpoints/last.ckpt --out {shipped_baseline}",
                f"glyphgate calibrate --artifacts {shipped_baseline} --data {data} --no-rbm"
                + (
                    f" --real {real}"
                    if cal.get("threshold_population", {}).get("population") == "real"
                    else ""
                ),
            ]
            if baseline_run and shipped_baseline
            else []
        ),
        f"glyphgate export --ckpt {run}/checkpoints/last.ckpt --out {artifacts}",
        f"glyphgate calibrate --artifacts {artifacts} --data {data}"
        + (f" --baseline {shipped_baseline}" if shipped_baseline else "")
        + (f" --real {real}" if cal.get("threshold_population", {}).get("population") == "real" else ""),
        *(
            [
                f"glyphgate evaluate --artifacts {artifacts}"
                + (f" --baseline {r['baseline']['artifacts']}" if "baseline" in r else "")
                + f" --data {r.get('data', '<imported pages>')} --name {n}"
                for n, r in evaluated.items()
            ]
        ),
        *(
            [
                f"glyphgate peers --artifacts {artifacts} --baseline {peers['models']['baseline']['artifacts']} "
                f"--data {data}"
                + (f" --real {real}" if real else "")
                + "".join(f" --collection {n}={t['data']}" for n, t in peers["collections"].items())
            ]
            if peers and "baseline" in peers["models"]
            else []
        ),
        *(
            [
                f"glyphgate generate --evaluate --ckpt {artifacts} --baseline {generation['baseline']} "
                f"--data {generation['data']} --out {artifacts}/{GENERATION_JSON}"
            ]
            if generation
            else []
        ),
        f"glyphgate card --artifacts {artifacts} --run {run} --data {data}"
        + (f" --baseline-run {baseline_run}" if baseline_run else "")
        + (f" --compare {compare[0]} {compare[1]}" if compare else ""),
        "```",
        *(
            [
                "",
                f"The compared model (`{columns[1]['mode']}`, `{compare[0]}`) came from `make compare`: the same train, "
                "export, calibrate, evaluate and generate --evaluate steps in that mode.",
            ]
            if compare
            else []
        ),
        "",
        "## Data",
        "",
        *_real_data_lines(cfg),
        f"Embedded synthetic letterpress corpus (`{data}`, {d.layout} layout): "
        + ", ".join(f"{k} {len(v[1])}" for k, v in d.splits.items())
        + f" images, {d.num_classes} classes "
        f"({' '.join(d.classes)}). OOD sets: "
        + ", ".join(f"{n} ({d.ood_kind.get(n, '?')}, {len(x)})" for n, x in d.ood.items())
        + ".",
        "",
        "## Training",
        "",
        f"Mode `{cfg['mode']}`, {metrics['epochs']} epochs in {wall / 60:.1f} min of wall time on "
        f"{'the build machine'}; exported checkpoint: `last.ckpt` (end of the cosine schedule).",
        "",
        "```json",
        json.dumps(cfg, indent=1),
        "```",
        "",
        *gate_section(cal, evaluated, exposure, Path(before) if before else None, mixes),
        "## Measured (from calibration.json)",
        "",
        f"- Synthetic ID test split: accuracy **{acc:.4f}**, ECE {cal['id'].get('ece_raw', cal['id']['ece']):.4f} raw, "
        f"{cal['id']['ece']:.4f} at the temperature T = {cal.get('temperature', 1.0):.3f} (N = {cal['id']['n']}), "
        f"flagged at the shipped threshold {cal['id'].get('flagged_at_threshold', 1 - cal['measured_tpr']):.4f}.",
        f"- Threshold: energy > **{cal['threshold']:.4f}** flags a scan; it keeps {cal['measured_tpr']:.4f} of the "
        f"{cal.get('threshold_population', {}).get('population', 'synthetic')} glyphs it was fitted on "
        f"(target TPR {cal['target_tpr']}).",
        "",
        "| OOD set | kind | role | caught at threshold | energy AUROC | FPR95 |",
        "|---|---|---|---|---|---|",
        *[
            f"| {n} | {m['kind']} | {'exposure' if n in exposure else 'mix' if n in mixes else 'evaluation' if not n.startswith('all ') else ''} | "
            f"{set_caught(m):.4f} | {m['scores']['energy']['auroc']:.4f} | {m['scores']['energy']['fpr95']:.4f} |"
            for n, m in {**sets, **{f"all {k}": v for k, v in cal["metrics"]["kinds"].items()}}.items()
        ],
        "",
        f"Outlier exposure: **exposure kinds** {', '.join(sorted(exposure)) if exposure else 'none'} "
        + (
            "(with the real training works' own words, fragments, blanks and other symbols) "
            if exposure and cfg.get("real_dir")
            else ""
        )
        + "were seen in training as negatives; **evaluation kinds**, never seen in training: "
        + ", ".join(sorted(n for n in sets if n not in exposure and n not in mixes))
        + " (ood_ta / ood_tb are the course's mixes and include exposure kinds).",
        "",
        "## Robustness panel",
        "",
        "The ID test split re-cut and degraded as real pipelines do, at the shipped threshold "
        f"(target: no row loses more than {100 * PANEL_LIMIT:.0f} points of accuracy or flags more than "
        f"{100 * PANEL_LIMIT:.0f} points more glyphs).",
        "",
        "| perturbation | accuracy | Δ | flagged | Δ | |",
        "|---|---|---|---|---|---|",
        *[
            f"| {n} | {r['accuracy']:.4f} | {100 * r['d_accuracy']:+.1f} pt | {r['flagged']:.4f} | {100 * r['d_flagged']:+.1f} pt | "
            f"{'' if n == 'clean' else 'met' if r['d_accuracy'] >= -PANEL_LIMIT and r['d_flagged'] <= PANEL_LIMIT else '**missed**'} |"
            for n, r in cal.get("robustness", {}).items()
        ],
        "",
        *_real_section(evaluated),
        "",
        *baseline_lines(evaluated),
        *peers_section(peers),
        *tried_section(),
        *_generation_section(generation),
        *_modes_section(columns, command),
        "## Against the targets",
        "",
        "| quantity | measured | target | |",
        "|---|---|---|---|",
        *[
            f"| {name} | {fmt(v)} | {'>' if 'classifier' in name else '≥'} {t:.4f} | {'met' if ok else '**missed** by ' + fmt(t - v)} |"
            for name, v, t, ok in checks
        ],
        "",
        "## Detectors compared (AUROC / FPR95, same data)",
        "",
        "| detector | all far | all near | " + " | ".join(n for n in sets) + " |",
        "|---|---|---|" + "---|" * len(sets),
        *[
            f"| {det} | {row['all far']['auroc']:.3f} / {row['all far']['fpr95']:.3f} | {row['all near']['auroc']:.3f} / "
            f"{row['all near']['fpr95']:.3f} | " + " | ".join(f"{row[n]['auroc']:.3f}" for n in sets) + " |"
            for det, row in cmp.items()
        ],
        "",
        "Full report with histograms, ROC curves, reliability diagram and the hardest cases: `report/index.html`.",
        "",
        "## Limits",
        "",
        "- The synthetic corpus is rendered from 23 digital typefaces; the real glyphs come from 12 works of the 16th century. "
        "Other centuries, faces and scanners differ (type wear, show-through): measure on your own pages "
        "(`glyphgate data import-page`, `glyphgate evaluate`) before trusting the threshold.",
        "- Near-OOD glyph-like shapes (foreign capitals, Greek/Cyrillic, rotated letters) are the hard cases; see the table.",
    ]
    path = artifacts / "MODEL_CARD.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _real_data_lines(cfg: dict) -> list[str]:
    real = cfg.get("real_dir")
    if not real:
        return [
            "**No real glyphs**: `make model` ran without `REAL` (../shared/real/vd-sbb-16c was not there), so this "
            "model saw the synthetic corpus only.",
            "",
        ]
    splits = read_json(VD_SBB_SPLITS)
    return [
        f"Real glyphs (`{real}`, imported with `glyphgate data import-page --split-by-work corpus/vd_sbb_splits.json`), "
        f"mixed into every epoch at a share of {cfg.get('real_share')}: glyph-level PAGE-XML ground truth of OCR-D-GT-VD-SBB "
        "(Berlin State Library, VD16 prints of the 16th century, via OCR-D's public ground truth; CC BY-SA 4.0). "
        "Split by work, never by page:",
        f"- training works: {', '.join(splits['train'])};",
        f"- validation works: {', '.join(splits['val'])};",
        f"- test works (never trained or tuned on): {', '.join(splits['test'])}.",
        "Tilde abbreviations (ã ẽ ĩ õ ũ) are the same cast bar as the corpus' macron classes and map onto ā ē ī ō ū; MUFI "
        "ligatures (private-use characters), combining e-above umlauts, digits, punctuation and capitals outside the 42 "
        "classes go to ood/other_symbols.",
        "",
    ]


def _real_section(real: dict) -> list[str]:
    if not real:
        return [
            "## Real pages",
            "",
            "Not measured: `make real-eval` writes real_scans.json when the real pages are present.",
        ]
    kinds = sorted({k for r in real.values() for k in r["ood"]})
    lines = [
        "## Real pages",
        "",
        "Glyphs cut from real pages with `glyphgate data import-page` (box crops), scored at the shipped threshold; "
        "AUROC of the glyphs' energy against the same pages' whole words, fragments (half of one glyph and half of "
        "the next), blank margins and other symbols. Measured, never tuned against.",
        "",
        "| collection | glyphs | accuracy | flagged | "
        + " | ".join(f"{k}: caught / AUROC" for k in kinds)
        + " |",
        "|---|---|---|---|" + "---|" * len(kinds),
    ]
    for name, r in real.items():
        lines.append(
            f"| {name} | {r['n_glyphs']} | {r['accuracy']:.4f} | {r['flagged_at_threshold']:.4f} | "
            + " | ".join(
                f"{r['ood'][k].get('caught_at_threshold', float('nan')):.3f} / {r['ood'][k]['auroc']:.3f}"
                if k in r["ood"]
                else ""
                for k in kinds
            )
            + " |"
        )
    lines += [
        "",
        "Against the real-scan targets:",
        "",
        "| collection | quantity | measured | target | |",
        "|---|---|---|---|---|",
    ]
    for name, targets in REAL_TARGETS.items():
        if name not in real:
            continue
        r = real[name]
        for q, (bound, _how) in targets.items():
            what, _, kind = q.partition(" ")
            if what != "auroc" or kind not in r["ood"]:
                continue  # accuracy, flagged and caught are in the gate section
            v = r["ood"][kind]["auroc"]
            lines.append(
                f"| {name} | AUROC vs {kind} | {v:.4f} | ≥ {bound} | {'met' if v >= bound else '**missed**'} |"
            )
    lines += ["", "Sources: " + "; ".join(f"{n}: {r['source']}" for n, r in real.items()) + "."]
    return lines


def _generation_section(gen: dict | None) -> list[str]:
    if not gen:
        return [
            "## Generation",
            "",
            "Not measured: `glyphgate generate --evaluate --out <artifacts>/generation.json` writes it.",
            "",
        ]
    ref = gen["reference"]
    return [
        "## Generation",
        "",
        f"`glyphgate generate --evaluate`: {gen['per_class']} fresh SGLD chains per class ({gen['n_samples']} samples, "
        f"seed {gen['seed']}), measured at each step count on the same chains, in the classifier baseline's "
        "standardised penultimate features against the real test glyphs. Conditional accuracy: the share the "
        "baseline labels as the class asked for; KID: unbiased kernel distance to the test glyphs (lower is closer); "
        "diversity: mean pairwise distance within a class.",
        "",
        "| SGLD steps | conditional accuracy | KID | within-class diversity | seconds |",
        "|---|---|---|---|---|",
        *[
            f"| {k} | {fmt(f['conditional_accuracy'], 3)} | {f['kid']:.3f} | {f['diversity']:.2f} | {f['seconds']} |"
            for k, f in gen["steps"].items()
        ],
        f"| real test glyphs ({ref['n_real']}) | {ref['baseline_accuracy_on_real']:.3f} (baseline) | "
        f"{ref['kid_real_halves']:.3f} (half vs half) | {ref['diversity_real']:.2f} | |",
        "",
        "Sample grids (one class per row, the first 4 chains): `generation_steps<k>.png` beside generation.json.",
        "",
    ]


def _modes_section(columns: list[dict], command: str) -> list[str]:
    if len(columns) < 2:
        return []
    by = {c["mode"]: c for c in columns}
    lines = [
        "## Training modes compared",
        "",
        "The same data, epoch budget (45), width, sampler and outlier exposure; `icd` adds improved contrastive "
        "divergence's KL term (energy of one differentiable SGLD step with the weights frozen, minus a "
        "nearest-neighbour entropy in pixel space) and glyph-safe augmentation transitions in the chains. "
        "Wall times are the runs' own (2 CPU cores, shared with other work while they ran).",
        "",
        *comparison_lines(columns),
        "",
    ]
    if {"jem", "icd"} <= set(by):
        ship, why = decide(by["jem"], by["icd"])
        pick = "icd" if ship else "jem"
        kj, ki = (by[m]["generation"].get(GEN_STEPS, {}).get("kid") for m in ("jem", "icd"))
        if kj and ki:
            change = (ki - kj) / abs(kj)
            lines += [
                f"KID at 256 steps, `icd` against `jem`: {100 * change:+.0f} % (the issue's target: at least 20 % "
                f"lower): {'met' if change <= -0.2 else '**missed**'}.",
                "",
            ]
        lines += [
            "Rule (the issue's, with the project's order: real pages and the robustness panel first): ship `icd` "
            "only if it is not worse on the real pages' words and fragments nor on the panel's worst rows, better on "
            "the synthetic near evaluation sets (mean and worst) with far not worse, better on generation (KID at "
            f"256 steps) and loses at most 0.5 point of accuracy. {why}; "
            f"so the default is **`{pick}`**"
            + ("." if pick == columns[0]["mode"] else f", but this card's model is `{columns[0]['mode']}`."),
            "",
        ]
    return lines
