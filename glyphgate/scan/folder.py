"""`glyphgate scan`: every image under a folder (or in a ZIP) -> results.csv / results.json and a
contact sheet of the flagged scans. Scores locally on ONNX Runtime or through a running
server's /classify_batch. Unreadable files are listed with their reason and never stop a run.

The scan streams: results.csv grows chunk by chunk (fsynced), so memory stays flat with the size
of the folder, a killed scan loses at most its chunk in flight, and `--resume` skips what
results.csv already holds. SIGINT/SIGTERM stop it after the chunk in flight."""

from __future__ import annotations

import contextlib
import io
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from glyphgate.core.contract.artifacts import load_calibration
from glyphgate.core.contract.settings import load as load_settings
from glyphgate.core.errors import DataError, GlyphgateError
from glyphgate.core.image.decode import decode, decode_many
from glyphgate.core.image.preprocess import prepare_many, single_threaded_blas
from glyphgate.core.scoring.scorer import VERDICT
from glyphgate.scan.decode_pool import Decoded, Decoder, default_workers
from glyphgate.scan.results import SHEET_MAX, ResultsFile, TopK, write_reports
from glyphgate.scan.sources import Source
from glyphgate.scan.stop import StopBetweenChunks

FIELDS = ["path", "label", "confidence", "energy", "p_value", "is_ood", "error"]


def benjamini_hochberg(p: np.ndarray, q: float) -> np.ndarray:
    """Which hypotheses ("this scan is a real glyph") the Benjamini–Hochberg procedure rejects at
    false-discovery rate q: the flagged set holds at most a share q of real glyphs on average."""
    p = np.asarray(p, np.float64)
    m = len(p)
    if m == 0:
        return np.zeros(0, bool)
    order = np.argsort(p)
    below = np.flatnonzero(p[order] <= q * np.arange(1, m + 1) / m)
    flagged = np.zeros(m, bool)
    if len(below):
        flagged[order[: below[-1] + 1]] = True
    return flagged


def chunks(seq: list, size: int) -> Iterator[list]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


def _png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def open_scorer(artifacts: str | Path | None, url: str | None, token: str | None):
    """The scorer of a scan: the artifacts folder's ONNX model here, or a server at `url`.
    Either returns (rows, arrays): the arrays of some scans at least, for the contact sheet."""
    return RemoteScorer(url, token) if url else LocalScorer(Path(artifacts))


class LocalScorer:
    def __init__(self, artifacts: Path):
        from glyphgate.core.scoring.scorer import Scorer

        cal, settings = load_calibration(artifacts), load_settings()
        self.scorer = Scorer.from_calibration(artifacts, cal, settings.ort_threads)
        self.name = str(artifacts)
        self.max_pixels = settings.max_pixels

    def __call__(self, batch: list[tuple[str, bytes]]) -> tuple[list[dict], dict[str, np.ndarray]]:
        x, ok, errors = decode_many(batch, self.max_pixels)
        return self.decoded(Decoded([batch[i][0] for i in ok], x, {e["file"]: e["error"] for e in errors}))

    def decoded(self, chunk: Decoded) -> tuple[list[dict], dict[str, np.ndarray]]:
        """Rows for a chunk decoded already (by the scan's worker processes)."""
        rows = [{"path": name, "error": error} for name, error in chunk.errors.items()]
        arrays = {name: chunk.x[j : j + 1] for j, name in enumerate(chunk.names)}
        if chunk.names:
            for name, r in zip(chunk.names, self.scorer.rows(chunk.x)):
                rows.append({"path": name, **{k: r[k] for k in VERDICT}})
        return rows, arrays

    def crops(self, names: list[str], crops: list[np.ndarray]) -> tuple[list[dict], dict[str, np.ndarray]]:
        """Grey crops already in memory (cut from a page): no encode and decode on the way."""
        verdicts, x = self.scorer.classify_crops(crops)
        rows = [{"path": n, **{k: r[k] for k in VERDICT}} for n, r in zip(names, verdicts)]
        return rows, {n: x[j : j + 1] for j, n in enumerate(names)}


class RemoteScorer:
    def __init__(self, url: str, token: str | None):
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=300)
        self.name = url
        self.max_pixels = load_settings().max_pixels

    def __call__(self, batch: list[tuple[str, bytes]]) -> tuple[list[dict], dict[str, np.ndarray]]:
        files = [("images", (name, data, "application/octet-stream")) for name, data in batch]
        r = self.client.post("/classify_batch", files=files)
        if r.status_code >= 400:
            body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
            if r.status_code == 400 and "errors" in body:  # every file in the batch was unreadable
                return [{"path": batch[e["index"]][0], "error": e["error"]} for e in body["errors"]], {}
            raise DataError(
                f"{self.client.base_url}: HTTP {r.status_code}: {body.get('error', r.text[:200])}"
            )
        rows, arrays = [], {}
        for (name, data), res in zip(batch, r.json()["results"]):
            if "error" in res:
                rows.append({"path": name, "error": res["error"]})
                continue
            rows.append({"path": name, **{k: res.get(k) for k in VERDICT}})
            if res["is_ood"]:  # the sheet's; under --fdr it reads its scans again at the end
                arrays[name] = decode(data, name, self.max_pixels)
        return rows, arrays

    def crops(self, names: list[str], crops: list[np.ndarray]) -> tuple[list[dict], dict[str, np.ndarray]]:
        """Grey crops cut from a page, sent as PNG: lossless for them, so the server's verdict is
        the one it gives the crop itself."""
        rows, _ = self([(n, _png(c)) for n, c in zip(names, crops)])
        # only flagged glyphs go on the contact sheet: the others are not prepared at all
        flagged = {r["path"] for r in rows if r.get("is_ood")}
        keep = [(n, c) for n, c in zip(names, crops) if n in flagged]
        if not keep:
            return rows, {}
        x = prepare_many([c.astype(np.float32) for _, c in keep])
        return rows, {n: x[i : i + 1] for i, (n, _) in enumerate(keep)}


def scan(
    path: str | Path,
    out: str | Path,
    score: "LocalScorer | RemoteScorer",
    batch: int = 256,
    progress: bool = True,
    fdr: float | None = None,
    resume: bool = False,
    overwrite: bool = False,
    workers: int | None = None,
) -> dict:
    """Score every file of `path` into `out`; the summary says whether it finished ("complete").
    A local scan decodes in `workers` processes (default: one per core; 0: in this one)."""
    path, out = Path(path), Path(out)
    settings = load_settings()
    with Source(path, settings) as source:
        if not source.names:
            raise DataError(f"{path}: no files in it")
        results, done = ResultsFile.start(out, FIELDS, resume=resume, overwrite=overwrite)
        todo = [n for n in source.names if n not in done]
        # Under --fdr the flagged set is known only at the end: the highest energies, flagged or not.
        seen = TopK(SHEET_MAX)
        t0 = time.perf_counter()
        scanned = 0  # files of `todo` done in this run
        with (
            results,
            StopBetweenChunks() as stop,
            single_threaded_blas(),  # for the images this process prepares beside ORT and the workers
            scored_chunks(todo, batch, source, score, workers) as scored,
        ):
            with tqdm(total=len(todo), unit="img", desc="scan", disable=not progress) as bar:
                for group, rows, arrays in scored:
                    results.append(rows)
                    for r in rows:
                        if "error" not in r and (r["is_ood"] or fdr is not None):
                            seen.offer(r["path"], r, arrays.get(r["path"]))
                    scanned += len(group)
                    bar.update(len(group))
                    if stop.signum:
                        break
        seconds = time.perf_counter() - t0
        remaining = len(todo) - scanned
        summary = {
            "source": str(path),
            "images": len(source.names),
            "complete": remaining == 0,
            "remaining": remaining,
            "stopped_by": stop.name if remaining else None,
            "seconds": seconds,
            "images_per_s": scanned / seconds if scanned and seconds > 0 else None,
            "scorer": score.name,
            "rule": "energy > threshold",
        }
        if fdr is not None and remaining:
            # a cut over part of the folder would move as the rest comes in
            summary["rule"] = f"energy > threshold for now: the Benjamini-Hochberg cut at FDR {fdr} is made "
            summary["rule"] += "when the scan completes (--resume)"
        elif fdr is not None:
            summary["rule"] = fdr_cut(results, fdr)
        return write_reports(
            out, results, summary, lambda r: r["path"], seen, lambda missing: read_again(missing, source)
        )


@contextlib.contextmanager
def scored_chunks(todo: list[str], batch: int, source: Source, score, workers: int | None):
    """(group, its rows in order, arrays) per chunk of `todo`. A local scan decodes in worker
    processes while this one scores; a remote one sends the files' bytes as they are."""
    if not isinstance(score, LocalScorer):
        yield ((g, *score_chunk(g, source, score)) for g in chunks(todo, batch))
        return
    if workers is None:
        workers = default_workers() if len(todo) > batch else 0  # one chunk: not worth a pool's start
    with Decoder(source, workers, score.max_pixels) as decoder:
        groups = list(chunks(todo, batch))
        yield ((g, *ordered_rows(g, *score.decoded(d))) for g, d in zip(groups, decoder.chunks(groups)))


def score_chunk(group: list[str], source: Source, score) -> tuple[list[dict], dict[str, np.ndarray]]:
    """One row per name of `group`, in its order, and the arrays the scorer gave back."""
    rows, items = [], []
    for name in group:
        try:
            items.append((name, source.read(name)))
        except DataError as e:
            rows.append({"path": name, "error": str(e)})
    got, arrays = score(items) if items else ([], {})
    return ordered_rows(group, rows + got, arrays)


def ordered_rows(group: list[str], got: list[dict], arrays: dict) -> tuple[list[dict], dict[str, np.ndarray]]:
    """`got` in the order of `group`, each error also said on stderr."""
    rows = {r["path"]: r for r in got}
    ordered = [rows.get(n, {"path": n, "error": f"{n}: not scored"}) for n in group]
    for r in ordered:
        if "error" in r:
            tqdm.write(f"glyphgate: {r['error']}", file=sys.stderr)
    return ordered, arrays


def fdr_cut(results: ResultsFile, q: float) -> str:
    """Benjamini-Hochberg over the p-values results.csv holds, written back as its is_ood
    column (results.csv replaced once); returns the rule for the summary."""
    p_values, scored = [], 0
    for r in results.rows():
        if r["error"]:
            continue
        if r["p_value"] == "":
            raise DataError(
                "--fdr needs p-values: the model's calibration.json stores no calibration energies "
                "(re-run glyphgate calibrate)"
            )
        p_values.append(float(r["p_value"]))
        scored += 1
    hits = iter(benjamini_hochberg(np.array(p_values), q))
    results.rewrite({**r, "is_ood": bool(next(hits))} if not r["error"] else r for r in results.rows())
    return f"Benjamini-Hochberg at FDR {q} over the {scored} scored images"


def read_again(entries: list, source: Source) -> dict[str, np.ndarray]:
    """The arrays of scans scored by an earlier, resumed run (or under --fdr), from the source."""
    max_pixels = load_settings().max_pixels
    arrays = {}
    for e in entries:
        try:
            arrays[e.name] = decode(source.read(e.name), e.name, max_pixels)
        except GlyphgateError:  # changed since it was scored: the sheet goes without it
            pass
    return arrays
