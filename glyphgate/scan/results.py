"""A scan's reports on disk. results.csv is appended and fsynced after every chunk, so a killed
scan loses at most the chunk in flight and `--resume` knows what is done; results.json and the
contact sheet are written at the end from results.csv read back, so memory stays flat however
large the folder. The sheet shows the flagged scans of highest energy only (a bounded heap)."""

from __future__ import annotations

import base64
import csv
import heapq
import html
import io
import itertools
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from glyphgate.core.errors import ConfigError, DataError
from glyphgate.core.image.grid import grid_image, input_image

RESULTS = "results.csv"
SHEET_MAX = 512  # scans on the contact sheet: a page of thumbnails a person still looks through
FLOATS = ("confidence", "energy", "p_value")
# Columns a row leaves out of results.json when empty: an unreadable file has no verdict.
OPTIONAL = ("label", *FLOATS, "is_ood", "error")


def typed(row: dict[str, str]) -> dict:
    """A results.csv row as results.json holds it: numbers as numbers, is_ood as a boolean."""
    out = {}
    for k, v in row.items():
        if k in OPTIONAL and v == "":
            continue
        out[k] = float(v) if k in FLOATS else v == "True" if k == "is_ood" else v
    return out


class ResultsFile:
    """OUT/results.csv, open for appending. `start` makes or resumes it."""

    def __init__(self, path: Path, fields: list[str]):
        self.path, self.fields = path, fields
        self._file = None

    @classmethod
    def start(
        cls,
        out: Path,
        fields: list[str],
        resume: bool,
        overwrite: bool,
        key: str = "path",
        redo_last: bool = False,
    ) -> tuple["ResultsFile", set[str]]:
        """The file and the `key` values of the rows it already holds (empty unless `resume`).
        A last line cut short by a kill is dropped; `redo_last` drops every row of the last
        `key` too (a page whose rows may be only partly written)."""
        results = cls(out / RESULTS, fields)
        exists = results._holds_rows()
        if exists and not (resume or overwrite):
            raise ConfigError(
                f"{results.path} exists: pass --resume to finish that scan, or --overwrite to start again"
            )
        out.mkdir(parents=True, exist_ok=True)
        done = results._recover(key, redo_last) if exists and resume else None
        results._file = open(results.path, "a" if done is not None else "w", newline="", encoding="utf-8")
        results._writer = csv.DictWriter(results._file, fieldnames=fields, extrasaction="ignore")
        if done is None:
            results._writer.writeheader()
        return results, done or set()

    def _recover(self, key: str, redo_last: bool) -> set[str] | None:
        """What a resumed scan skips; None when the file holds not even its header."""
        with open(self.path, "rb") as f:
            if b"\n" not in f.readline():
                return None  # killed while writing the header
            f.seek(-1, os.SEEK_END)
            cut_short = f.read(1) != b"\n"
        if self._header() != self.fields:
            raise DataError(
                f"{self.path}: its columns ({', '.join(self._header())}) are not those of this scan "
                f"({', '.join(self.fields)}); pass --overwrite to start again"
            )
        keys = [row[key] for row in self.rows()]
        keep = len(keys) - cut_short
        last = keys[keep - 1] if redo_last and keep else None
        while last is not None and keep and keys[keep - 1] == last:
            keep -= 1
        if keep < len(keys):
            self.rewrite(itertools.islice(self.rows(), keep))
        return set(keys[:keep])

    def _holds_rows(self) -> bool:
        """A results.csv with at least one row after its header: a header alone loses nothing."""
        if not self.path.is_file():
            return False
        with open(self.path, "rb") as f:
            f.readline()
            return bool(f.read(1))

    def _header(self) -> list[str]:
        with open(self.path, newline="", encoding="utf-8") as f:
            return next(csv.reader(f), [])

    def append(self, rows: list[dict]) -> None:
        """Rows written and on disk before the next chunk starts: what --resume relies on."""
        for r in rows:
            self._writer.writerow({k: _one_line(r.get(k, "")) for k in self.fields})
        self._file.flush()
        os.fsync(self._file.fileno())

    def rows(self) -> Iterator[dict[str, str]]:
        """The rows on disk, as strings, one at a time."""
        with open(self.path, newline="", encoding="utf-8") as f:
            yield from csv.DictReader(f)

    def rewrite(self, rows: Iterable[dict]) -> None:
        """results.csv replaced in one step (temp file + os.replace): a kill leaves the old one."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=self.fields, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def close(self) -> None:
        if self._file:
            self._file.close()
            self._file = None

    def __enter__(self) -> "ResultsFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _one_line(value):
    """Error messages can quote an exception with newlines; a row stays one line on disk, so a
    line cut short by a kill is recognisable."""
    return " ".join(value.splitlines()) if isinstance(value, str) else value


@dataclass(order=True)
class _Entry:
    energy: float
    order: int  # ties: the earlier scan stays on the sheet
    name: str = field(compare=False)
    row: dict = field(compare=False)
    array: np.ndarray | None = field(compare=False, default=None)


class TopK:
    """The k scans of highest energy offered, with their arrays when known (a bounded heap)."""

    def __init__(self, k: int = SHEET_MAX):
        self.k, self.heap, self.offered = k, [], 0

    def offer(self, name: str, row: dict, array: np.ndarray | None = None) -> None:
        self.offered += 1
        entry = _Entry(float(row["energy"]), -self.offered, name, row)
        full = len(self.heap) >= self.k
        if full and entry < self.heap[0]:
            return
        # A copy: a scorer's array is often a view of its whole batch, which it would keep alive.
        entry.array = None if array is None else np.array(array, copy=True)
        (heapq.heapreplace if full else heapq.heappush)(self.heap, entry)

    def arrays(self) -> dict[str, np.ndarray]:
        return {e.name: e.array for e in self.heap if e.array is not None}

    def highest_first(self) -> list[_Entry]:
        return sorted(self.heap, reverse=True)


def tally(rows: Iterable[dict], name_of: Callable[[dict], str], k: int = SHEET_MAX) -> tuple[dict, TopK]:
    """Counts of typed rows and the top-k flagged of them by energy."""
    counts = {"rows": 0, "scored": 0, "flagged": 0, "unreadable": 0}
    top = TopK(k)
    for r in rows:
        counts["rows"] += 1
        if "error" in r:
            counts["unreadable"] += 1
            continue
        counts["scored"] += 1
        if r.get("is_ood"):
            counts["flagged"] += 1
            top.offer(name_of(r), r)
    return counts, top


def write_json(out: Path, summary: dict, rows: Iterable[dict]) -> None:
    """results.json, {"summary": ..., "results": [...]}, streamed row by row."""
    tmp = out / "results.json.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write('{"summary": ' + json.dumps(summary, indent=1, ensure_ascii=False) + ',\n"results": [')
        for i, r in enumerate(rows):
            f.write(("," if i else "") + "\n" + json.dumps(r, ensure_ascii=False))
        f.write("\n]}\n")
    os.replace(tmp, out / "results.json")


def _png_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    input_image(a).save(buf, format="PNG")
    return buf.getvalue()


def contact_sheet(out: Path, shown: list[_Entry], summary: dict) -> None:
    """flagged.png (the flagged scans as the model sees them, highest energy first) and
    flagged.html (with names and energies); at most SHEET_MAX of them, the sheet says so."""
    shown = [e for e in shown if e.array is not None]
    if shown:
        grid_image(
            [e.array for e in shown], nrow=8, scale=2, captions=[Path(e.name).name for e in shown]
        ).save(out / "flagged.png")
    else:
        (out / "flagged.png").unlink(missing_ok=True)  # left by an earlier scan into this folder
    cells = "".join(
        f"<figure><img src='data:image/png;base64,{base64.b64encode(_png_bytes(e.array)).decode()}' width=112 height=112>"
        f"<figcaption>{html.escape(e.name)}<br>energy {e.row['energy']:.2f} · {html.escape(e.row['label'])} "
        f"{e.row['confidence']:.2f}</figcaption></figure>"
        for e in shown
    )
    more = (
        f"<p>Showing the {len(shown)} of highest energy; all {summary['flagged']} are in results.csv.</p>"
        if summary["flagged"] > len(shown)
        else ""
    )
    unfinished = (
        f"<p><strong>The scan is not finished: {summary['remaining']} still to scan "
        "(run it again with --resume).</strong></p>"
        if not summary.get("complete", True)
        else ""
    )
    (out / "flagged.html").write_text(
        f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>glyphgate scan: flagged scans</title><style>body{{font-family:sans-serif;margin:2em}}
figure{{display:inline-block;margin:6px;width:150px;font-size:11px;vertical-align:top}}
img{{image-rendering:pixelated;border:2px solid #c33}}</style></head><body>
<h1>Flagged scans: {summary["flagged"]} of {summary["images"]}</h1>{unfinished}
<p>Source <code>{html.escape(summary["source"])}</code>; {summary["unreadable"]} unreadable (see results.csv).
Flagged by: {html.escape(summary.get("rule", "energy > threshold"))}.</p>{more}{cells or "<p>Nothing was flagged.</p>"}
</body></html>
""",
        encoding="utf-8",
    )


def write_reports(
    out: Path,
    results: ResultsFile,
    summary: dict,
    name_of: Callable[[dict], str],
    seen: TopK,
    fetch: Callable[[list[_Entry]], dict[str, np.ndarray]],
) -> dict:
    """results.json and the contact sheet from results.csv as it is on disk. `seen` holds the
    arrays of the flagged scans of this run; the rest of the sheet (scans of an earlier,
    resumed run) is `fetch`ed again from the source. Returns the summary with the counts."""
    counts, top = tally(map(typed, results.rows()), name_of)
    summary = {**summary, **{k: v for k, v in counts.items() if k != "rows"}}
    if summary.get("images") is None:
        summary["images"] = counts["rows"]
    shown = top.highest_first()
    arrays = seen.arrays()
    missing = [e for e in shown if e.name not in arrays]
    if missing:
        arrays.update(fetch(missing))
    for e in shown:
        e.array = arrays.get(e.name)
    write_json(out, summary, map(typed, results.rows()))
    contact_sheet(out, shown, summary)
    return summary
