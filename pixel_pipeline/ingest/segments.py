"""Segments: load and validate `training_segments/*.json`, cut `transcripts/*.txt`, classify style, combine.

Everything works one input file at a time (the unit a later sensor turns into a dynamic partition):

- `load_segments_file(path, relative_name, settings)` and `segment_transcript_file(path, relative_name, settings,
  source)` are pure: bytes in, a `FileResult` (accepted rows, reject rows, rows_in, file_error) out, no model.
- `classify_file_result(result, classifier, settings)` adds style_predicted / style_confidence / style / expert.
- `ingest_segment_files(...)` runs both for many files, re-using a per-file cache (see `ingest.cache`) so unchanged
  files are not re-read nor re-classified, and classifies all new rows in one batch with progress logs.
- `combine_file_results(results)` concatenates files in order and quarantines exact repeats (same segment_id) of an
  earlier accepted row as `duplicate`: corpus-wide, so it runs after the per-file step.

Accounting: per file, rows_in = list items (segment files, read item by item: a broken item is one reject) or cut
segments (transcripts); a file that is no JSON list at all counts as ONE input row and yields one reject with reason `invalid_file: ...`.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pixel_pipeline.core.records import DATASET_SEGMENTS, STYLES, reason_key, reject_row, rejects_frame
from pixel_pipeline.ingest.cache import FileCache, FileResult
from pixel_pipeline.ingest.inputs import scan_input_folder
from pixel_pipeline.ingest.rows import BrokenRecord, decode_text, json_list_records
from pixel_pipeline.ingest.style import StyleClassifier, choose_style, expert_of, progress_logger
from pixel_pipeline.ingest.text import (
    CONTROL_CHAR_RE,
    SURROGATE_RE,
    bytes_id,
    raw_bytes,
    sanitise_file_name,
    snippet,
    text_id,
    word_count,
)
from pixel_pipeline.ingest.transcripts import clean_transcript, cut_segments

log = logging.getLogger(__name__)

STAGE = "raw_segments"
ORIGIN_SEGMENTS_FILE = "segments_file"
ORIGIN_TRANSCRIPT = "transcript"
UNKNOWN_SOURCE = "unknown"
SEGMENT_FIELDS = ("text", "style", "confidence", "quality", "source", "file")

RAW_SEGMENT_COLUMNS = {
    "segment_id": "str",
    "text": "str",
    "origin": "str",
    "input_file": "str",
    "row_index": "int64",
    "file": "str",
    "source": "str",
    "style_given": "str",
    "confidence_given": "float64",
    "quality": "float64",
    "quality_band": "str",
    "style_predicted": "str",
    "style_confidence": "float64",
    "style": "str",
    "expert": "int64",
    "word_count": "int64",
}
# Columns known before classification (what the pure per-file loaders return).
LOADED_COLUMNS = [c for c in RAW_SEGMENT_COLUMNS if c not in ("style_predicted", "style_confidence", "style", "expert")]
QUALITY_BAND_RE = re.compile(r"_([a-z]+)_quality$", re.IGNORECASE)


@dataclass(frozen=True)
class SegmentSettings:
    """How segments are validated, cut and labelled. Field names equal the `raw_segments` Config fields.

    min_words / max_words: a segment outside [min_words, max_words] words is quarantined. These are sanity bounds
      (a fragment, a runaway blob), not the training length policy, which curation owns (real segments run
      ~35-3,700 words). max_chars: checked before counting words, so a 5 MB blob is rejected at once.
    max_confidence_given: the given `confidence` is not a probability (0-9.9 seen); above this it is quarantined.
    required_fields: fields a segment-file row must carry (others default: source `unknown`, file = the segments
      file's name, confidence / quality null).
    target_words / min_tail_words / max_sentence_words: transcript cutting (see transcripts.cut_segments).
    transcript_source: `source` of transcripts not listed in transcripts/sources.json (default `unknown`: name each
      transcript's channel there, so that the voice sources can be told apart).
    expert_style_from / min_style_confidence: which style maps to an expert (see style.choose_style).
    """

    min_words: int = 5
    max_words: int = 5000
    max_chars: int = 100_000
    max_confidence_given: float = 10.0
    required_fields: tuple[str, ...] = ("text", "style")
    target_words: int = 350
    min_tail_words: int = 100
    max_sentence_words: int = 80
    transcript_source: str = UNKNOWN_SOURCE
    expert_style_from: str = "auto"
    min_style_confidence: float = 0.7

    def fingerprint(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------------------------
# validation of one row


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def text_problems(text: str, settings: SegmentSettings) -> tuple[list[str], int]:
    """Reasons a segment text is unusable, and its word count (-1 when not counted)."""
    if SURROGATE_RE.search(text):
        bad = len(SURROGATE_RE.findall(text))
        return [f"invalid_utf8: text holds {bad} bytes that are not valid UTF-8"], -1
    if len(text) > settings.max_chars:
        return [f"too_long: {len(text):,} characters > max_chars {settings.max_chars:,}"], -1
    reasons = []
    controls = CONTROL_CHAR_RE.findall(text)
    if controls:
        reasons.append(f"binary_content: text holds {len(controls)} control characters (e.g. {controls[0]!r})")
    if not text.strip():
        return reasons + ["empty_text"], 0
    n = word_count(text)
    if n < settings.min_words:
        reasons.append(f"too_short: {n} words < min_words {settings.min_words}")
    elif n > settings.max_words:
        reasons.append(f"too_long: {n} words > max_words {settings.max_words}")
    return reasons, n


def validate_segment(record: Any, settings: SegmentSettings) -> tuple[dict[str, Any], list[str], dict[str, Any]]:
    """(normalised fields, reasons it must be quarantined, offending values) for one item of a segments file."""
    if not isinstance(record, dict):
        return {}, [f"not_an_object: expected a JSON object, got {type(record).__name__}"], {"item": snippet(record)}
    reasons: list[str] = []
    offending: dict[str, Any] = {}
    out: dict[str, Any] = {}

    def bad(field_name: str, reason: str) -> None:
        reasons.append(reason)
        offending[field_name] = snippet(record.get(field_name))

    for name in settings.required_fields:
        if record.get(name) is None:
            bad(name, f"missing_field: {name}" + (" is null" if name in record else ""))

    text = record.get("text")
    n_words = -1
    if text is not None:
        if not isinstance(text, str):
            bad("text", f"wrong_type: text is {type(text).__name__}, expected string")
        else:
            problems, n_words = text_problems(text, settings)
            if problems:
                reasons.extend(problems)
                offending["text"] = snippet(text)
    out["text"] = text if isinstance(text, str) else None
    out["word_count"] = n_words

    style = record.get("style")
    out["style_given"] = None
    if style is not None:
        if not isinstance(style, str):
            bad("style", f"wrong_type: style is {type(style).__name__}, expected string")
        elif style.strip().lower() not in STYLES:
            bad("style", f"unknown_style: {snippet(style, 40)!r} is not one of {', '.join(STYLES)}")
        else:
            out["style_given"] = style.strip().lower()

    for name, upper in (("confidence", settings.max_confidence_given), ("quality", 1.0)):
        value = record.get(name)
        out[name] = None
        if value is None:
            continue
        if not _is_number(value):
            bad(name, f"wrong_type: {name} is {type(value).__name__}, expected number")
        elif not math.isfinite(value):
            bad(name, f"{name}_not_finite: {value}")
        elif value < 0 or value > upper:
            bad(name, f"{name}_out_of_range: {value} not in [0, {upper:g}]")
        else:
            out[name] = float(value)

    source = record.get("source")
    out["source"] = UNKNOWN_SOURCE
    if source is not None:
        if not isinstance(source, str):
            bad("source", f"wrong_type: source is {type(source).__name__}, expected string")
        elif source.strip():
            out["source"] = source.strip()

    file_value = record.get("file")
    out["file"] = None
    out["file_sanitised"] = False
    if file_value is not None:
        if not isinstance(file_value, str):
            bad("file", f"wrong_type: file is {type(file_value).__name__}, expected string")
        else:
            base, unsafe = sanitise_file_name(file_value)
            if unsafe:
                bad("file", f"unsafe_file_path: {snippet(file_value, 80)!r} ({unsafe}); base name would be {base!r}")
            out["file"] = base or None
            out["file_sanitised"] = base != file_value.strip()
    return out, reasons, offending


# ---------------------------------------------------------------------------------------------------------------
# per-file loaders (pure, no model)


def quality_band_of(relative_name: str) -> str | None:
    """`empathetic_high_quality.json` -> `high`."""
    match = QUALITY_BAND_RE.search(Path(relative_name).stem)
    return match.group(1).lower() if match else None


def invalid_file_result(data: bytes, relative_name: str, reason: str, dataset: str = DATASET_SEGMENTS, stage: str = STAGE) -> FileResult:
    """A file that cannot be read at all: one reject row, keyed by the content id of its bytes (decoded leniently)."""
    item_id = bytes_id(data.decode("utf-8", errors="replace").encode("utf-8"))
    details = {"input_file": relative_name, "row_index": None, "raw": snippet(data[:400].decode("utf-8", errors="replace"))}
    reject = reject_row(dataset, item_id, stage, [f"invalid_file: {reason}"], details, file=Path(relative_name).name)
    log.warning("%s: %s is not usable: %s", stage, relative_name, reason)
    return FileResult(relative_name, rows=None, rejects=rejects_frame([reject]), rows_in=1, file_error=reason)


def parse_json_list(data: bytes) -> tuple[list | None, str | None]:
    """The JSON list in `data`, or why there is none. Invalid UTF-8 inside strings is kept (as surrogates) so that
    only the rows carrying it are quarantined, not the whole file."""
    try:
        text = data.decode("utf-8-sig", errors="surrogateescape")
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    except (ValueError, RecursionError) as exc:
        return None, f"not valid JSON: {exc}"
    if not isinstance(parsed, list):
        return None, f"expected a JSON list of segments, got a JSON {type(parsed).__name__}"
    return parsed, None


def _rows_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=LOADED_COLUMNS)
    return df.astype({"row_index": "int64", "word_count": "int64", "confidence_given": "float64", "quality": "float64"})


def load_segments_file(path: str | Path, relative_name: str, settings: SegmentSettings) -> FileResult:
    """Validate every item of one `training_segments/*.json` file: accepted rows + quarantined rows."""
    data = Path(path).read_bytes()
    records, error = json_list_records(decode_text(data), "segments", columns_ok=False)  # item by item
    if error:
        return invalid_file_result(data, relative_name, error)
    band = quality_band_of(relative_name)
    rows: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    sanitised = 0
    for index, record in enumerate(records):
        if isinstance(record, BrokenRecord):  # one unparseable item: that row only
            details = {"input_file": relative_name, "row_index": index, "raw": snippet(record.raw)}
            rejects.append(reject_row(DATASET_SEGMENTS, bytes_id(raw_bytes(record.raw)), STAGE, [record.reason], details))
            continue
        fields, reasons, offending = validate_segment(record, settings)
        text = fields.get("text")
        if reasons:
            raw = record.get("text") if isinstance(record, dict) else record
            item_id = text_id(raw) if isinstance(raw, str) else bytes_id(snippet(record, 10_000).encode("utf-8"))
            details = {"input_file": relative_name, "row_index": index, "raw": snippet(raw), "offending": offending}
            rejects.append(reject_row(DATASET_SEGMENTS, item_id, STAGE, reasons, details, fields.get("source"), fields.get("file")))
            continue
        sanitised += bool(fields["file_sanitised"])
        rows.append(
            {
                "segment_id": text_id(text),
                "text": text,
                "origin": ORIGIN_SEGMENTS_FILE,
                "input_file": relative_name,
                "row_index": index,
                "file": fields["file"] or Path(relative_name).name,  # no `file`: group with its segments file
                "source": fields["source"],
                "style_given": fields["style_given"],
                "confidence_given": fields["confidence"],
                "quality": fields["quality"],
                "quality_band": band,
                "word_count": fields["word_count"],
            }
        )
    return FileResult(relative_name, rows=_rows_frame(rows), rejects=rejects_frame(rejects), rows_in=len(records), notes={"file_paths_sanitised": sanitised})


def load_transcript_sources(transcripts_dir: Path) -> tuple[dict[str, str], str | None]:
    """`transcripts/sources.json` ({file name: channel}) when present; (mapping, problem reading it)."""
    path = transcripts_dir / "sources.json"
    if not path.exists():
        return {}, None
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return {}, f"sources.json unreadable ({exc}); using transcript_source for every transcript"
    if not isinstance(mapping, dict):
        return {}, "sources.json is not a JSON object {file: channel}; using transcript_source"
    return {str(k): str(v) for k, v in mapping.items() if isinstance(v, str) and v.strip()}, None


def segment_transcript_file(path: str | Path, relative_name: str, settings: SegmentSettings, source: str) -> FileResult:
    """Clean one raw transcript and cut it into segments at sentence boundaries (rows not yet classified)."""
    data = Path(path).read_bytes()
    try:
        raw = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return invalid_file_result(data, relative_name, f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})")
    controls = CONTROL_CHAR_RE.findall(raw)
    if len(controls) > 0:
        return invalid_file_result(data, relative_name, f"binary content: {len(controls)} control characters (e.g. {controls[0]!r})")
    text = clean_transcript(raw)
    if not text:
        return invalid_file_result(data, relative_name, "no text left after cleaning (empty transcript)")
    pieces = cut_segments(text, settings.target_words, settings.min_tail_words, settings.max_words, settings.max_sentence_words)
    file_name = Path(relative_name).name
    rows, rejects = [], []
    for index, piece in enumerate(pieces):
        reasons, n = text_problems(piece, settings)
        if reasons:
            details = {"input_file": relative_name, "row_index": index, "raw": snippet(piece)}
            rejects.append(reject_row(DATASET_SEGMENTS, text_id(piece), STAGE, reasons, details, source, file_name))
            continue
        rows.append(
            {
                "segment_id": text_id(piece),
                "text": piece,
                "origin": ORIGIN_TRANSCRIPT,
                "input_file": relative_name,
                "row_index": index,
                "file": file_name,
                "source": source,
                "style_given": None,
                "confidence_given": None,
                "quality": None,
                "quality_band": None,
                "word_count": n,
            }
        )
    notes = {"cleaned_words": len(text.split()), "raw_chars": len(raw)}
    return FileResult(relative_name, rows=_rows_frame(rows), rejects=rejects_frame(rejects), rows_in=len(pieces), notes=notes)


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
    rows = result.rows if result.rows is not None else _rows_frame([])
    styles, confidence = classifier.predict(rows["text"].tolist())
    return result.with_rows(apply_styles(rows, styles, confidence, settings))


@dataclass
class InputFile:
    """One input file: where it is, its name relative to PIXEL_DATA_DIR, its kind, and its transcript source."""

    path: Path
    relative_name: str
    kind: str  # ORIGIN_SEGMENTS_FILE or ORIGIN_TRANSCRIPT
    source: str | None = None


def list_segment_inputs(data_dir: Path, settings: SegmentSettings, segments_dir: str = "training_segments", transcripts_dir: str = "transcripts") -> tuple[list[InputFile], list[str]]:
    """Every segments file, then every transcript, sorted by name (the order duplicates are resolved in), and notes:
    a sources.json problem, and every entry skipped at the data-directory boundary with its reason (ingest.inputs)."""
    notes: list[str] = []
    files: list[InputFile] = []
    seg_files, skipped = scan_input_folder(data_dir / segments_dir, data_dir, (".json",))
    files += [InputFile(p, p.relative_to(data_dir).as_posix(), ORIGIN_SEGMENTS_FILE) for p in seg_files]
    tr_root = data_dir / transcripts_dir
    if tr_root.is_dir():
        sources, problem = load_transcript_sources(tr_root)
        if problem:
            notes.append(problem)
        tr_files, tr_skipped = scan_input_folder(tr_root, data_dir, (".txt",))
        skipped += tr_skipped
        for p in tr_files:
            src = sources.get(p.name) or settings.transcript_source
            files.append(InputFile(p, p.relative_to(data_dir).as_posix(), ORIGIN_TRANSCRIPT, src))
    notes += [f"skipped {s['path']}: {s['reason']}" for s in skipped]
    return files, notes


def load_input_file(item: InputFile, settings: SegmentSettings) -> FileResult:
    if item.kind == ORIGIN_TRANSCRIPT:
        return segment_transcript_file(item.path, item.relative_name, settings, item.source or settings.transcript_source)
    return load_segments_file(item.path, item.relative_name, settings)


def ingest_segment_files(
    files: Sequence[InputFile],
    settings: SegmentSettings,
    classifier: StyleClassifier,
    cache: FileCache | None = None,
    logger: Callable[[str], None] = log.info,
) -> tuple[list[FileResult], dict[str, int]]:
    """Load, validate and classify each file, re-using cached per-file results; new rows are classified in one batch."""
    results: list[FileResult | None] = [None] * len(files)
    pending: list[tuple[int, FileResult, str | None]] = []
    stats = {"files": len(files), "cache_hits": 0, "processed": 0}
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
    texts = [t for _, r, _ in pending if r.rows is not None for t in r.rows["text"].tolist()]
    if texts:
        logger(f"style classifier: {len(texts)} new segments from {len(pending)} files ({stats['cache_hits']} files cached)")
    styles, confidence = classifier.predict(texts, progress=progress_logger("style classifier", logger)) if texts else ([], np.zeros(0))
    offset = 0
    for i, result, key in pending:
        rows = result.rows if result.rows is not None else _rows_frame([])
        n = len(rows)
        classified = result.with_rows(apply_styles(rows, styles[offset : offset + n], confidence[offset : offset + n], settings))
        offset += n
        if cache is not None and key is not None:
            cache.put(key, classified)
        results[i] = classified
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
    rows = pd.concat(frames, ignore_index=True) if frames else apply_styles(_rows_frame([]), [], np.zeros(0), SegmentSettings())
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
    """rows in (counted while parsing) vs accepted + quarantined, overall and per input file."""
    rows_in = {}
    for r in results:
        name = r.input_file
        rows_in[name] = rows_in.get(name, 0) + r.rows_in
    kept = rows["input_file"].value_counts().to_dict() if len(rows) else {}
    quarantined: dict[str, int] = {}
    for details in rejects["details"] if len(rejects) else []:
        name = json.loads(details).get("input_file")
        quarantined[name] = quarantined.get(name, 0) + 1
    per_file = {
        name: {"rows_in": n, "accepted": int(kept.get(name, 0)), "quarantined": int(quarantined.get(name, 0))}
        for name, n in rows_in.items()
    }
    mismatched = {k: v for k, v in per_file.items() if v["rows_in"] != v["accepted"] + v["quarantined"]}
    unknown = sorted((set(kept) | set(quarantined)) - set(rows_in))
    total_in = sum(rows_in.values())
    return {
        "rows_in": total_in,
        "accepted": int(len(rows)),
        "quarantined": int(len(rejects)),
        "balanced": not mismatched and not unknown and total_in == len(rows) + len(rejects),
        "mismatched_files": mismatched,
        "unknown_files": unknown,
        "per_file": per_file,
    }


__all__ = [
    "SegmentSettings",
    "InputFile",
    "FileResult",
    "load_segments_file",
    "segment_transcript_file",
    "classify_file_result",
    "ingest_segment_files",
    "combine_file_results",
    "list_segment_inputs",
    "accounting",
]
