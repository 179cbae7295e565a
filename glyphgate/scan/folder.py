"""`glyphgate scan`: every image under a folder (or in a ZIP) -> results.csv / results.json and a
contact sheet of the flagged scans. Scores locally on ONNX Runtime or through a running
server's /classify_batch. Unreadable files are listed with their reason and never stop a run."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from glyphgate.core.contract.artifacts import load_calibration
from glyphgate.core.contract.settings import load as load_settings
from glyphgate.core.errors import DataError
from glyphgate.core.image.decode import decode, decode_many
from glyphgate.core.image.grid import grid_image, input_image
from glyphgate.core.scoring.scorer import VERDICT

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


def sources(path: Path) -> tuple[list[str], callable]:
    """Names of every file under a folder or in a ZIP, and a reader name -> bytes."""
    if path.is_dir():
        names = sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())
        return names, lambda name: (path / name).read_bytes()
    if path.is_file() and zipfile.is_zipfile(path):
        archive = zipfile.ZipFile(path)
        names = sorted(i.filename for i in archive.infolist() if not i.is_dir())
        return names, archive.read
    if path.exists():
        raise DataError(f"{path}: neither a folder nor a ZIP archive")
    raise DataError(f"{path}: no such folder or ZIP file")


def chunks(seq: list, size: int) -> Iterator[list]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


def _png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def open_scorer(artifacts: str | Path | None, url: str | None, token: str | None, keep_all: bool = False):
    """The scorer of a scan: the artifacts folder's ONNX model here, or a server at `url`
    (`keep_all`: keep every scanned array, not only the flagged, for an FDR cut at the end)."""
    return RemoteScorer(url, token, keep_all=keep_all) if url else LocalScorer(Path(artifacts))


class LocalScorer:
    def __init__(self, artifacts: Path):
        from glyphgate.core.scoring.scorer import Scorer

        cal, settings = load_calibration(artifacts), load_settings()
        self.scorer = Scorer.from_calibration(artifacts, cal, settings.ort_threads)
        self.name = str(artifacts)
        self.max_pixels = settings.max_pixels

    def __call__(self, batch: list[tuple[str, bytes]]) -> tuple[list[dict], dict[str, np.ndarray]]:
        x, ok, errors = decode_many(batch, self.max_pixels)
        rows = [{"path": e["file"], "error": e["error"]} for e in errors]
        arrays = {batch[i][0]: x[j : j + 1] for j, i in enumerate(ok)}
        if ok:
            for i, r in zip(ok, self.scorer.classify(x)):
                rows.append({"path": batch[i][0], **{k: r[k] for k in VERDICT}})
        return rows, arrays

    def crops(self, names: list[str], crops: list[np.ndarray]) -> tuple[list[dict], dict[str, np.ndarray]]:
        """Grey crops already in memory (cut from a page): no encode and decode on the way."""
        verdicts, x = self.scorer.classify_crops(crops)
        rows = [{"path": n, **{k: r[k] for k in VERDICT}} for n, r in zip(names, verdicts)]
        return rows, {n: x[j : j + 1] for j, n in enumerate(names)}


class RemoteScorer:
    def __init__(self, url: str, token: str | None, keep_all: bool = False):
        import httpx

        self.keep_all = keep_all  # with --fdr the flagged set is only known at the end
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
            if res["is_ood"] or self.keep_all:  # only flagged scans go on the contact sheet
                arrays[name] = decode(data, name, self.max_pixels)
        return rows, arrays

    def crops(self, names: list[str], crops: list[np.ndarray]) -> tuple[list[dict], dict[str, np.ndarray]]:
        """Grey crops cut from a page, sent as PNG: lossless for them, so the server's verdict is
        the one it gives the crop itself."""
        return self([(n, _png(c)) for n, c in zip(names, crops)])


def scan(
    path: str | Path,
    out: str | Path,
    score: "LocalScorer | RemoteScorer",
    batch: int = 256,
    progress: bool = True,
    fdr: float | None = None,
) -> dict:
    path, out = Path(path), Path(out)
    names, read = sources(path)
    rows, flagged = [], {}
    t0 = time.perf_counter()
    with tqdm(total=len(names), unit="img", desc="scan", disable=not progress) as bar:
        for group in chunks(names, batch):
            items = []
            for name in group:
                try:
                    items.append((name, read(name)))
                except (OSError, zipfile.BadZipFile, RuntimeError) as e:
                    rows.append({"path": name, "error": f"{name}: unreadable ({e})"})
            got, arrays = score(items) if items else ([], {})
            rows.extend(got)
            flagged.update(
                {
                    r["path"]: arrays[r["path"]]
                    for r in got
                    if (r.get("is_ood") or fdr is not None) and r["path"] in arrays
                }
            )
            bar.update(len(group))
    rule = "energy > threshold"
    if fdr is not None:
        scored = [r for r in rows if "error" not in r]
        if any(r.get("p_value") is None for r in scored):
            raise DataError(
                "--fdr needs p-values: the model's calibration.json stores no calibration energies "
                "(re-run glyphgate calibrate)"
            )
        for r, hit in zip(scored, benjamini_hochberg(np.array([r["p_value"] for r in scored]), fdr)):
            r["is_ood"] = bool(hit)
        hits = {r["path"] for r in scored if r["is_ood"]}
        flagged = {k: v for k, v in flagged.items() if k in hits}
        rule = f"Benjamini-Hochberg at FDR {fdr} over the {len(scored)} scored images"
    seconds = time.perf_counter() - t0
    order = {n: i for i, n in enumerate(names)}
    rows.sort(key=lambda r: order.get(r["path"], len(order)))
    summary = {
        "source": str(path),
        "images": len(names),
        "scored": sum("error" not in r for r in rows),
        "flagged": sum(bool(r.get("is_ood")) for r in rows),
        "unreadable": sum("error" in r for r in rows),
        "seconds": seconds,
        "images_per_s": len(names) / seconds if seconds > 0 else None,
        "scorer": score.name,
        "rule": rule,
    }
    write_reports(out, rows, flagged, summary)
    return summary


def write_reports(
    out: Path, rows: list[dict], flagged: dict[str, np.ndarray], summary: dict, fields: list[str] = FIELDS
) -> None:
    """results.csv (the `fields` columns), results.json (summary + rows), and the contact sheet."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "results.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in fields})
    (out / "results.json").write_text(
        json.dumps({"summary": summary, "results": rows}, indent=1, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    contact_sheet(out, [r for r in rows if r.get("is_ood")], flagged, summary)


def _png_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    input_image(a).save(buf, format="PNG")
    return buf.getvalue()


def contact_sheet(out: Path, rows: list[dict], arrays: dict[str, np.ndarray], summary: dict) -> None:
    """flagged.png (the flagged scans as the model sees them) and flagged.html (with names and energies)."""
    # Highest energy first: the scans least like any glyph lead the sheet.
    shown = sorted((r for r in rows if r["path"] in arrays), key=lambda r: -r["energy"])
    if shown:
        grid_image(
            [arrays[r["path"]] for r in shown],
            nrow=8,
            scale=2,
            captions=[Path(r["path"]).name for r in shown],
        ).save(out / "flagged.png")
    cells = "".join(
        f"<figure><img src='data:image/png;base64,{base64.b64encode(_png_bytes(arrays[r['path']])).decode()}' width=112 height=112>"
        f"<figcaption>{html.escape(r['path'])}<br>energy {r['energy']:.2f} · {html.escape(r['label'])} "
        f"{r['confidence']:.2f}</figcaption></figure>"
        for r in shown
    )
    (out / "flagged.html").write_text(
        f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>glyphgate scan: flagged scans</title><style>body{{font-family:sans-serif;margin:2em}}
figure{{display:inline-block;margin:6px;width:150px;font-size:11px;vertical-align:top}}
img{{image-rendering:pixelated;border:2px solid #c33}}</style></head><body>
<h1>Flagged scans: {summary["flagged"]} of {summary["images"]}</h1>
<p>Source <code>{html.escape(summary["source"])}</code>; {summary["unreadable"]} unreadable (see results.csv).
Flagged by: {html.escape(summary.get("rule", "energy > threshold"))}.</p>{cells or "<p>Nothing was flagged.</p>"}
</body></html>
""",
        encoding="utf-8",
    )
