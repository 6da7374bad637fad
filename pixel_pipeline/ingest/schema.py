"""Contract conformance of the ingestion tables (docs/CONTRACTS.md): the problems found, empty when conforming."""

from __future__ import annotations

import json

import pandas as pd

from pixel_pipeline.core.ids import content_id, record_id
from pixel_pipeline.core.records import EXPERT_INDEX, STYLES
from pixel_pipeline.ingest.conversations import CONVERSATION_COLUMNS
from pixel_pipeline.ingest.segments import ORIGIN_SEGMENTS_FILE, ORIGIN_TRANSCRIPT, RAW_SEGMENT_COLUMNS
from pixel_pipeline.ingest.text import text_id

MAX_EXAMPLES = 5


def _dtype_problems(df: pd.DataFrame, schema: dict[str, str]) -> list[str]:
    problems = []
    if list(df.columns) != list(schema):
        missing = [c for c in schema if c not in df.columns]
        extra = [c for c in df.columns if c not in schema]
        problems.append(f"columns differ from the contract: missing {missing}, unexpected {extra}")
    for col, kind in schema.items():
        if col not in df.columns:
            continue
        dtype = df[col].dtype
        ok = {
            "str": pd.api.types.is_string_dtype(dtype) or dtype == object,
            "int64": pd.api.types.is_integer_dtype(dtype),
            "float64": pd.api.types.is_float_dtype(dtype),
        }[kind]
        if not ok:
            problems.append(f"column {col} has dtype {dtype}, expected {kind}")
    return problems


def _examples(series: pd.Series) -> str:
    return ", ".join(map(str, series.head(MAX_EXAMPLES).tolist()))


def raw_segments_schema_problems(df: pd.DataFrame) -> list[str]:
    problems = _dtype_problems(df, RAW_SEGMENT_COLUMNS)
    if problems or df.empty:
        return problems
    required = ["segment_id", "text", "origin", "input_file", "row_index", "source", "style_predicted", "style_confidence", "style", "expert", "word_count"]
    for col in required:
        n = int(df[col].isna().sum())
        if n:
            problems.append(f"{n} rows have a null {col}")
    wrong_id = df["segment_id"] != df["text"].map(text_id)
    if wrong_id.any():
        problems.append(f"{int(wrong_id.sum())} rows whose segment_id is not content_id(text): {_examples(df.loc[wrong_id, 'segment_id'])}")
    if df["segment_id"].duplicated().any():
        problems.append(f"{int(df['segment_id'].duplicated().sum())} duplicate segment_id values")
    conf = df["style_confidence"]
    outside = ~conf.between(0.0, 1.0)
    if outside.any():
        problems.append(f"{int(outside.sum())} style_confidence values outside [0, 1]: {_examples(conf[outside])}")
    for col, allowed in (("style_predicted", STYLES), ("style", STYLES), ("origin", (ORIGIN_SEGMENTS_FILE, ORIGIN_TRANSCRIPT))):
        bad = ~df[col].isin(allowed)
        if bad.any():
            problems.append(f"{int(bad.sum())} rows with {col} not in {allowed}: {_examples(df.loc[bad, col])}")
    bad_given = df["style_given"].notna() & ~df["style_given"].isin(STYLES)
    if bad_given.any():
        problems.append(f"{int(bad_given.sum())} rows with an unknown style_given")
    wrong_expert = df["expert"] != df["style"].map(EXPERT_INDEX)
    if wrong_expert.any():
        problems.append(f"{int(wrong_expert.sum())} rows whose expert does not match EXPERT_INDEX[style]")
    quality = df["quality"].dropna()
    if (~quality.between(0.0, 1.0)).any():
        problems.append("quality values outside [0, 1]")
    if (df["word_count"] <= 0).any():
        problems.append("rows with word_count <= 0")
    return problems


def conversation_schema_problems(df: pd.DataFrame, dataset: str) -> list[str]:
    problems = _dtype_problems(df, CONVERSATION_COLUMNS)
    if problems or df.empty:
        return problems
    for col in CONVERSATION_COLUMNS:
        n = int(df[col].isna().sum())
        if n:
            problems.append(f"{n} rows have a null {col}")
    if problems:
        return problems
    wrong_dataset = df["dataset"] != dataset
    if wrong_dataset.any():
        problems.append(f"{int(wrong_dataset.sum())} rows with dataset other than {dataset!r}")
    if df["record_id"].duplicated().any():
        problems.append(f"{int(df['record_id'].duplicated().sum())} duplicate record_id values")
    bad_json, bad_id, bad_turns, bad_roles = [], [], [], []
    for row in df[["record_id", "conversation", "n_turns"]].itertuples(index=False):
        try:
            doc = json.loads(row.conversation)
            turns = doc["conversation"]
            assert isinstance(doc["metadata"], dict)
        except (ValueError, KeyError, TypeError, AssertionError):
            bad_json.append(row.record_id)
            continue
        if record_id(turns) != row.record_id:
            bad_id.append(row.record_id)
        if len(turns) != row.n_turns:
            bad_turns.append(row.record_id)
        if any(t.get("role") not in ("client", "therapist") for t in turns) or turns[-1].get("role") != "therapist":
            bad_roles.append(row.record_id)
    for label, ids in (
        ("conversation is not the standard format JSON", bad_json),
        ("record_id is not record_id(turns)", bad_id),
        ("n_turns differs from the turns", bad_turns),
        ("roles other than client/therapist or no final therapist turn", bad_roles),
    ):
        if ids:
            problems.append(f"{len(ids)} rows: {label}: {', '.join(ids[:MAX_EXAMPLES])}")
    wrong_q = df["question_id"] != df["prompt"].map(content_id)
    if wrong_q.any():
        problems.append(f"{int(wrong_q.sum())} rows whose question_id is not content_id(prompt)")
    empty = (df["prompt"].str.strip() == "") | (df["response"].str.strip() == "")
    if empty.any():
        problems.append(f"{int(empty.sum())} rows with an empty prompt or response")
    return problems
