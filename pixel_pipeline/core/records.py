"""Names shared by every table: datasets, id columns, styles/experts, and the reject schema.

Tables that mix datasets carry both `segment_id` (set for dataset "segments") and `record_id` (set for
"counseling" and "cot"); exactly one is non-null per row, mirroring `rejected.jsonl` in ../shared/DESIGN.md.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

DATASET_SEGMENTS = "segments"
DATASET_COUNSELING = "counseling"
DATASET_COT = "cot"
DATASETS = (DATASET_SEGMENTS, DATASET_COUNSELING, DATASET_COT)

# The four styles map to four experts, in this order (issue 4: therapeutic 0 ... practical 3).
STYLES = ("therapeutic", "educational", "empathetic", "practical")
EXPERT_INDEX = {style: i for i, style in enumerate(STYLES)}


def id_column(dataset: str) -> str:
    """`segment_id` for segments, `record_id` for conversations."""
    if dataset == DATASET_SEGMENTS:
        return "segment_id"
    if dataset in (DATASET_COUNSELING, DATASET_COT):
        return "record_id"
    raise ValueError(f"unknown dataset {dataset!r}; expected one of {DATASETS}")


def row_id(row: Mapping[str, Any]) -> str | None:
    """The id of a row of a mixed table, whichever of the two id columns it uses."""
    value = row.get(id_column(row["dataset"]))
    return None if value is None or (isinstance(value, float) and value != value) else str(value)


# ---- rejects: one row per input record dropped at some stage -------------------------------------------
REJECT_COLUMNS = ["dataset", "segment_id", "record_id", "stage", "reasons", "details", "source", "file"]


def reject_row(
    dataset: str,
    item_id: str | None,
    stage: str,
    reasons: Sequence[str],
    details: Mapping[str, Any] | None = None,
    source: str | None = None,
    file: str | None = None,
) -> dict[str, Any]:
    """One reject row. `reasons` are short rule names (optionally `rule: explanation`); `details` holds scores."""
    if not reasons:
        raise ValueError("a reject needs at least one reason")
    col = id_column(dataset)
    return {
        "dataset": dataset,
        "segment_id": item_id if col == "segment_id" else None,
        "record_id": item_id if col == "record_id" else None,
        "stage": stage,
        "reasons": [str(r) for r in reasons],
        "details": json.dumps(dict(details or {}), ensure_ascii=False, default=str, sort_keys=True),
        "source": source,
        "file": file,
    }


def rejects_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """A DataFrame with exactly REJECT_COLUMNS (empty frames keep the schema)."""
    df = pd.DataFrame(list(rows), columns=REJECT_COLUMNS)
    for col in ("segment_id", "record_id", "source", "file", "details"):
        df[col] = df[col].astype("object")
    return df


# ---- the educator's voice ------------------------------------------------------------------------------
# The main educator's channel: the default `voice_sources` (issue 5) and the default `source` of transcripts that
# carry no source of their own. Everything else is "other channels": they feed the style experts, not stage 3.
MAIN_EDUCATOR_SOURCE = "Healing Minds with Dr. Lena Hart"
DEFAULT_VOICE_SOURCES = (MAIN_EDUCATOR_SOURCE,)
VOICE_SOURCES_ENV_VAR = "PIXEL_VOICE_SOURCES"


def configured_voice_sources(voice_sources: Sequence[str] | None = None) -> tuple[str, ...]:
    """The educator's voice channels: the asset setting when given, else PIXEL_VOICE_SOURCES (a JSON list, or one
    channel name), else the main educator's channel. Curation and splits both resolve it here, so one variable
    changes both."""
    if voice_sources:
        return tuple(voice_sources)
    raw = os.environ.get(VOICE_SOURCES_ENV_VAR, "").strip()
    if not raw:
        return DEFAULT_VOICE_SOURCES
    if raw.startswith("["):
        parsed = json.loads(raw)
        if not isinstance(parsed, list) or not all(isinstance(s, str) and s for s in parsed):
            raise ValueError(f"{VOICE_SOURCES_ENV_VAR} must be a JSON list of channel names, got {raw!r}")
        return tuple(parsed)
    return (raw,)
