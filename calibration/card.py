"""MODEL_CARD.md for an artifacts folder: data, training config, measured metrics against the
targets, the baselines, and the command that made it. templates/card.md.j2 renders it over the
same view as the report (calibration/view.py), so the card cannot drift from the numbers."""

from __future__ import annotations

import json
from pathlib import Path

from calibration import card_gate, card_peers
from calibration.modes import (
    GEN_STEPS,
    comparison_table,
    decide,
    exposure_kinds,
    kid_change,
    mix_sets,
    mode_column,
)
from calibration.record import read_record
from calibration.render import Table, fmt, render
from calibration.targets import TARGETS
from calibration.view import GENERATION_JSON, DataSummary, Run, View, read_optional
from corpus.load import load_glyph_data
from corpus.page_import import VD_SBB_SPLITS
from glyphgate.core.contract.artifacts import read_json

REPO = Path(__file__).resolve().parents[1]
IMPORT_JSON = "import.json"  # what `glyphgate data import-page` writes beside the crops


def read_run(run: str | Path) -> Run:
    run = Path(run)
    metrics = read_json(run / "metrics.json")
    wall = metrics.get("fit_wall_s")
    if wall is None:  # runs made before fit_wall_s was recorded: config.json is written at start
        wall = (run / "metrics.json").stat().st_mtime - (run / "config.json").stat().st_mtime
    return Run(run, read_json(run / "config.json"), metrics, wall)


def read_data(data: str | Path) -> DataSummary:
    d = load_glyph_data(data)
    manifest = read_optional(Path(data) / "classes.json") or {}
    faces = (manifest.get("generator") or {}).get("faces") if isinstance(manifest, dict) else None
    return DataSummary(
        str(data),
        d.layout,
        d.classes,
        {k: len(v[1]) for k, v in d.splits.items()},
        {n: (d.ood_kind.get(n, "?"), len(x)) for n, x in d.ood.items()},
        len(faces) if faces else None,
    )


def card_view(
    artifacts: str | Path, run: str | Path, data: str | Path, summary: DataSummary | None = None
) -> View:
    """A calibrated model with its run and data folder: everything its card shows."""
    r = read_run(run)
    return View.read(
        artifacts,
        read_record(artifacts),
        run=r,
        data=summary or read_data(data),
        exposure=exposure_kinds(r.cfg),
        mixes=mix_sets(data),
    )


def real_import(real_dir: str | None, real_pages: str | None) -> dict | None:
    """The real glyphs a run trained on: where their pages were (import.json's `source`, unless
    `real_pages` says), the splits file and the works of each split."""
    if not real_dir:
        return None
    imported = read_optional(Path(real_dir) / IMPORT_JSON) or {}
    splits_file = VD_SBB_SPLITS.relative_to(REPO) if VD_SBB_SPLITS.is_relative_to(REPO) else VD_SBB_SPLITS
    works = imported.get("splits") or read_json(VD_SBB_SPLITS)
    return {
        "dir": real_dir,
        "pages": real_pages or imported.get("source") or "<pages>",
        "splits_file": str(splits_file),
        "works": {s: works.get(s, []) for s in ("train", "val", "test")},
    }


def commands(v: View, art: Path, opts: dict) -> list[str]:
    """The `glyphgate` steps that made the card's model, from the files that record them."""
    rec, run, data, real = v.record, v.run.path, v.data.path, opts["real"]
    real_flag = f" --real {real['dir']}" if real else ""
    cal_real = f" --real {real['dir']}" if real and rec.population.population == "real" else ""
    baseline = rec.baselines[0].artifacts if rec.baselines else None
    out = [f"glyphgate data synth --out {data}"]
    if real:
        out.append(
            f"glyphgate data import-page {real['pages']} --split-by-work {real['splits_file']} --out {real['dir']}"
        )
    out.append(f"glyphgate train --data {data}{real_flag} --out {run}")
    if opts["baseline_run"] and baseline:
        b = opts["baseline_run"]
        out += [
            f"glyphgate train --data {data}{real_flag} --out {b} --mode classifier",
            f"glyphgate export --ckpt {b}/checkpoints/last.ckpt --out {baseline}",
            f"glyphgate calibrate --artifacts {baseline} --data {data} --no-rbm{cal_real}",
        ]
    out += [
        f"glyphgate export --ckpt {run}/checkpoints/last.ckpt --out {art}",
        f"glyphgate calibrate --artifacts {art} --data {data}"
        + (f" --baseline {baseline}" if baseline else "")
        + cal_real,
    ]
    for n, r in v.real.items():
        out.append(
            f"glyphgate evaluate --artifacts {art}"
            + (f" --baseline {r['baseline']['artifacts']}" if "baseline" in r else "")
            + f" --data {r.get('data', '<imported pages>')} --name {n}"
        )
    if v.peers and "baseline" in v.peers["models"]:
        out.append(
            f"glyphgate peers --artifacts {art} --baseline {v.peers['models']['baseline']['artifacts']} "
            f"--data {data}{real_flag}"
            + "".join(f" --collection {n}={t['data']}" for n, t in v.peers["collections"].items())
        )
    if v.generation:
        g = v.generation
        out.append(
            f"glyphgate generate --evaluate --ckpt {art} --baseline {g['baseline']} "
            f"--data {g['data']} --out {art}/{GENERATION_JSON}"
        )
    out.append(
        f"glyphgate card --artifacts {art} --run {run} --data {data}"
        + (f" --baseline-run {opts['baseline_run']}" if opts["baseline_run"] else "")
        + (f" --compare {opts['compare'][0]} {opts['compare'][1]}" if opts["compare"] else "")
        + (f" --before {opts['before']}" if opts["before"] else "")
        + (f" --real-pages {opts['real_pages']}" if opts["real_pages"] else "")
    )
    return out


def generation_table(gen: dict | None) -> Table | None:
    if not gen:
        return None
    ref = gen["reference"]
    t = Table(["SGLD steps", "conditional accuracy", "KID", "within-class diversity", "seconds"])
    for k, f in gen["steps"].items():
        t.rows.append(
            [k, fmt(f["conditional_accuracy"], 3), fmt(f["kid"], 3), fmt(f["diversity"], 2), f["seconds"]]
        )
    t.rows.append(
        [f"real test glyphs ({ref['n_real']})", f"{ref['baseline_accuracy_on_real']:.3f} (baseline)"]
        + [f"{ref['kid_real_halves']:.3f} (half vs half)", fmt(ref["diversity_real"], 2), ""]
    )
    return t


def modes(columns: list[dict]) -> dict | None:
    """The side-by-side table of two modes and, for jem against icd, the rule's pick."""
    if len(columns) < 2:
        return None
    by = {c["mode"]: c for c in columns}
    budgets = {c["max_epochs"] for c in columns}
    out = {"table": comparison_table(columns), "budget": budgets.pop() if len(budgets) == 1 else None}
    if {"jem", "icd"} <= set(by):
        ship, why = decide(by["jem"], by["icd"])
        out.update(why=why, pick="icd" if ship else "jem", kid_change=kid_change(by))
    return out


def render_card(v: View, art: Path, **opts) -> str:
    """The card's Markdown; `opts`: command, baseline_run, compare, before, real_pages, and
    `columns`, the side-by-side figures of this mode and another."""
    opts = {
        "command": "make model",
        "baseline_run": None,
        "compare": None,
        "before": None,
        "real_pages": None,
        "columns": [],
        **opts,
    }
    opts["real"] = real_import(v.run.cfg.get("real_dir"), opts["real_pages"])
    return render(
        "card.md.j2",
        v=v,
        name=art.name,
        opts=opts,
        commands=commands(v, art, opts),
        targets=TARGETS,
        gen_steps=GEN_STEPS,
        cfg_json=json.dumps(v.run.cfg, indent=1),
        gate_rows=card_gate.gate_rows(v),
        before=card_gate.before_after(v, Path(opts["before"]) if opts["before"] else None),
        checks=card_gate.target_checks(v),
        baseline_table=card_peers.baseline_table(v.real),
        peer_tables=v.peer_tables(),
        beaten=card_peers.beaten(v.peers),
        tried=card_peers.tried(),
        generation=generation_table(v.generation),
        modes=modes(opts["columns"]),
    )


def write_card(
    artifacts: str | Path,
    run: str | Path,
    data: str | Path,
    baseline_run: str | Path | None = None,
    command: str = "make model",
    compare: tuple[str | Path, str | Path] | None = None,
    before: str | Path | None = None,
    real_pages: str | Path | None = None,
) -> Path:
    """`compare`: (artifacts, run) of a model trained in another mode on the same data, for the
    side-by-side table and the rule that picks the shipped mode; `real_pages`: where the real
    pages were imported from (default: the real glyphs' import.json says)."""
    artifacts = Path(artifacts)
    v = card_view(artifacts, run, data)
    columns = [mode_column(v), mode_column(card_view(*compare, data, v.data))] if compare else []
    text = render_card(
        v,
        artifacts,
        command=command,
        baseline_run=baseline_run,
        compare=compare,
        before=before,
        real_pages=real_pages,
        columns=columns,
    )
    path = artifacts / "MODEL_CARD.md"
    path.write_text(text, encoding="utf-8")
    return path
