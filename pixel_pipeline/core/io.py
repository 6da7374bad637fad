"""Atomic file writes: write to a temporary name in the same folder, fsync, then rename.

An interrupted run therefore never leaves a half-written file under a final name.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import pandas as pd


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success rename it over `path`, on failure remove it."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; outputs are meant to be read by other users and tools
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    with atomic_path(path) as tmp:
        kwargs = {} if "b" in mode else {"encoding": encoding}
        with open(tmp, mode, **kwargs) as fh:
            yield fh


def write_parquet(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
    return Path(path)


def read_parquet(path: str | os.PathLike, columns: list[str] | None = None) -> pd.DataFrame:
    return pd.read_parquet(path, columns=columns)


def write_json(obj: Any, path: str | os.PathLike, indent: int | None = 2) -> Path:
    with atomic_open(path) as fh:
        json.dump(obj, fh, ensure_ascii=False, indent=indent, default=_json_default)
        fh.write("\n")
    return Path(path)


def write_jsonl(records: Iterable[Mapping[str, Any]], path: str | os.PathLike) -> int:
    """Write one JSON object per line; returns the number of lines written."""
    n = 0
    with atomic_open(path) as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False, default=_json_default))
            fh.write("\n")
            n += 1
    return n


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def write_text(text: str, path: str | os.PathLike) -> Path:
    with atomic_open(path) as fh:
        fh.write(text)
    return Path(path)


def _json_default(value: Any) -> Any:
    """Make numpy / pandas scalars and arrays JSON-serialisable."""
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (pd.Timestamp,)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _rename_exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where the system lacks it."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def swap_in_dir(build: str | os.PathLike, final: str | os.PathLike) -> Path:
    """Put the finished folder `build` (written beside `final`) in place of `final`, so that readers see the old
    folder or the new one, never a missing or half-written one: one atomic exchange where the system has it, else
    two renames (old aside, new in). The old folder is removed afterwards."""
    import shutil

    build, final = Path(build), Path(final)
    if not final.exists():
        os.replace(build, final)
        return final
    if _rename_exchange(build, final):
        shutil.rmtree(build, ignore_errors=True)  # `build` now holds the old folder
        return final
    old = final.with_name(f".{final.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    os.replace(final, old)
    os.replace(build, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def publish_folder(final: str | os.PathLike, write: Callable[[Path], None],
                   complete: Iterable[str] = ("config.json", "tokenizer.json")) -> Path:
    """`write(tmp)` into a fresh folder beside `final`, then rename it into place: concurrent callers see a complete
    folder (every name in `complete` present) or none, and the first one to finish wins."""
    final = Path(final)
    complete = tuple(complete)
    if all((final / name).exists() for name in complete):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        write(tmp)
        try:
            os.replace(tmp, final)
        except OSError:  # another process finished first: keep its folder
            if not all((final / name).exists() for name in complete):
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final
