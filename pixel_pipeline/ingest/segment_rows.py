"""One segment row: the raw_segments columns, the validation settings, and the checks of one segments-file item.

`validate_segment(record, settings)` returns the normalised fields, every reason the row must be rejected, and the
offending values; it checks the fields in a fixed order (required fields, text, style, confidence, quality,
source, file) so a row's reasons always read the same.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from pixel_pipeline.core.records import STYLES
from pixel_pipeline.ingest.text import CONTROL_CHAR_RE, SURROGATE_RE, sanitise_file_name, snippet, word_count

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

    min_words / max_words: a segment outside [min_words, max_words] words is rejected. These are sanity bounds
      (a fragment, a runaway blob), not the training length policy, which curation owns (real segments run
      ~35-3,700 words). max_chars: checked before counting words, so a 5 MB blob is rejected at once.
    max_confidence_given: the given `confidence` is not a probability (0-9.9 seen); above this it is rejected.
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


@dataclass
class _RowCheck:
    """One record under validation: its normalised fields, the reasons so far and the values that caused them."""

    record: dict[str, Any]
    out: dict[str, Any] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    offending: dict[str, Any] = field(default_factory=dict)

    def bad(self, field_name: str, reason: str) -> None:
        self.reasons.append(reason)
        self.offending[field_name] = snippet(self.record.get(field_name))


def _check_required(row: _RowCheck, settings: SegmentSettings) -> None:
    for name in settings.required_fields:
        if row.record.get(name) is None:
            row.bad(name, f"missing_field: {name}" + (" is null" if name in row.record else ""))


def _check_text(row: _RowCheck, settings: SegmentSettings) -> None:
    text = row.record.get("text")
    n_words = -1
    if text is not None:
        if not isinstance(text, str):
            row.bad("text", f"wrong_type: text is {type(text).__name__}, expected string")
        else:
            problems, n_words = text_problems(text, settings)
            if problems:
                row.reasons.extend(problems)
                row.offending["text"] = snippet(text)
    row.out["text"] = text if isinstance(text, str) else None
    row.out["word_count"] = n_words


def _check_style(row: _RowCheck) -> None:
    style = row.record.get("style")
    row.out["style_given"] = None
    if style is None:
        return
    if not isinstance(style, str):
        row.bad("style", f"wrong_type: style is {type(style).__name__}, expected string")
    elif style.strip().lower() not in STYLES:
        row.bad("style", f"unknown_style: {snippet(style, 40)!r} is not one of {', '.join(STYLES)}")
    else:
        row.out["style_given"] = style.strip().lower()


def _check_score(row: _RowCheck, name: str, upper: float) -> None:
    """`confidence` / `quality`: an optional finite number in [0, upper]."""
    value = row.record.get(name)
    row.out[name] = None
    if value is None:
        return
    if not _is_number(value):
        row.bad(name, f"wrong_type: {name} is {type(value).__name__}, expected number")
    elif not math.isfinite(value):
        row.bad(name, f"{name}_not_finite: {value}")
    elif value < 0 or value > upper:
        row.bad(name, f"{name}_out_of_range: {value} not in [0, {upper:g}]")
    else:
        row.out[name] = float(value)


def _check_source(row: _RowCheck) -> None:
    source = row.record.get("source")
    row.out["source"] = UNKNOWN_SOURCE
    if source is None:
        return
    if not isinstance(source, str):
        row.bad("source", f"wrong_type: source is {type(source).__name__}, expected string")
    elif source.strip():
        row.out["source"] = source.strip()


def _check_file(row: _RowCheck) -> None:
    """`file` is the split group key: a path that climbs out, is absolute or holds a NUL is rejected."""
    file_value = row.record.get("file")
    row.out["file"] = None
    row.out["file_sanitised"] = False
    if file_value is None:
        return
    if not isinstance(file_value, str):
        row.bad("file", f"wrong_type: file is {type(file_value).__name__}, expected string")
        return
    base, unsafe = sanitise_file_name(file_value)
    if unsafe:
        row.bad("file", f"unsafe_file_path: {snippet(file_value, 80)!r} ({unsafe}); base name would be {base!r}")
    row.out["file"] = base or None
    row.out["file_sanitised"] = base != file_value.strip()


def validate_segment(record: Any, settings: SegmentSettings) -> tuple[dict[str, Any], list[str], dict[str, Any]]:
    """(normalised fields, reasons it must be rejected, offending values) for one item of a segments file."""
    if not isinstance(record, dict):
        return {}, [f"not_an_object: expected a JSON object, got {type(record).__name__}"], {"item": snippet(record)}
    row = _RowCheck(record)
    _check_required(row, settings)
    _check_text(row, settings)
    _check_style(row)
    _check_score(row, "confidence", settings.max_confidence_given)
    _check_score(row, "quality", 1.0)
    _check_source(row)
    _check_file(row)
    return row.out, row.reasons, row.offending
