"""The schema audit: what every input contains, how it is distributed, and what looks wrong.

Built from the ingestion tables and their rejects (so it describes exactly what the pipeline accepted and
rejected) plus a raw field survey of the segment files (JSON types and missing/null rates as written, before
validation). Rendered as a JSON document and a self-contained HTML page (PNG histograms embedded as data URIs).
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pixel_pipeline.core import plots
from pixel_pipeline.core.records import STYLES
from pixel_pipeline.ingest.segments import SEGMENT_FIELDS, parse_json_list, reject_reason_counts
from pixel_pipeline.ingest.text import max_repeat_run, non_latin_runs, snippet


@dataclass(frozen=True)
class AuditSettings:
    """Thresholds of the anomaly scan. Field names equal the `audited_schema` Config fields.

    short_words / long_words: accepted segments outside these are "extreme lengths".
    min_non_latin_chars: letters in a non-Latin run before it counts. min_repeats: back-to-back repeats of one
    n-gram before a text counts as "repeated phrases". max_*_share: limits of the audited_schema_anomalies check.
    """

    short_words: int = 50
    long_words: int = 2000
    min_non_latin_chars: int = 3
    min_repeats: int = 5
    max_non_latin_share: float = 0.05
    max_extreme_length_share: float = 0.10
    max_near_duplicate_share: float = 0.05
    max_examples: int = 5


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number" if np.isfinite(value) else "number (NaN/inf)"
    return {str: "string", list: "list", dict: "object"}.get(type(value), type(value).__name__)


def survey_segment_fields(files: Sequence[Path]) -> dict[str, Any]:
    """JSON types per field as written in the segment files, with missing and null rates (before validation)."""
    types: dict[str, Counter] = {f: Counter() for f in SEGMENT_FIELDS}
    extra: Counter = Counter()
    items = 0
    unreadable = []
    for path in files:
        records, error = parse_json_list(path.read_bytes())
        if error:
            unreadable.append({"file": path.name, "reason": error})
            continue
        for record in records:
            items += 1
            if not isinstance(record, dict):
                extra[f"<{_type_name(record)} item>"] += 1
                continue
            for f in SEGMENT_FIELDS:
                types[f][_type_name(record[f]) if f in record else "missing"] += 1
            extra.update(k for k in record if k not in SEGMENT_FIELDS)
    fields = {
        f: {
            "types": dict(c.most_common()),
            "missing_rate": round(c.get("missing", 0) / items, 4) if items else None,
            "null_rate": round(c.get("null", 0) / items, 4) if items else None,
        }
        for f, c in types.items()
    }
    return {"items": items, "fields": fields, "other_fields": dict(extra.most_common(20)), "unreadable_files": unreadable}


def column_profile(df: pd.DataFrame) -> dict[str, dict[str, Any]]:
    return {
        c: {"dtype": str(df[c].dtype), "null_rate": round(float(df[c].isna().mean()), 4) if len(df) else None}
        for c in df.columns
    }


def describe(values: pd.Series) -> dict[str, Any]:
    values = pd.to_numeric(values, errors="coerce").dropna()
    if values.empty:
        return {"count": 0}
    q = values.quantile([0.05, 0.5, 0.95])
    return {
        "count": int(len(values)),
        "min": round(float(values.min()), 4),
        "p5": round(float(q.loc[0.05]), 4),
        "median": round(float(q.loc[0.5]), 4),
        "mean": round(float(values.mean()), 4),
        "p95": round(float(q.loc[0.95]), 4),
        "max": round(float(values.max()), 4),
    }


_NORMALISE_RE = re.compile(r"[^\w]+")


def normalised_text(text: str) -> str:
    return _NORMALISE_RE.sub(" ", text.lower()).strip()


def segment_anomalies(rows: pd.DataFrame, rejects: pd.DataFrame, settings: AuditSettings) -> dict[str, Any]:
    n = len(rows)
    k = settings.max_examples

    def share(count: int) -> float | None:
        return round(count / n, 4) if n else None

    conf = rows["confidence_given"].dropna() if n else pd.Series(dtype=float)
    outside = conf[(conf < 0) | (conf > 1)]
    wc = rows["word_count"] if n else pd.Series(dtype=int)
    short, long_ = rows[wc < settings.short_words] if n else rows, rows[wc > settings.long_words] if n else rows

    scripts, repeats = [], []
    for row in rows[["segment_id", "text"]].itertuples(index=False) if n else []:
        runs = non_latin_runs(row.text, settings.min_non_latin_chars)
        if runs:
            scripts.append({"segment_id": row.segment_id, "runs": [snippet(r, 60) for r in runs[:3]], "n_runs": len(runs)})
        times, gram = max_repeat_run(row.text)
        if times >= settings.min_repeats:
            repeats.append({"segment_id": row.segment_id, "phrase": gram, "repeats": times})

    normal = rows["text"].map(normalised_text) if n else pd.Series(dtype=str)
    near_dup = normal.duplicated(keep="first") if n else pd.Series(dtype=bool)
    reasons = reject_reason_counts(rejects)
    return {
        "confidence_outside_unit_interval": {
            "count": int(len(outside)),
            "share_of_labelled": round(len(outside) / len(conf), 4) if len(conf) else None,
            "max": float(conf.max()) if len(conf) else None,
            "note": "the given `confidence` is not a probability; use style_confidence (in [0, 1]) instead",
        },
        "rejected_empty_text": reasons.get("empty_text", 0),
        "rejected_too_short": reasons.get("too_short", 0),
        "rejected_too_long": reasons.get("too_long", 0),
        "extreme_lengths": {
            "short": int(len(short)),
            "long": int(len(long_)),
            "share": share(len(short) + len(long_)),
            "short_words": settings.short_words,
            "long_words": settings.long_words,
        },
        "duplicate_texts": {
            "exact_rejected": reasons.get("duplicate", 0),
            "near_duplicates_kept": int(near_dup.sum()),
            "near_duplicate_share": share(int(near_dup.sum())),
            "examples": rows.loc[near_dup, "segment_id"].head(k).tolist() if n else [],
            "note": "near = equal after lower-casing and dropping punctuation; curation's dedup removes them",
        },
        "non_latin_script_runs": {"rows": len(scripts), "share": share(len(scripts)), "examples": scripts[:k]},
        "repeated_phrases": {"rows": len(repeats), "share": share(len(repeats)), "min_repeats": settings.min_repeats, "examples": repeats[:k]},
    }


def conversation_summary(rows: pd.DataFrame, rejects: pd.DataFrame) -> dict[str, Any]:
    n = len(rows)
    per_question = rows.groupby("question_id").size() if n else pd.Series(dtype=int)
    return {
        "rows": n,
        "rejected": int(len(rejects)),
        "reject_reasons": reject_reason_counts(rejects),
        "columns": column_profile(rows),
        "per_source": rows["source"].value_counts().head(20).to_dict() if n else {},
        "prompt_chars": describe(rows["prompt"].str.len()) if n else {"count": 0},
        "response_chars": describe(rows["response"].str.len()) if n else {"count": 0},
        "n_turns": {str(k): int(v) for k, v in rows["n_turns"].value_counts().sort_index().items()} if n else {},
        "questions_with_several_answers": int((per_question > 1).sum()),
    }


def build_audit(
    segments: pd.DataFrame,
    segment_rejects: pd.DataFrame,
    counseling: pd.DataFrame,
    counseling_rejects: pd.DataFrame,
    cot: pd.DataFrame,
    cot_rejects: pd.DataFrame,
    segment_files: Sequence[Path],
    settings: AuditSettings,
    input_files: Mapping[str, int] | None = None,
    voice_sources: Sequence[str] = (),
) -> dict[str, Any]:
    n = len(segments)
    sources = segments["source"].value_counts() if n else pd.Series(dtype=int)
    by_origin = segments["origin"].value_counts().to_dict() if n else {}
    return {
        "settings": asdict(settings),
        "input_files": dict(input_files or {}),
        "segments": {
            "rows": n,
            "rejected": int(len(segment_rejects)),
            "reject_reasons": reject_reason_counts(segment_rejects),
            "by_origin": {str(k): int(v) for k, v in by_origin.items()},
            "raw_fields": survey_segment_fields(segment_files),
            "columns": column_profile(segments),
            "per_style": {
                col: {s: int((segments[col] == s).sum()) for s in STYLES} if n else {}
                for col in ("style_given", "style_predicted", "style")
            },
            "per_source": {str(k): int(v) for k, v in sources.head(30).items()},
            "n_sources": int(len(sources)),
            "voice_sources": list(voice_sources),
            "voice_share": round(float(segments["source"].isin(list(voice_sources)).mean()), 4) if n else None,
            "word_count_by_style": {s: describe(segments.loc[segments["style"] == s, "word_count"]) for s in STYLES} if n else {},
            "word_count": describe(segments["word_count"]) if n else {"count": 0},
            "confidence_given": describe(segments["confidence_given"]) if n else {"count": 0},
            "quality": describe(segments["quality"]) if n else {"count": 0},
            "style_confidence": describe(segments["style_confidence"]) if n else {"count": 0},
            "anomalies": segment_anomalies(segments, segment_rejects, settings),
        },
        "counseling": conversation_summary(counseling, counseling_rejects),
        "cot": conversation_summary(cot, cot_rejects),
    }


def audit_plots(segments: pd.DataFrame) -> dict[str, str]:
    """Markdown images (PNG data URIs) keyed by title."""
    if not len(segments):
        return {}
    out = {}
    by_style = {s: segments.loc[segments["style"] == s, "word_count"].tolist() for s in STYLES}
    out["Segment length by style (words)"] = plots.histogram_markdown(
        {s: v for s, v in by_style.items() if v}, "Segment length by style", "words"
    )
    conf = segments["confidence_given"].dropna().tolist()
    if conf:
        out["Given confidence (not a probability)"] = plots.histogram_markdown(conf, "Given confidence", "confidence")
    quality = segments["quality"].dropna().tolist()
    if quality:
        out["Quality"] = plots.histogram_markdown(quality, "Quality", "quality")
    out["Style classifier confidence"] = plots.histogram_markdown(
        segments["style_confidence"].tolist(), "Style classifier confidence", "confidence"
    )
    out["Segments per source (top 15)"] = plots.bar_markdown(segments["source"].value_counts().head(15).to_dict(), "Segments per source")
    return out


_IMG_RE = re.compile(r"!\[[^\]]*\]\((data:image/png;base64,[A-Za-z0-9+/=]+)\)")


def _html_value(value: Any) -> str:
    if isinstance(value, Mapping):
        if not value:
            return "<i>none</i>"
        rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{_html_value(v)}</td></tr>" for k, v in value.items())
        return f"<table>{rows}</table>"
    if isinstance(value, list):
        if not value:
            return "<i>none</i>"
        return "<ul>" + "".join(f"<li>{_html_value(v)}</li>" for v in value) + "</ul>"
    return html.escape(str(value))


def render_html(audit: Mapping[str, Any], images: Mapping[str, str], title: str = "pixel_pipeline schema audit") -> str:
    """A self-contained page: every figure embedded as a data URI, every number from `audit`."""
    figures = []
    for caption, md in images.items():
        match = _IMG_RE.search(md)
        if match:
            figures.append(f'<figure><img alt="{html.escape(caption)}" src="{match.group(1)}"><figcaption>{html.escape(caption)}</figcaption></figure>')
    sections = "".join(f"<section><h2>{html.escape(k)}</h2>{_html_value(v)}</section>" for k, v in audit.items())
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:.3em 0}"
        "th,td{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top;font-size:13px}"
        "th{background:#f4f4f4}figure{display:inline-block;margin:.5em}img{max-width:560px}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{style}</style></head>"
        f"<body><h1>{html.escape(title)}</h1><div>{''.join(figures)}</div>{sections}</body></html>"
    )


def audit_json(audit: Mapping[str, Any]) -> str:
    return json.dumps(audit, ensure_ascii=False, indent=2, default=str)
