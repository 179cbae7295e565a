"""Work that must never delay a small scoring request runs below it: SGLD generation, and
decoding a big upload."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path


def below_scoring() -> None:
    """Put the calling thread (and the threads it starts) below scoring in the CPU scheduler.

    SCHED_IDLE rather than nice 19: a waking scoring request preempts an idle-class thread at
    once, while a nice-19 one may finish its time slice first (measured: p99 /score while
    generating 75 ms at nice 19). Linux scheduling is per thread, so this runs in the thread
    that does the work (it is idempotent)."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):  # not Linux: fall back to the lowest nice value
        try:
            os.setpriority(os.PRIO_PROCESS, 0, 19)
        except (AttributeError, OSError):
            pass


def background_pool() -> ProcessPoolExecutor:
    """One helper process, below scoring, for the decodes that take long.

    A process, not a thread: decoding a 36-megapixel scan holds the GIL for stretches of up to
    9 ms (numpy temporaries, Pillow copies), which small requests on the worker's event loop
    would wait for; in its own process only the bytes in and a 56x56 array out cross over.
    Spawned, not forked: the worker already runs ONNX Runtime and event-loop threads."""
    return ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_helper,
        initargs=(os.getpid(),),
    )


def _start_helper(worker_pid: int) -> None:
    below_scoring()
    threading.Thread(target=_exit_when_orphaned, args=(worker_pid,), daemon=True).start()


def _exit_when_orphaned(worker_pid: int, every_s: float = 1.0) -> None:
    """A helper whose worker was killed (SIGKILL, the OOM killer) would wait for work forever:
    it holds both ends of its own task queue, so it never reads an end-of-file, and it keeps
    multiprocessing's resource tracker alive with it. Once it is reparented, it exits."""
    while os.getppid() == worker_pid:
        time.sleep(every_s)
    os._exit(0)


def heavy_slots() -> int:
    """How many big decodes may run at once, server-wide: all cores but one. Measured on 2
    cores with two clients sending 36-megapixel PNGs: p99 of small /score 1.1x its p99 alone
    with one decode at a time, up to 2.4x with two (even at SCHED_IDLE: the decodes stream
    ~40 MB each through the shared caches)."""
    return max(1, (os.cpu_count() or 1) - 1)


@contextmanager
def heavy_slot(slots: int):
    """A semaphore across processes: one of `slots` lock files, shared by every worker of every
    glyphgate server this user runs on the machine, since they share its cores. flock, so a
    crashed holder releases its slot with its process."""
    folder = Path(tempfile.gettempdir())
    files = [open(folder / f"glyphgate-heavy-{os.getuid()}-{i}.lock", "a") for i in range(slots)]
    try:
        held = next((f for f in files if _try_lock(f)), None)
        if held is None:
            held = files[os.getpid() % slots]
            fcntl.flock(held, fcntl.LOCK_EX)
        yield
    finally:
        for f in files:
            f.close()  # closing drops the lock


def _try_lock(f) -> bool:
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def run_heavy(slots: int, fn, *args):
    """In the helper process: `fn(*args)` once a heavy slot is free."""
    with heavy_slot(slots):
        return fn(*args)
