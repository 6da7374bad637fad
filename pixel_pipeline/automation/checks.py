"""Check verdicts and materialization metadata of the per-file asset `input_file_segments`, as plain data."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from pixel_pipeline.core.verdicts import ERROR, WARN, Verdict, json_value, path
from pixel_pipeline.ingest import segments as seg
from pixel_pipeline.ingest.cache import FileResult

CHECK_RECORD_ACCOUNTING = "row_accounting"
CHECK_FILE_READABLE = "file_readable"


def row_accounting_verdict(rows_in: int, kept: int, rejected: int) -> Verdict:
    """Every row counted while parsing is kept or rejected: none lost, none made up."""
    balanced = rows_in == kept + rejected
    return Verdict(
        CHECK_RECORD_ACCOUNTING,
        passed=balanced,
        severity=ERROR,
        metadata={"rows_in": rows_in, "kept": kept, "rejected": rejected},
        description=f"rows in {rows_in} = kept {kept} + rejected {rejected}"
        + ("" if balanced else " does NOT hold"),
    )


def file_readable_verdict(name: str, file_error: str | None) -> Verdict:
    """A warning only: raw_segments rejects an unreadable file with the reason and loads the others."""
    return Verdict(
        CHECK_FILE_READABLE,
        passed=file_error is None,
        severity=WARN,
        metadata={"file_error": file_error or ""},
        description="the file parsed" if file_error is None else f"{name}: {file_error}",
    )


def input_file_verdicts(name: str, result: FileResult, kept: int) -> list[Verdict]:
    return [row_accounting_verdict(result.rows_in, kept, len(result.rejects)),
            file_readable_verdict(name, result.file_error)]


def input_file_metadata(input_path: Path, table_path: Path, result: FileResult, rows: pd.DataFrame,
                        file_cache: Mapping[str, Any], embedding_cache: Mapping[str, Any]) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "dagster/row_count": len(rows),
        "input_file": path(input_path),
        "path": path(table_path),
        "rows_in": result.rows_in,
        "kept": len(rows),
        "rejected": len(result.rejects),
        "reject_reasons": json_value(seg.reject_reason_counts(result.rejects)),
        "file_cache": json_value(dict(file_cache)),
        "embedding_cache": json_value(dict(embedding_cache)),
    }
    if len(rows):
        metadata["styles"] = json_value({str(k): int(v) for k, v in rows["style"].value_counts().items()})
        metadata["words"] = int(rows["word_count"].sum())
    return metadata
