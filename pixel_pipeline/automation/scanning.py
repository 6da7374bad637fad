"""Which input files are new, changed or gone since the last sensor tick, and which are still being written.

A file is identified by its name relative to PIXEL_DATA_DIR plus the SHA-256 of its bytes, so the same name with
new content is a new unit of work, and a `touch` without a content change is not. A file is only handed on once it
is *settled*: not a temporary name (dotfiles, `~x`, `x~`, `.part`, `.tmp`, `.swp`, ...), and either older than
`settle_seconds` or unchanged in size and mtime since the previous tick. Unchanged files (same size and mtime as
recorded in the cursor) are not re-read, so a tick over thousands of files costs one `stat` each.

The cursor is compact JSON: {"version": 1, "files": {name: [sha256, size, mtime_ns]}, "pending": {name: [size,
mtime_ns]}}. An empty, missing or unreadable cursor means "nothing seen yet": every settled file is new again, which
is safe because run keys are deterministic (see docs/automation.md).
"""

from __future__ import annotations

import codecs
import hashlib
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pixel_pipeline.ingest.inputs import is_temporary_name

CURSOR_VERSION = 1
# Folder under PIXEL_DATA_DIR -> the file pattern its loader reads (pixel_pipeline.ingest.segments).
WATCHED_PATTERNS: dict[str, str] = {"training_segments": "*.json", "transcripts": "*.txt"}
DEFAULT_SETTLE_SECONDS = 60.0
PARTITION_KEY_SEPARATOR = "@"
HASH_DIGITS_IN_KEY = 16
READ_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class FileState:
    """One settled input file: relative posix name, content hash, and the stat that hash belongs to."""

    name: str
    sha256: str
    size: int
    mtime_ns: int
    utf8_valid: bool | None = None  # None when the hash came from the cursor (bytes not re-read)

    @property
    def partition_key(self) -> str:
        return partition_key(self.name, self.sha256)

    @property
    def run_key(self) -> str:
        """Deterministic per (name, content, mtime): a cursor reset re-requests nothing already launched, while a
        file changed back to earlier content (new mtime) still gets a run."""
        return f"{self.partition_key}{PARTITION_KEY_SEPARATOR}{self.mtime_ns}"


def partition_key(name: str, sha256: str) -> str:
    """`transcripts/talk.txt@3f2a9c1b7e4d5a60`: readable in the UI, unique per content."""
    return f"{name}{PARTITION_KEY_SEPARATOR}{sha256[:HASH_DIGITS_IN_KEY]}"


def parse_partition_key(key: str) -> tuple[str, str]:
    """Inverse of `partition_key`: (relative name, hash prefix). Raises ValueError on a key of another shape."""
    name, sep, digest = key.rpartition(PARTITION_KEY_SEPARATOR)
    if not sep or not name or len(digest) != HASH_DIGITS_IN_KEY or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"not an input-file partition key (expected <relative name>@<16 hex digits>): {key!r}")
    return name, digest


@dataclass
class Cursor:
    files: dict[str, FileState] = field(default_factory=dict)  # settled files handed on at earlier ticks
    pending: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (size, mtime_ns) seen, not settled

    def encode(self) -> str:
        return json.dumps(
            {
                "version": CURSOR_VERSION,
                "files": {n: [s.sha256, s.size, s.mtime_ns] for n, s in sorted(self.files.items())},
                "pending": {n: list(v) for n, v in sorted(self.pending.items())},
            },
            separators=(",", ":"),
        )


def decode_cursor(text: str | None) -> tuple[Cursor, str | None]:
    """(cursor, problem). Anything unreadable yields an empty cursor and says why, so a tick never crashes on it."""
    if not text:
        return Cursor(), None
    try:
        raw = json.loads(text)
        if not isinstance(raw, dict) or raw.get("version") != CURSOR_VERSION:
            return Cursor(), f"cursor version {raw.get('version') if isinstance(raw, dict) else '?'} is not {CURSOR_VERSION}; starting afresh"
        files = {
            str(n): FileState(str(n), str(v[0]), int(v[1]), int(v[2]))
            for n, v in raw.get("files", {}).items()
        }
        pending = {str(n): (int(v[0]), int(v[1])) for n, v in raw.get("pending", {}).items()}
    except (ValueError, TypeError, IndexError, AttributeError) as exc:
        return Cursor(), f"cursor unreadable ({type(exc).__name__}: {exc}); starting afresh"
    return Cursor(files, pending), None


@dataclass
class TickPlan:
    """What one tick found, and the cursor to store after it."""

    new: list[FileState]
    changed: list[tuple[FileState, FileState]]  # (before, now)
    deleted: list[FileState]
    unchanged: list[FileState]
    pending: list[str]  # still being written (or too fresh to trust)
    ignored: list[str]  # temporary / hidden names
    unreadable: list[tuple[str, str]]  # (name, reason): vanished or not readable during the tick
    cursor: Cursor

    @property
    def to_run(self) -> list[FileState]:
        """New and changed files, in name order: one unit of work (partition) each."""
        return sorted([*self.new, *(now for _, now in self.changed)], key=lambda s: s.name)

    @property
    def stale_partition_keys(self) -> list[str]:
        """Partitions that no longer describe a file on disk (content replaced, or file deleted)."""
        return sorted({before.partition_key for before, _ in self.changed} | {s.partition_key for s in self.deleted})

    def summary(self) -> str:
        return (
            f"{len(self.new)} new, {len(self.changed)} changed, {len(self.deleted)} deleted, {len(self.unchanged)} unchanged, "
            f"{len(self.pending)} still being written, {len(self.ignored)} temporary names ignored, {len(self.unreadable)} unreadable"
        )


def list_candidates(data_dir: Path, patterns: Mapping[str, str] = WATCHED_PATTERNS) -> tuple[list[tuple[str, Path]], list[str]]:
    """(relative name, path) of every watched file, sorted, and the temporary names skipped."""
    found: list[tuple[str, Path]] = []
    ignored: list[str] = []
    for folder, pattern in patterns.items():
        root = data_dir / folder
        if not root.is_dir():
            continue
        for path in sorted(root.iterdir()):
            name = path.relative_to(data_dir).as_posix()
            if is_temporary_name(path.name):
                if path.is_file():
                    ignored.append(name)
                continue
            if path.is_file() and path.match(pattern):
                found.append((name, path))
    return found, ignored


def hash_file(path: Path) -> tuple[str, bool]:
    """(SHA-256 hex of the bytes, whether they are valid UTF-8), reading in chunks."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    utf8_ok = True
    with open(path, "rb") as fh:
        while chunk := fh.read(READ_CHUNK_BYTES):
            digest.update(chunk)
            if utf8_ok:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    utf8_ok = False
    if utf8_ok:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8_ok = False
    return digest.hexdigest(), utf8_ok


def plan_tick(
    data_dir: str | Path,
    previous: Cursor,
    now: float | None = None,
    settle_seconds: float = DEFAULT_SETTLE_SECONDS,
    patterns: Mapping[str, str] = WATCHED_PATTERNS,
) -> TickPlan:
    """Compare the watched folders with the cursor. Pure apart from reading the file system."""
    now = time.time() if now is None else now
    candidates, ignored = list_candidates(Path(data_dir), patterns)
    new: list[FileState] = []
    changed: list[tuple[FileState, FileState]] = []
    unchanged: list[FileState] = []
    pending: list[str] = []
    unreadable: list[tuple[str, str]] = []
    next_files: dict[str, FileState] = {}
    next_pending: dict[str, tuple[int, int]] = {}

    for name, path in candidates:
        try:
            st = path.stat()
        except OSError as exc:  # deleted between listing and stat
            unreadable.append((name, f"{type(exc).__name__}: {exc}"))
            continue
        size, mtime_ns = int(st.st_size), int(st.st_mtime_ns)
        before = previous.files.get(name)
        if before is not None and (before.size, before.mtime_ns) == (size, mtime_ns):
            unchanged.append(before)
            next_files[name] = before
            continue
        old_enough = now - mtime_ns / 1e9 >= settle_seconds
        same_as_last_tick = previous.pending.get(name) == (size, mtime_ns)
        if not (old_enough or same_as_last_tick):
            pending.append(name)
            next_pending[name] = (size, mtime_ns)
            if before is not None:  # still describe the last settled version until the new one settles
                next_files[name] = before
            continue
        try:
            sha, utf8_ok = hash_file(path)
            st2 = path.stat()
        except OSError as exc:
            unreadable.append((name, f"{type(exc).__name__}: {exc}"))
            if before is not None:
                next_files[name] = before
            continue
        if (int(st2.st_size), int(st2.st_mtime_ns)) != (size, mtime_ns):  # written to while we read it
            pending.append(name)
            next_pending[name] = (int(st2.st_size), int(st2.st_mtime_ns))
            if before is not None:
                next_files[name] = before
            continue
        state = FileState(name, sha, size, mtime_ns, utf8_ok)
        next_files[name] = state
        if before is None:
            new.append(state)
        elif before.sha256 != sha:
            changed.append((before, state))
        else:  # touched, same bytes: nothing to do, remember the new stat
            unchanged.append(state)

    present = {name for name, _ in candidates}
    deleted = [s for n, s in sorted(previous.files.items()) if n not in present and n not in {u for u, _ in unreadable}]
    for name, _reason in unreadable:
        if name in previous.files and name not in next_files:
            next_files[name] = previous.files[name]
    return TickPlan(new, changed, deleted, unchanged, pending, ignored, unreadable, Cursor(next_files, next_pending))


def states_by_partition_key(states: Iterable[FileState]) -> dict[str, FileState]:
    return {s.partition_key: s for s in states}
