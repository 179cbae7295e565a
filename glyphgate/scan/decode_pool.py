"""Reading and decoding a scan's files on every core, ahead of ONNX Runtime.

On 2 cores a PNG crop costs about 90 us to decode and 40 us to prepare, against ONNX Runtime's
55 us to score it: in one process the engine waits most of the time. Worker processes (each with
its own view of the folder or ZIP) turn chunks of names into model inputs while the scan's own
process scores the chunk before; chunks come back in order, at most a few ahead, so memory stays
flat with the size of the folder."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from glyphgate.core.contract.settings import load as load_settings
from glyphgate.core.errors import DataError
from glyphgate.core.image.decode import decode_many
from glyphgate.core.image.preprocess import single_threaded_blas
from glyphgate.scan.sources import Source


@dataclass
class Decoded:
    """One chunk: the model inputs of the files that decoded, in the chunk's order, and an
    error line for each that did not."""

    names: list[str]
    x: np.ndarray
    errors: dict[str, str]


def decode_chunk(source: Source, names: list[str], max_pixels: int) -> Decoded:
    items, errors = [], {}
    for name in names:
        try:
            items.append((name, source.read(name)))
        except DataError as e:
            errors[name] = str(e)
    x, ok, bad = decode_many(items, max_pixels)
    errors.update({e["file"]: e["error"] for e in bad})
    return Decoded([items[i][0] for i in ok], x, errors)


def default_workers() -> int:
    """Every core this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


_source: Source | None = None  # the worker's own open folder or ZIP


def _start_worker(path: str, parent: int) -> None:
    global _source
    # Ctrl-C reaches the whole process group: the scan's own process decides when to stop (after
    # the chunk in flight), so a worker must not die under it with half a chunk.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    single_threaded_blas()
    _source = Source(Path(path), load_settings(), listed=False)


def _exit_with_parent(parent: int) -> None:
    """A scan killed by SIGKILL cannot stop its workers, and they would wait on its queue for
    ever (holding its stdout and stderr open): each leaves on its own once its parent is gone.
    The parent's pid comes from the parent: a worker that starts after the kill already has
    another parent (init), and must leave at once rather than watch that one."""
    while os.getppid() == parent:
        time.sleep(0.2)
    os._exit(0)


def _decode_in_worker(names: list[str], max_pixels: int) -> Decoded:
    return decode_chunk(_source, names, max_pixels)


class Decoder:
    """`chunks(groups)` -> one Decoded per group, in order: in this process with `workers=0`,
    else in that many worker processes."""

    def __init__(self, source: Source, workers: int, max_pixels: int):
        self.source, self.workers, self.max_pixels = source, workers, max_pixels
        self.pool = None
        if workers > 0:
            # spawn, not fork: the parent may hold ONNX Runtime's threads, which fork does not copy
            self.pool = ProcessPoolExecutor(
                workers,
                mp_context=get_context("spawn"),
                initializer=_start_worker,
                initargs=(str(source.path), os.getpid()),
            )

    def chunks(self, groups: Iterable[list[str]]) -> Iterator[Decoded]:
        if self.pool is None:
            for names in groups:
                yield decode_chunk(self.source, names, self.max_pixels)
            return
        ahead: deque[tuple[list[str], Future]] = deque()
        groups = iter(groups)
        while True:
            # a few chunks queued per worker, no further ahead: memory stays flat
            while len(ahead) < 2 * self.workers + 2:
                names = next(groups, None)
                if names is None:
                    break
                ahead.append((names, self.pool.submit(_decode_in_worker, names, self.max_pixels)))
            if not ahead:
                return
            names, future = ahead.popleft()
            # Not started yet (the workers are still starting, or busy): this process decodes it
            # rather than wait idle, so a scan never waits for its pool and no core is left over.
            if not future.done() and future.cancel():
                yield decode_chunk(self.source, names, self.max_pixels)
            else:
                yield future.result()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "Decoder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
