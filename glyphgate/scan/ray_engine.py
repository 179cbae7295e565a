"""`glyphgate scan --engine ray`: the folder scan as a Ray Data pipeline, for a cluster.

    names (folder, ZIP or manifest) -> read + decode + prepare   (CPU tasks)
                                    -> score                     (actor pool, one ONNX Runtime
                                                                  session per actor)
                                    -> OUT/shards/*.parquet|csv  (written by the workers)
    then, on the driver: OUT/results.csv in source order, results.json, flagged.html/png

The files are read inside the tasks, by the same `Source` as the local scan (the byte cap, ZIP
members, manifest URIs through pyarrow's filesystems), so every node must see the path: shared
storage, or URIs. Verdicts are the local scan's, row for row.

Resumable: the shards are the unit. A stopped or killed run keeps the shards it finished;
`--resume` scans only the files no readable shard holds (a shard cut short by a kill is set
aside and its files scanned again), then merges them all."""

from __future__ import annotations

import functools
import logging
import shutil
import time
from pathlib import Path

import numpy as np

from glyphgate.core.contract.artifacts import load_calibration
from glyphgate.core.contract.settings import load as load_settings
from glyphgate.core.errors import ConfigError, DataError
from glyphgate.core.image.preprocess import SHAPE, single_threaded_blas
from glyphgate.core.scoring.scorer import VERDICT
from glyphgate.scan.decode_pool import decode_chunk
from glyphgate.scan.results import RESULTS, SHEET_MAX, ResultsFile, TopK, write_reports
from glyphgate.scan.sources import Source

SHARDS = "shards"
FORMATS = ("parquet", "csv")
log = logging.getLogger("glyphgate")


def _ray():
    try:
        import ray
        import ray.data
    except ImportError:
        raise ConfigError("--engine ray needs Ray Data: pip install 'glyphgate[ray]'") from None
    return ray


@functools.lru_cache(maxsize=4)
def _open_source(path: str) -> Source:
    """One open folder, ZIP or manifest per worker process (Ray reuses them across tasks): a
    ZIP's directory is read once, not once per batch."""
    return Source(Path(path), load_settings(), listed=False)


def decode_batch(batch: dict, source: str, max_pixels: int) -> dict:
    """A CPU task: the batch's names -> model inputs, with an error line where a file is bad."""
    names = [str(n) for n in batch["path"]]
    d = decode_chunk(_open_source(source), names, max_pixels)
    x = np.zeros((len(names), *SHAPE), np.float32)
    where = {n: i for i, n in enumerate(names)}
    for j, n in enumerate(d.names):
        x[where[n]] = d.x[j]
    return {
        "index": batch["index"],
        "path": np.array(names, dtype=object),
        "x": x,
        "error": np.array([d.errors.get(n, "") for n in names], dtype=object),
    }


class ScoreBatch:
    """An actor: one ONNX Runtime session, the artifacts' threshold and p-values."""

    def __init__(self, artifacts: str, threads: int):
        from glyphgate.core.scoring.scorer import Scorer

        single_threaded_blas()
        self.scorer = Scorer.from_calibration(Path(artifacts), load_calibration(Path(artifacts)), threads)

    def __call__(self, batch: dict) -> dict:
        n = len(batch["path"])
        ok = np.flatnonzero(batch["error"] == "")
        out = {
            "index": batch["index"],
            "path": batch["path"],
            "label": np.full(n, "", dtype=object),
            "confidence": np.full(n, np.nan),
            "energy": np.full(n, np.nan),
            "p_value": np.full(n, np.nan),
            "is_ood": np.zeros(n, bool),
            "error": batch["error"],
        }
        if len(ok):
            for i, v in zip(ok, self.scorer.rows(batch["x"][ok])):
                for k in VERDICT:
                    out[k][i] = np.nan if v[k] is None else v[k]
        return out


def read_shards(folder: Path) -> tuple[list[dict], list[Path]]:
    """Every row the readable shards hold, and the shards that could not be read (cut short)."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    rows, broken = [], []
    for shard in sorted(folder.glob("*")):
        if shard.suffix not in (".parquet", ".csv"):
            continue
        try:
            table = (
                pq.read_table(shard)
                if shard.suffix == ".parquet"
                else pacsv.read_csv(shard, convert_options=_csv_types())
            )
        except Exception:  # a kill mid-write leaves a file pyarrow refuses, whatever its error
            broken.append(shard)
            continue
        rows.extend(table.to_pylist())
    return rows, broken


def _csv_types():
    import pyarrow as pa
    import pyarrow.csv as pacsv

    text = {"path": pa.string(), "label": pa.string(), "error": pa.string()}
    return pacsv.ConvertOptions(column_types=text, strings_can_be_null=False)


def verdict_row(r: dict) -> dict:
    """A shard's row as the local scan's results.csv row."""
    if r["error"]:
        return {"path": r["path"], "error": r["error"]}
    row = {"path": r["path"], "label": r["label"], "is_ood": bool(r["is_ood"])}
    for k in ("confidence", "energy", "p_value"):
        row[k] = None if r[k] is None or np.isnan(r[k]) else float(r[k])
    return row


def start(out: Path, resume: bool, overwrite: bool) -> Path:
    """OUT/shards, emptied unless resuming; refuses to lose a finished scan's results."""
    shards = out / SHARDS
    holds = shards.is_dir() and any(shards.iterdir()) or (out / RESULTS).is_file()
    if holds and not (resume or overwrite):
        raise ConfigError(f"{out} holds a scan: pass --resume to finish it, or --overwrite to start again")
    if overwrite and shards.is_dir():
        shutil.rmtree(shards)
    shards.mkdir(parents=True, exist_ok=True)
    return shards


def scan_with_ray(
    path: str | Path,
    out: str | Path,
    artifacts: str | Path,
    batch: int = 256,
    workers: int | None = None,
    address: str | None = None,
    shard_format: str = "parquet",
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    fdr: float | None = None,
) -> dict:
    """Score every file of `path` on a Ray cluster (`address`, else a local one) into `out`.
    `workers`: the actor pool's size (default: one per cluster CPU; on CPUs Ray runs the decode map
    fused into the actors, so each actor reads, decodes and scores its batches)."""
    from glyphgate.scan.folder import FIELDS, fdr_cut, read_again

    if shard_format not in FORMATS:
        raise ConfigError(f"--shards {shard_format}: expected one of {', '.join(FORMATS)}")
    ray = _ray()
    path, out, artifacts = Path(path).resolve(), Path(out), Path(artifacts).resolve()
    settings = load_settings()
    load_calibration(artifacts)  # a missing or broken model is one line here, not in every actor
    with Source(path, settings) as source:
        if not source.names:
            raise DataError(f"{path}: no files in it")
        shards = start(out, resume, overwrite)
        rows, broken = read_shards(shards)
        for shard in broken:
            log.warning("%s: cut short by an earlier run; its files are scanned again", shard)
            shard.rename(shard.with_suffix(shard.suffix + ".broken"))
        done = {r["path"] for r in rows}
        todo = [(i, n) for i, n in enumerate(source.names) if n not in done]
        t0 = time.perf_counter()
        if todo:
            _run(
                ray, todo, path, artifacts, shards, batch, workers, address, shard_format, progress, settings
            )
        seconds = time.perf_counter() - t0
        rows, _ = read_shards(shards)
        rows.sort(key=lambda r: r["index"])
        results, _ = ResultsFile.start(out, FIELDS, resume=False, overwrite=True)
        with results:
            results.append([verdict_row(r) for r in rows])
        summary = {
            "source": str(path),
            "images": len(source.names),
            "complete": len(rows) == len(source.names),
            "remaining": len(source.names) - len(rows),
            "stopped_by": None,
            "seconds": seconds,
            "scanned_now": len(todo),
            "images_per_s": len(todo) / seconds if todo and seconds > 0 else None,
            "scorer": f"{artifacts} on Ray ({address or 'local'})",
            "engine": "ray",
            "rule": "energy > threshold",
        }
        if fdr is not None:
            summary["rule"] = fdr_cut(results, fdr)
        return write_reports(
            out,
            results,
            summary,
            lambda r: r["path"],
            TopK(SHEET_MAX),
            lambda missing: read_again(missing, source),
        )


def _run(
    ray, todo, path, artifacts, shards, batch, workers, address, shard_format, progress, settings
) -> None:
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, configure_logging=False, log_to_driver=False)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = progress
        if not progress:  # Ray Data's plan and progress lines are its progress report
            logging.getLogger("ray.data").setLevel(logging.WARNING)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        workers = workers or cpus
        # one block per batch: each decode task takes one batch, and the actors see full batches
        ds = ray.data.from_items(
            [{"index": i, "path": n} for i, n in todo], override_num_blocks=max(1, -(-len(todo) // batch))
        )
        ds = ds.map_batches(
            decode_batch,
            batch_size=batch,
            batch_format="numpy",
            fn_kwargs={"source": str(path), "max_pixels": settings.max_pixels},
            num_cpus=0.5,
        )
        ds = ds.map_batches(
            ScoreBatch,
            batch_size=batch,
            batch_format="numpy",
            fn_constructor_kwargs={"artifacts": str(artifacts), "threads": 1},
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=0.5,
        )
        write = ds.write_parquet if shard_format == "parquet" else ds.write_csv
        # A shard is a few KB: its write must not wait for a CPU the scorers hold, and a few
        # writers keep up with many scorers (more would start a worker process each).
        write(str(shards), ray_remote_args={"num_cpus": 0.1}, concurrency=max(1, workers // 4))
    finally:
        if started_here:
            ray.shutdown()
