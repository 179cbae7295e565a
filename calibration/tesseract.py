"""Tesseract 5 as a peer: each crop read as one character (`--psm 10`, Fraktur model `frk`,
the model's classes as the character whitelist); its character is the label and
100 - its confidence the OOD score.

One `tesseract` process reads a list file of many crops (TSV output, one page per crop), so
the per-process start-up is paid once per chunk, not per crop; `jobs` chunks run at once.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from glyphgate.core.errors import DataError

LANG = "frk"
CHUNK = 2000


def unavailable(lang: str = LANG) -> str | None:
    """Why Tesseract cannot be a peer here (None when it can)."""
    exe = shutil.which("tesseract")
    if exe is None:
        return "tesseract is not installed (Debian: apt-get install tesseract-ocr tesseract-ocr-frk)"
    langs = subprocess.run([exe, "--list-langs"], capture_output=True, text=True).stdout.split()
    if lang not in langs:
        return f"tesseract has no {lang!r} model (Debian: apt-get install tesseract-ocr-{lang})"
    return None


def version() -> str:
    out = subprocess.run(["tesseract", "--version"], capture_output=True, text=True)
    return (out.stdout or out.stderr).splitlines()[0]


def _read_chunk(files: list[str], whitelist: str, lang: str) -> list[tuple[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "crops.txt"
        listing.write_text("\n".join(files) + "\n", encoding="utf-8")
        cmd = ["tesseract", str(listing), "stdout", "--psm", "10", "-l", lang]
        cmd += ["-c", f"tessedit_char_whitelist={whitelist}", "tsv"]
        # one thread per process: the chunks are the parallelism
        env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise DataError(f"tesseract failed on {files[0]} ...: {done.stderr.strip()[:300]}")
    best: dict[int, tuple[str, float]] = {}
    for row in csv.DictReader(done.stdout.splitlines(), delimiter="\t", quoting=csv.QUOTE_NONE):
        if row.get("level") == "5":  # a word: with --psm 10, the character read
            page, conf = int(row["page_num"]), float(row["conf"])
            if page not in best or conf > best[page][1]:
                best[page] = (row["text"].strip(), conf)
    # pages are numbered from 1 in list order; a crop with no reading has confidence 0
    return [best.get(i + 1, ("", 0.0)) for i in range(len(files))]


def read_crops(
    files: list[str], classes: list[str], jobs: int = 2, lang: str = LANG
) -> tuple[np.ndarray, np.ndarray]:
    """(label index per crop, -1 where the character is none of `classes`; 100 - confidence)."""
    whitelist = "".join(sorted(set("".join(classes))))
    chunks = [files[i : i + CHUNK] for i in range(0, len(files), CHUNK)]
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        readings = [r for part in pool.map(lambda c: _read_chunk(c, whitelist, lang), chunks) for r in part]
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index.get(text, -1) for text, _ in readings], dtype=np.int64)
    score = np.array([100.0 - max(conf, 0.0) for _, conf in readings])
    return labels, score
