"""Pure per-item work spread over the machine's cores.

The curation rules, shaping and the window measures are plain Python over one text at a time: one process runs
them on one core while the others idle (2 cores here: half the machine). As DataTrove's local executor does, the
items are cut into contiguous chunks and run in worker processes. The workers are forked, so they inherit the
function and the items (closures included) instead of receiving them pickled; only the results travel back. The
result is the same list, in the same order, as a serial run: the work must be pure.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

MIN_ITEMS_PER_WORKER = 64  # below this a worker's start-up costs more than it saves
CHUNKS_PER_WORKER = 4  # texts differ in length: smaller chunks keep the workers evenly busy

_task: tuple[Callable[[list], list], list] | None = None
_in_worker = False


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def can_fork() -> bool:
    """Fork only on Linux (macOS lists it, but forking a process with threads crashes there), never from a worker
    or a daemon process (multiprocessing forbids a daemon's children)."""
    return (sys.platform.startswith("linux") and not _in_worker and not multiprocessing.current_process().daemon
            and "fork" in multiprocessing.get_all_start_methods())


def _worker_init() -> None:
    """A worker answers signals the default way: the parent's handlers (Dagster's interrupt handler among them)
    would turn the pool's shutdown into an error."""
    global _in_worker
    _in_worker = True
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops the pool


def _run_chunk(bounds: tuple[int, int]) -> list:
    fn, items = _task
    out = list(fn(items[bounds[0]:bounds[1]]))
    if len(out) != bounds[1] - bounds[0]:
        raise ValueError(f"a batch function returned {len(out)} results for {bounds[1] - bounds[0]} items")
    return out


def map_batches(fn: Callable[[list], Sequence[Any]], items: Sequence[Any], workers: int = 0) -> list[Any]:
    """fn(chunk) -> one result per item of the chunk, over all items; `workers` 0 = one per available core, 1 =
    in this process. Small batches, nested calls and where forking is unsafe (can_fork) run in this process."""
    global _task
    items = list(items)
    workers = min(workers or available_cores(), len(items) // MIN_ITEMS_PER_WORKER)
    if workers <= 1 or not can_fork():
        return list(fn(items))
    n_chunks = workers * CHUNKS_PER_WORKER
    edges = [round(i * len(items) / n_chunks) for i in range(n_chunks + 1)]
    _task = (fn, items)
    try:
        pool = multiprocessing.get_context("fork").Pool(workers, initializer=_worker_init)
        try:
            parts = pool.map(_run_chunk, list(zip(edges, edges[1:])), chunksize=1)
            pool.close()  # the workers finish and exit on their own
        except BaseException:
            pool.terminate()
            raise
        finally:
            pool.join()
    finally:
        _task = None
    return [x for part in parts for x in part]
