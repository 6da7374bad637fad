"""Which entries of an input folder are inputs: PIXEL_DATA_DIR is a boundary.

A file whose real path (links followed) lies outside the data directory is refused unless
PIXEL_ALLOW_OUTSIDE_DATA_DIR is set (a `transcripts/x.txt -> /etc/passwd` link must not reach the rejects or the
review sheets). Dangling links and entries that are not regular files (a directory named `x.json`) are skipped.
Every skipped entry is returned with its reason, for the asset's metadata; half-written names are not inputs yet
and are skipped silently.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

ALLOW_OUTSIDE_ENV_VAR = "PIXEL_ALLOW_OUTSIDE_DATA_DIR"


def outside_data_dir_allowed() -> bool:
    return os.environ.get(ALLOW_OUTSIDE_ENV_VAR, "").strip().lower() in ("1", "true", "yes")


# Suffixes editors, downloaders and copy tools give a file while it is incomplete.
TEMPORARY_SUFFIXES = (".part", ".partial", ".tmp", ".temp", ".swp", ".swo", ".swx", ".crdownload", ".download", ".filepart", "~")


def is_temporary_name(name: str) -> bool:
    """Hidden, lock, autosave, editor-backup or partial-download names (`.x.json`, `~$x.txt`, `#x#`, `x.txt.part`)
    are not inputs yet: the loaders skip them and the sensor does not see them."""
    base = name.rsplit("/", 1)[-1]
    return (not base or base.startswith((".", "~")) or (base.startswith("#") and base.endswith("#"))
            or base.lower().endswith(TEMPORARY_SUFFIXES))


def scan_input_folder(
    folder: Path, data_dir: Path, suffixes: Sequence[str], allow_outside: bool | None = None
) -> tuple[list[Path], list[dict[str, str]]]:
    """(input files sorted by name, skipped entries as {"path", "reason"}) of the entries of `folder` whose name
    ends with one of `suffixes` (case-insensitive)."""
    if not folder.is_dir():
        return [], []
    allow = outside_data_dir_allowed() if allow_outside is None else allow_outside
    root = Path(os.path.realpath(data_dir))
    files: list[Path] = []
    skipped: list[dict[str, str]] = []
    for path in sorted(folder.iterdir()):
        name = path.name
        if not name.lower().endswith(tuple(s.lower() for s in suffixes)) or is_temporary_name(name):
            continue
        shown = path.relative_to(data_dir).as_posix() if path.is_relative_to(data_dir) else str(path)
        if path.is_symlink() and not path.exists():
            skipped.append({"path": shown, "reason": f"dangling link (to {os.readlink(path)})"})
        elif not path.is_file():
            kind = "a directory" if path.is_dir() else "not a regular file"
            skipped.append({"path": shown, "reason": f"{kind}, not an input file"})
        elif not allow and not Path(os.path.realpath(path)).is_relative_to(root):
            skipped.append({"path": shown, "reason": f"refused: resolves outside PIXEL_DATA_DIR to {os.path.realpath(path)} "
                                                     f"(set {ALLOW_OUTSIDE_ENV_VAR}=1 to allow)"})
        else:
            files.append(path)
    return files, skipped
