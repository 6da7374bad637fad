"""Per-file segment loaders (pure, no model) and the list of segment input files.

`load_segments_file` validates every item of one `training_segments/*.json` file; `segment_transcript_file` cleans
one `transcripts/*.txt` and cuts it into segments. Both return a `FileResult` whose rows are not yet classified.
A file that cannot be read at all becomes ONE reject row (`invalid_file: ...`) counted as one input row.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pixel_pipeline.core.records import DATASET_SEGMENTS, reject_row, rejects_frame
from pixel_pipeline.ingest.cache import FileResult
from pixel_pipeline.ingest.inputs import scan_input_folder
from pixel_pipeline.ingest.rows import BrokenRecord, decode_text, json_list_records
from pixel_pipeline.ingest.segment_rows import (
    LOADED_COLUMNS,
    ORIGIN_SEGMENTS_FILE,
    ORIGIN_TRANSCRIPT,
    QUALITY_BAND_RE,
    STAGE,
    SegmentSettings,
    text_problems,
    validate_segment,
)
from pixel_pipeline.ingest.text import CONTROL_CHAR_RE, bytes_id, raw_bytes, snippet, text_id
from pixel_pipeline.ingest.transcripts import clean_transcript, cut_segments

log = logging.getLogger(__name__)


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
    only the rows carrying it are rejected, not the whole file."""
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


def rows_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Loaded (not yet classified) segment rows with their contract dtypes."""
    df = pd.DataFrame(rows, columns=LOADED_COLUMNS)
    return df.astype({"row_index": "int64", "word_count": "int64", "confidence_given": "float64", "quality": "float64"})


# ---------------------------------------------------------------------------------------------------------------
# training_segments/*.json


def _broken_item_reject(record: BrokenRecord, relative_name: str, index: int) -> dict[str, Any]:
    """One unparseable item of the list: that row only."""
    details = {"input_file": relative_name, "row_index": index, "raw": snippet(record.raw)}
    return reject_row(DATASET_SEGMENTS, bytes_id(raw_bytes(record.raw)), STAGE, [record.reason], details)


def _invalid_item_reject(record: Any, fields: dict[str, Any], reasons: list[str], offending: dict[str, Any], relative_name: str, index: int) -> dict[str, Any]:
    raw = record.get("text") if isinstance(record, dict) else record
    item_id = text_id(raw) if isinstance(raw, str) else bytes_id(snippet(record, 10_000).encode("utf-8"))
    details = {"input_file": relative_name, "row_index": index, "raw": snippet(raw), "offending": offending}
    return reject_row(DATASET_SEGMENTS, item_id, STAGE, reasons, details, fields.get("source"), fields.get("file"))


def _segments_file_row(fields: dict[str, Any], relative_name: str, index: int, band: str | None) -> dict[str, Any]:
    text = fields["text"]
    return {
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


def load_segments_file(path: str | Path, relative_name: str, settings: SegmentSettings) -> FileResult:
    """Validate every item of one `training_segments/*.json` file: accepted rows + rejected rows."""
    data = Path(path).read_bytes()
    records, error = json_list_records(decode_text(data), "segments", columns_ok=False)  # item by item
    if error:
        return invalid_file_result(data, relative_name, error)
    band = quality_band_of(relative_name)
    rows: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    sanitised = 0
    for index, record in enumerate(records):
        if isinstance(record, BrokenRecord):
            rejects.append(_broken_item_reject(record, relative_name, index))
            continue
        fields, reasons, offending = validate_segment(record, settings)
        if reasons:
            rejects.append(_invalid_item_reject(record, fields, reasons, offending, relative_name, index))
            continue
        sanitised += bool(fields["file_sanitised"])
        rows.append(_segments_file_row(fields, relative_name, index, band))
    notes = {"file_paths_sanitised": sanitised}
    return FileResult(relative_name, rows=rows_frame(rows), rejects=rejects_frame(rejects), rows_in=len(records), notes=notes)


# ---------------------------------------------------------------------------------------------------------------
# transcripts/*.txt


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


def _transcript_text(data: bytes) -> tuple[str, str, str | None]:
    """(raw text, cleaned text, why the file is unusable or None)."""
    try:
        raw = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return "", "", f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})"
    controls = CONTROL_CHAR_RE.findall(raw)
    if len(controls) > 0:
        return raw, "", f"binary content: {len(controls)} control characters (e.g. {controls[0]!r})"
    text = clean_transcript(raw)
    if not text:
        return raw, "", "no text left after cleaning (empty transcript)"
    return raw, text, None


def _transcript_row(piece: str, n_words: int, relative_name: str, index: int, source: str) -> dict[str, Any]:
    return {
        "segment_id": text_id(piece),
        "text": piece,
        "origin": ORIGIN_TRANSCRIPT,
        "input_file": relative_name,
        "row_index": index,
        "file": Path(relative_name).name,
        "source": source,
        "style_given": None,
        "confidence_given": None,
        "quality": None,
        "quality_band": None,
        "word_count": n_words,
    }


def segment_transcript_file(path: str | Path, relative_name: str, settings: SegmentSettings, source: str) -> FileResult:
    """Clean one raw transcript and cut it into segments at sentence boundaries (rows not yet classified)."""
    data = Path(path).read_bytes()
    raw, text, error = _transcript_text(data)
    if error:
        return invalid_file_result(data, relative_name, error)
    pieces = cut_segments(text, settings.target_words, settings.min_tail_words, settings.max_words, settings.max_sentence_words)
    file_name = Path(relative_name).name
    rows, rejects = [], []
    for index, piece in enumerate(pieces):
        reasons, n = text_problems(piece, settings)
        if reasons:
            details = {"input_file": relative_name, "row_index": index, "raw": snippet(piece)}
            rejects.append(reject_row(DATASET_SEGMENTS, text_id(piece), STAGE, reasons, details, source, file_name))
            continue
        rows.append(_transcript_row(piece, n, relative_name, index, source))
    notes = {"cleaned_words": len(text.split()), "raw_chars": len(raw)}
    return FileResult(relative_name, rows=rows_frame(rows), rejects=rejects_frame(rejects), rows_in=len(pieces), notes=notes)


# ---------------------------------------------------------------------------------------------------------------
# the input files


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
