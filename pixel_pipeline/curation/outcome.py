"""What curation hands back: kept rows, one reject row per dropped row (every fired rule's reason, all scores) and
the report (counts per rule and source, examples, score quantiles, PII and crisis counts)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pixel_pipeline.curation import pii, quality, shaping
from pixel_pipeline.curation.rules import Decisions
from pixel_pipeline.curation.text import snippet
from pixel_pipeline.core.records import reject_row


@dataclass
class CurationOutcome:
    kept: pd.DataFrame
    rejects: pd.DataFrame
    report: dict


def reject_rows(
    df: pd.DataFrame, judged: Mapping[str, pd.DataFrame], decisions: Decisions, crisis: Sequence[list[str]],
    originals: Sequence[str], stage: str, datasets: Sequence[str], id_column: str, file_column: str | None,
) -> list[dict]:
    """One reject row per rejected row, naming every rule that fired with its reason, all scores and crisis flags."""
    # columns as lists once: a cell lookup per rule and row is most of the time on a large reject set
    scores = {r: [None if pd.isna(v) else float(v) for v in f["score"].tolist()] for r, f in judged.items()}
    measures = {r: f["measures"].tolist() for r, f in judged.items()}
    reasons = {r: f["reason"].tolist() for r, f in judged.items()}
    ids, sources = df[id_column].tolist(), df["source"].tolist()
    files = df[file_column].tolist() if file_column else [None] * len(df)
    rows = []
    for i in np.flatnonzero(decisions.rejected):
        fired = decisions.fired_rules(i)
        details = {
            "scores": {r: column[i] for r, column in scores.items()},
            "measures": {r: measures[r][i] for r in fired},
            "snippet": snippet(pii.redact(originals[i])[0]),  # rejects are read by people: no PII
            "rules": fired,
            "crisis_flags": crisis[i],
        }
        rows.append(reject_row(datasets[i], ids[i], stage, [reasons[r][i] for r in fired], details, sources[i], files[i]))
    return rows


def kept_total(counts: Sequence[Counter], rejected: np.ndarray) -> Counter:
    """PII items counted over the kept rows."""
    total: Counter = Counter()
    for c, rej in zip(counts, rejected):
        if not rej:
            total.update(c)
    return total


def curation_report(df: pd.DataFrame, judged: Mapping[str, pd.DataFrame], decisions: Decisions, id_col: str,
                    pii_counts: Counter, crisis_kept: Sequence[list[str]], extra: dict) -> dict:
    rejected = decisions.rejected
    fired_lists = [decisions.fired_rules(i) for i in np.flatnonzero(rejected)]
    crisis_counts = Counter(c for flags in crisis_kept for c in flags)
    return {
        "rows_in": int(len(df)),
        "kept": int((~rejected).sum()),
        "rejected": int(rejected.sum()),
        "rejected_by_rule": {r: int(f["fired"].sum()) for r, f in judged.items()},
        "rejected_by_this_rule_only": dict(Counter(rules[0] for rules in fired_lists if len(rules) == 1)),
        "rejected_by_rule_and_source": _by_rule_and_source(df, judged),
        "by_source": _by_source(df, rejected),
        "examples": _examples(df, judged, id_col),
        "score_quantiles": _score_quantiles(judged),
        "pii_counts": dict(pii_counts),
        "crisis_counts": dict(crisis_counts),
        "crisis_rows": int(sum(1 for flags in crisis_kept if flags)),
        **extra,
    }


def _by_rule_and_source(df: pd.DataFrame, judged: Mapping[str, pd.DataFrame]) -> dict:
    out = {}
    for r, f in judged.items():
        fired = f["fired"].to_numpy(dtype=bool)
        if fired.any():
            out[r] = df.loc[fired, "source"].fillna("unknown").value_counts().to_dict()
    return out


def _by_source(df: pd.DataFrame, rejected: np.ndarray) -> list[dict]:
    by_source = (
        pd.DataFrame({"source": df["source"].fillna("unknown").to_numpy(), "rejected": rejected})
        .groupby("source")["rejected"].agg(rows_in="size", rejected="sum").reset_index()
    )
    by_source["kept"] = by_source["rows_in"] - by_source["rejected"]
    by_source["reject_rate"] = (by_source["rejected"] / by_source["rows_in"]).round(3)
    return by_source.sort_values("rows_in", ascending=False).to_dict("records")


def _examples(df: pd.DataFrame, judged: Mapping[str, pd.DataFrame], id_col: str) -> dict:
    """The first three rows each rule fired on."""
    examples = {}
    for r, f in judged.items():
        idx = np.flatnonzero(f["fired"].to_numpy(dtype=bool))[:3]
        examples[r] = [{"id": df[id_col].iat[i], "source": df["source"].iat[i], "reason": f.at[i, "reason"]} for i in idx]
    return examples


def _score_quantiles(judged: Mapping[str, pd.DataFrame]) -> dict:
    scores = {}
    for r, f in judged.items():
        s = pd.to_numeric(f["score"], errors="coerce").dropna()
        if len(s):
            scores[r] = {q: round(float(s.quantile(q)), 4) for q in (0.05, 0.5, 0.95)}
    return scores


def shaping_summary(shaped: Sequence[shaping.ShapeResult]) -> dict:
    """How many kept responses each shaping step touched (the dataset card and the asset metadata show it)."""
    n = len(shaped)
    counts = {k: sum(1 for s in shaped if getattr(s, k)) for k in quality.SHAPING_MEASURES}
    counts["first_sentence_dropped"] = sum(1 for s in shaped if any("mid-thought" in a for a in s.actions))
    counts["passage_cut"] = sum(1 for s in shaped if any("longest clean passage" in a for a in s.actions))
    counts["changed"] = sum(1 for s in shaped if s.changed)
    words_in = sum(s.original_words for s in shaped)
    return {"responses": n, **counts,
            "words_kept_share": round(sum(s.kept_words for s in shaped) / words_in, 4) if words_in else None}
