"""`exports/rejected.jsonl` from every stage's rejects, and the whole-chain accounting of docs/CONTRACTS.md.

For every dataset: rows in = rows exported + rows rejected, where
- rows in = the ingestion tables (raw_segments, counseling_conversations, cot_conversations) plus the rows their
  own stages rejected (unreadable rows, exact repeats that share an id with a kept row);
- rows exported = non-augmented lines of `messages/{train,validation,test}.jsonl`;
- rows rejected = lines of `rejected.jsonl` (every `rejects/*.parquet`).
The comparison is made per id (multiset), so a row lost in one place and a row duplicated elsewhere cannot cancel.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from pixel_pipeline.core.records import DATASET_COT, DATASET_COUNSELING, DATASET_SEGMENTS, DATASETS, REJECT_COLUMNS, id_column
from pixel_pipeline.splits.formats import clean

# Asset name -> dataset of its rows, for the ingestion tables that define "rows in".
INGESTION_TABLES = {
    "raw_segments": DATASET_SEGMENTS,
    "counseling_conversations": DATASET_COUNSELING,
    "cot_conversations": DATASET_COT,
}
DEFAULT_INGESTION_STAGES = tuple(INGESTION_TABLES)
# Pipeline order, so rejected.jsonl reads from the first stage to the last; unknown stages go last, by name.
STAGE_ORDER = (
    "raw_segments", "counseling_conversations", "cot_conversations", "audited_schema", "curated_segments",
    "curated_conversations", "generated_prompts", "deduplicated_pairs", "review_verdicts", "splits",
)
NO_ID = "<no id>"


def read_all_rejects(rejects_dir: Path) -> pd.DataFrame:
    """Every `rejects/*.parquet` concatenated (REJECT_COLUMNS), in pipeline order."""
    frames = []
    for path in sorted(Path(rejects_dir).glob("*.parquet")):
        df = pd.read_parquet(path)
        missing = set(REJECT_COLUMNS) - set(df.columns)
        if missing:
            raise ValueError(f"{path} does not follow the rejects schema: missing {sorted(missing)}")
        df = df[REJECT_COLUMNS].copy()
        df["dropped_by"] = df["dropped_by"].fillna(path.stem)
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=REJECT_COLUMNS)
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=REJECT_COLUMNS)
    out = pd.concat(frames, ignore_index=True)
    rank = {s: i for i, s in enumerate(STAGE_ORDER)}
    out["_order"] = [(rank.get(s, len(rank)), s) for s in out["dropped_by"].astype(str)]
    out = out.sort_values("_order", kind="stable").drop(columns="_order").reset_index(drop=True)
    return out


def _item_id(dataset: Any, segment_id: Any, record_id: Any) -> str | None:
    value = clean(segment_id) if dataset == DATASET_SEGMENTS else clean(record_id)
    return None if value is None or value == "" else str(value)


def _redacted(value: Any) -> Any:
    """Every string inside a reject's details with PII replaced by its typed placeholder (snippets of raw rows)."""
    from pixel_pipeline.curation import pii

    if isinstance(value, str):
        return pii.redact(value)[0]
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def rejected_lines(rejects: pd.DataFrame) -> list[dict[str, Any]]:
    """One JSON object per dropped input record: dataset, its id key, stage, reasons, then details/source/file.
    `rejected.jsonl` sits beside the exports, so the details' snippets of raw rows are redacted like the pairs."""
    lines = []
    for row in rejects.itertuples(index=False):
        dataset = str(row.dataset)
        key = id_column(dataset) if dataset in DATASETS else "segment_id"
        details: Any = clean(row.details)
        if isinstance(details, str):
            try:
                details = json.loads(details)
            except json.JSONDecodeError:
                pass
        reasons = clean(row.reasons)
        lines.append(
            {
                "dataset": dataset,
                key: _item_id(dataset, row.segment_id, row.record_id),
                "stage": str(row.dropped_by),  # the shared contract's name in rejected.jsonl
                "reasons": [str(r) for r in reasons] if isinstance(reasons, list) else [str(reasons)],
                "details": _redacted(details),
                "source": clean(row.source),
                "file": clean(row.file),
            }
        )
    return lines


def input_counts(tables: Mapping[str, pd.DataFrame | None], ingestion_rejects: pd.DataFrame) -> dict[str, Counter]:
    """dataset -> Counter(id) of every input row (kept by ingestion or rejected by it)."""
    counts: dict[str, Counter] = {d: Counter() for d in DATASETS}
    for name, df in tables.items():
        if df is None or df.empty:
            continue
        default = INGESTION_TABLES.get(name)
        datasets = df["dataset"] if "dataset" in df.columns else pd.Series(default, index=df.index)
        for dataset, sid, rid in zip(
            datasets, df.get("segment_id", pd.Series(None, index=df.index)),
            df.get("record_id", pd.Series(None, index=df.index)),
        ):
            counts.setdefault(str(dataset), Counter())[_item_id(dataset, sid, rid) or NO_ID] += 1
    for row in ingestion_rejects.itertuples(index=False):
        counts.setdefault(str(row.dataset), Counter())[_item_id(row.dataset, row.segment_id, row.record_id) or NO_ID] += 1
    return counts


def exported_counts(message_files: Iterable[Path]) -> dict[str, Counter]:
    counts: dict[str, Counter] = {d: Counter() for d in DATASETS}
    for path in message_files:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                meta = json.loads(line)["metadata"]
                if meta.get("augmented"):
                    continue
                dataset = meta["dataset"]
                counts.setdefault(dataset, Counter())[_item_id(dataset, meta.get("segment_id"), meta.get("record_id")) or NO_ID] += 1
    return counts


def rejected_counts(lines: Sequence[Mapping[str, Any]]) -> dict[str, Counter]:
    counts: dict[str, Counter] = {d: Counter() for d in DATASETS}
    for line in lines:
        dataset = line["dataset"]
        counts.setdefault(dataset, Counter())[
            _item_id(dataset, line.get("segment_id"), line.get("record_id")) or NO_ID
        ] += 1
    return counts


def accounting(
    inputs: Mapping[str, Counter], exported: Mapping[str, Counter], rejected: Mapping[str, Counter], max_examples: int = 10
) -> dict[str, Any]:
    """Per dataset: totals, and the ids whose input count differs from exported + rejected."""
    report: dict[str, Any] = {}
    for dataset in sorted(set(inputs) | set(exported) | set(rejected)):
        cin, cex, crej = inputs.get(dataset, Counter()), exported.get(dataset, Counter()), rejected.get(dataset, Counter())
        mismatched = []
        for item in sorted(set(cin) | set(cex) | set(crej)):
            if cin[item] != cex[item] + crej[item]:
                mismatched.append({"id": item, "rows_in": cin[item], "exported": cex[item], "rejected": crej[item]})
        report[dataset] = {
            "rows_in": int(sum(cin.values())),
            "exported": int(sum(cex.values())),
            "rejected": int(sum(crej.values())),
            "balanced": not mismatched,
            "mismatched_ids": len(mismatched),
            "lost": sum(1 for m in mismatched if m["rows_in"] > m["exported"] + m["rejected"]),
            "unexplained": sum(1 for m in mismatched if m["rows_in"] < m["exported"] + m["rejected"]),
            "examples": mismatched[:max_examples],
        }
    return report


def chain_accounting(
    ingestion_tables: Mapping[str, pd.DataFrame | None],
    rejects: pd.DataFrame,
    ingestion_stages: Iterable[str],
    message_files: Iterable[Path],
    rejected: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The whole chain per dataset: rows in (ingestion tables + the rejects of `ingestion_stages`) against rows
    exported (`message_files`) + rows rejected (rejected.jsonl lines)."""
    ingestion_rejects = rejects[rejects["dropped_by"].isin(list(ingestion_stages))]
    return accounting(
        input_counts(ingestion_tables, ingestion_rejects), exported_counts(message_files), rejected_counts(rejected)
    )


ACCOUNTING_COLUMNS = ("rows_in", "exported", "rejected", "lost", "unexplained")


def accounting_rows(report: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per dataset of the accounting report, for the metadata tables."""
    return [{"dataset": d, **{k: r[k] for k in ACCOUNTING_COLUMNS}} for d, r in report.items()]
