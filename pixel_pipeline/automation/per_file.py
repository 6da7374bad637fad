"""The per-file path of the incremental location (no Dagster import): where one input file's table lives, its
accepted rows, and whether the file changed between the sensor's look and the run."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from pixel_pipeline.core.ids import sha256_hex
from pixel_pipeline.ingest import segments as seg
from pixel_pipeline.ingest.cache import FileResult

PER_FILE_ASSET = "input_file_segments"


def per_file_table(output_dir: Path, partition_key: str) -> Path:
    """One parquet per partition; the per-file tables mirror the current partitions (the sensor deletes stale ones)."""
    slug = partition_key.replace("/", "__")
    return output_dir / "tables" / PER_FILE_ASSET / f"{slug}.parquet"


def find_input_file(files: Iterable[seg.InputFile], name: str) -> seg.InputFile | None:
    return next((f for f in files if f.relative_name == name), None)


def kept_rows(result: FileResult) -> pd.DataFrame:
    """The file's accepted segments; an unreadable file gives an empty table with the raw_segments columns."""
    return result.rows if result.rows is not None else pd.DataFrame({c: [] for c in seg.RAW_SEGMENT_COLUMNS})


def changed_since_seen(name: str, data: bytes, digest: str) -> str | None:
    """A warning when the bytes processed are not the version the partition key names (None: they are)."""
    read_digest = sha256_hex(data)[: len(digest)]
    if read_digest == digest:
        return None
    return f"{name} changed since the sensor saw it ({digest} -> {read_digest}); processed the current bytes"
