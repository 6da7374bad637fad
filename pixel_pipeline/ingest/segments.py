"""Segments: load and validate `training_segments/*.json`, cut `transcripts/*.txt`, classify style, combine.

Everything works one input file at a time (the unit a later sensor turns into a dynamic partition):

- `load_segments_file(path, relative_name, settings)` and `segment_transcript_file(path, relative_name, settings,
  source)` are pure: bytes in, a `FileResult` (accepted rows, reject rows, rows_in, file_error) out, no model
  (`ingest.segment_files`; one row's validation is `ingest.segment_rows`).
- `classify_file_result(result, classifier, settings)` adds style_predicted / style_confidence / style / expert.
- `ingest_segment_files(...)` runs both for many files, re-using a per-file cache (see `ingest.cache`) so unchanged
  files are not re-read nor re-classified, and classifies all new rows in one batch with progress logs.
- `combine_file_results(results)` concatenates files in order and rejects exact repeats (same segment_id) of an
  earlier accepted row as `duplicate`: corpus-wide, so it runs after the per-file step.

Accounting: per file, rows_in = list items (segment files, read item by item: a broken item is one reject) or cut
segments (transcripts); a file that is no JSON list at all counts as ONE input row and yields one reject with reason `invalid_file: ...`.
This module also re-exports the names of `segment_rows` and `segment_files`, the import path every caller uses.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from pixel_pipeline.core.records import DATASET_SEGMENTS, reason_key, reject_row, rejects_frame
from pixel_pipeline.ingest.cache import FileCache, FileResult
from pixel_pipeline.ingest.segment_files import (
    InputFile,
    invalid_file_result,
    list_segment_inputs,
    load_input_file,
    load_segments_file,
    load_transcript_sources,
    parse_json_list,
    quality_band_of,
    rows_frame,
    segment_transcript_file,
)
from pixel_pipeline.ingest.segment_rows import (
    LOADED_COLUMNS,
    ORIGIN_SEGMENTS_FILE,
    ORIGIN_TRANSCRIPT,
    QUALITY_BAND_RE,
    RAW_SEGMENT_COLUMNS,
    SEGMENT_FIELDS,
    STAGE,
    UNKNOWN_SOURCE,
    SegmentSettings,
    text_problems,
    validate_segment,
)
from pixel_pipeline.ingest.style import StyleClassifier, choose_style, expert_of, progress_logger
from pixel_pipeline.ingest.text import snippet

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------------------------
# classification and the corpus-wide steps


def apply_styles(rows: pd.DataFrame, style_predicted: Sequence[str], style_confidence: np.ndarray, settings: SegmentSettings) -> pd.DataFrame:
    out = rows.copy()
    out["style_predicted"] = pd.Series(list(style_predicted), index=out.index, dtype="object")
    out["style_confidence"] = pd.Series(np.asarray(style_confidence, dtype="float64"), index=out.index)
    out["style"] = choose_style(
        out["style_given"], out["style_predicted"], out["style_confidence"], settings.expert_style_from, settings.min_style_confidence
    )
    out["expert"] = expert_of(out["style"]) if len(out) else pd.Series(dtype="int64")
    return with_dtypes(out[list(RAW_SEGMENT_COLUMNS)], RAW_SEGMENT_COLUMNS)


def with_dtypes(df: pd.DataFrame, schema: dict[str, str]) -> pd.DataFrame:
    """The contract dtypes (str columns as pandas' string dtype, nulls as missing), so cached and fresh rows match."""
    return df.astype({c: t for c, t in schema.items() if c in df.columns})


def classify_file_result(result: FileResult, classifier: StyleClassifier, settings: SegmentSettings) -> FileResult:
    rows = result.rows if result.rows is not None else rows_frame([])
    styles, confidence = classifier.predict(rows["text"].tolist())
    return result.with_rows(apply_styles(rows, styles, confidence, settings))


def _cached_or_pending(
    files: Sequence[InputFile], settings: SegmentSettings, classifier: StyleClassifier, cache: FileCache | None, stats: dict[str, int]
) -> tuple[list[FileResult | None], list[tuple[int, FileResult, str | None]]]:
    """Each file's cached result where its key is cached, else the file loaded (not yet classified) with its key."""
    results: list[FileResult | None] = [None] * len(files)
    pending: list[tuple[int, FileResult, str | None]] = []
    for i, item in enumerate(files):
        key = None
        if cache is not None:
            data = item.path.read_bytes()
            key = cache.key(data, item.relative_name, item.kind, item.source, settings.fingerprint(), classifier.fingerprint)
            hit = cache.get(key)
            if hit is not None:
                results[i] = hit if hit.rows is None else hit.with_rows(with_dtypes(hit.rows, RAW_SEGMENT_COLUMNS))
                stats["cache_hits"] += 1
                continue
        pending.append((i, load_input_file(item, settings), key))
        stats["processed"] += 1
    return results, pending


def _classify_pending(
    pending: list[tuple[int, FileResult, str | None]],
    results: list[FileResult | None],
    settings: SegmentSettings,
    classifier: StyleClassifier,
    cache: FileCache | None,
    logger: Callable[[str], None],
    n_cached: int,
) -> None:
    """Classify every new row in one batch, hand each file its slice, and cache the classified result."""
    texts = [t for _, r, _ in pending if r.rows is not None for t in r.rows["text"].tolist()]
    if texts:
        logger(f"style classifier: {len(texts)} new segments from {len(pending)} files ({n_cached} files cached)")
    styles, confidence = classifier.predict(texts, progress=progress_logger("style classifier", logger)) if texts else ([], np.zeros(0))
    offset = 0
    for i, result, key in pending:
        rows = result.rows if result.rows is not None else rows_frame([])
        n = len(rows)
        classified = result.with_rows(apply_styles(rows, styles[offset : offset + n], confidence[offset : offset + n], settings))
        offset += n
        if cache is not None and key is not None:
            cache.put(key, classified)
        results[i] = classified


def ingest_segment_files(
    files: Sequence[InputFile],
    settings: SegmentSettings,
    classifier: StyleClassifier,
    cache: FileCache | None = None,
    logger: Callable[[str], None] = log.info,
) -> tuple[list[FileResult], dict[str, int]]:
    """Load, validate and classify each file, re-using cached per-file results; new rows are classified in one batch."""
    stats = {"files": len(files), "cache_hits": 0, "processed": 0}
    results, pending = _cached_or_pending(files, settings, classifier, cache, stats)
    _classify_pending(pending, results, settings, classifier, cache, logger, stats["cache_hits"])
    return [r for r in results if r is not None], stats


def split_exact_repeats(
    rows: pd.DataFrame, dataset: str, stage: str, id_column: str, text_column: str, what: str, file_column: str | None = None
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Keep the first row of each id (sorted file order, then row order); every later exact repeat shares that id
    (docs/CONTRACTS.md) and becomes a `duplicate` reject naming the row that was kept."""
    dup_mask = rows[id_column].duplicated(keep="first")
    if not dup_mask.any():
        return rows, []
    first = rows.loc[~dup_mask].drop_duplicates(id_column).set_index(id_column)[["input_file", "row_index"]]
    rejects = []
    for row in rows.loc[dup_mask].to_dict("records"):
        kept = first.loc[row[id_column]]
        details = {
            "input_file": row["input_file"],
            "row_index": int(row["row_index"]),
            "raw": snippet(row[text_column]),
            "offending": {id_column: row[id_column]},
            "kept_input_file": kept["input_file"],
            "kept_row_index": int(kept["row_index"]),
        }
        reason = f"duplicate: same {what} as {kept['input_file']} row {int(kept['row_index'])}"
        file = row[file_column] if file_column else None
        rejects.append(reject_row(dataset, row[id_column], stage, [reason], details, row["source"], file))
    return rows.loc[~dup_mask].reset_index(drop=True), rejects


def combine_file_results(results: Iterable[FileResult]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All files' rows in order; a row whose segment_id was already accepted moves to the rejects as `duplicate`."""
    results = list(results)
    frames = [r.rows for r in results if r.rows is not None and len(r.rows)]
    rows = pd.concat(frames, ignore_index=True) if frames else apply_styles(rows_frame([]), [], np.zeros(0), SegmentSettings())
    reject_frames = [r.rejects for r in results if r.rejects is not None and len(r.rejects)]
    rows, duplicate_rejects = split_exact_repeats(rows, DATASET_SEGMENTS, STAGE, "segment_id", "text", "text", "file")
    if duplicate_rejects:
        reject_frames.append(rejects_frame(duplicate_rejects))
    rejects = pd.concat(reject_frames, ignore_index=True) if reject_frames else rejects_frame([])
    return rows, rejects


def reject_reason_counts(rejects: pd.DataFrame) -> dict[str, int]:
    """Reject rows per reason rule (text before the first colon)."""
    counts: dict[str, int] = {}
    for reasons in rejects["reasons"] if len(rejects) else []:
        for reason in reasons:
            rule = reason_key(reason)
            counts[rule] = counts.get(rule, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def accounting(results: Sequence[FileResult], rows: pd.DataFrame, rejects: pd.DataFrame) -> dict[str, Any]:
    """rows in (counted while parsing) vs kept + rejected, overall and per input file."""
    rows_in = {}
    for r in results:
        name = r.input_file
        rows_in[name] = rows_in.get(name, 0) + r.rows_in
    kept = rows["input_file"].value_counts().to_dict() if len(rows) else {}
    rejected: dict[str, int] = {}
    for details in rejects["details"] if len(rejects) else []:
        name = json.loads(details).get("input_file")
        rejected[name] = rejected.get(name, 0) + 1
    per_file = {
        name: {"rows_in": n, "kept": int(kept.get(name, 0)), "rejected": int(rejected.get(name, 0))}
        for name, n in rows_in.items()
    }
    mismatched = {k: v for k, v in per_file.items() if v["rows_in"] != v["kept"] + v["rejected"]}
    unknown = sorted((set(kept) | set(rejected)) - set(rows_in))
    total_in = sum(rows_in.values())
    return {
        "rows_in": total_in,
        "kept": int(len(rows)),
        "rejected": int(len(rejects)),
        "balanced": not mismatched and not unknown and total_in == len(rows) + len(rejects),
        "mismatched_files": mismatched,
        "unknown_files": unknown,
        "per_file": per_file,
    }


__all__ = [
    # segment_rows
    "LOADED_COLUMNS", "ORIGIN_SEGMENTS_FILE", "ORIGIN_TRANSCRIPT", "QUALITY_BAND_RE", "RAW_SEGMENT_COLUMNS",
    "SEGMENT_FIELDS", "STAGE", "UNKNOWN_SOURCE", "SegmentSettings", "text_problems", "validate_segment",
    # segment_files
    "InputFile", "invalid_file_result", "list_segment_inputs", "load_input_file", "load_segments_file",
    "load_transcript_sources", "parse_json_list", "quality_band_of", "rows_frame", "segment_transcript_file",
    # this module
    "FileResult", "apply_styles", "with_dtypes", "classify_file_result", "ingest_segment_files", "split_exact_repeats",
    "combine_file_results", "reject_reason_counts", "accounting",
]
