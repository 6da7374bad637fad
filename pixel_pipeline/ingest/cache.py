"""Per-input-file results and their on-disk cache.

A `FileResult` is everything one input file contributes: accepted rows, reject rows, how many input rows it had,
and a file-level error. `FileCache` stores it under `cache/ingest/<key>/` (two Parquet files + meta.json, each
written atomically) keyed by SHA-256 of the file's bytes, its relative name, the settings and the classifier
fingerprint, plus INGEST_CACHE_VERSION (bump it when the loaders' logic changes). An unchanged file is therefore
never re-parsed nor re-classified; any change to bytes, name, settings or model gives a new key.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from pixel_pipeline.core.ids import sha256_hex
from pixel_pipeline.core.io import write_json, write_parquet
from pixel_pipeline.core.records import rejects_frame

log = logging.getLogger(__name__)

INGEST_CACHE_VERSION = "4"  # 3: item-by-item JSON lists, invisible characters stripped from transcripts; 4: rejects say `dropped_by`


@dataclass
class FileResult:
    input_file: str  # relative to PIXEL_DATA_DIR
    rows: pd.DataFrame | None  # None when the file could not be read at all
    rejects: pd.DataFrame
    rows_in: int  # counted while parsing: list items, cut segments, or 1 for an unreadable file
    file_error: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def with_rows(self, rows: pd.DataFrame) -> "FileResult":
        return replace(self, rows=rows)


class FileCache:
    def __init__(self, root: str | Path, kind: str):
        self.root = Path(root) / kind

    @staticmethod
    def key(data: bytes, *parts: Any) -> str:
        payload = json.dumps([INGEST_CACHE_VERSION, sha256_hex(data), *parts], sort_keys=True, default=str)
        return sha256_hex(payload)[:32]

    def get(self, key: str) -> FileResult | None:
        folder = self.root / key
        meta_path = folder / "meta.json"
        if not meta_path.exists():  # meta.json is written last: its presence means the entry is complete
            return None
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            rows = pd.read_parquet(folder / "rows.parquet") if meta["has_rows"] else None
            rejects = pd.read_parquet(folder / "rejects.parquet")
            rejects = rejects_frame(rejects.to_dict("records")) if len(rejects) else rejects_frame([])
            if len(rejects):
                rejects["reasons"] = rejects["reasons"].map(list)
        except Exception as exc:  # a corrupt entry is recomputed, never trusted
            log.warning("ingest cache entry %s unreadable (%s); recomputing", key, exc)
            shutil.rmtree(folder, ignore_errors=True)
            return None
        return FileResult(meta["input_file"], rows, rejects, meta["rows_in"], meta.get("file_error"), meta.get("notes", {}))

    def put(self, key: str, result: FileResult) -> None:
        folder = self.root / key
        if result.rows is not None:
            write_parquet(result.rows, folder / "rows.parquet")
        write_parquet(result.rejects, folder / "rejects.parquet")
        meta = {
            "input_file": result.input_file,
            "has_rows": result.rows is not None,
            "rows_in": result.rows_in,
            "file_error": result.file_error,
            "notes": result.notes,
        }
        write_json(meta, folder / "meta.json")
