"""Human review loop: a stratified sample for reviewers, and their verdicts read back with agreement figures.

The sample holds `per_style` kept segment pairs per style (stratified over source x quality band, round-robin
across strata so small sources are seen), `per_conversation_dataset` conversation pairs per dataset, and
`rejected_per_style` rows the filters rejected, so reviewer / filter agreement is measured in both directions.
Reviewers are not shown the pipeline's decision (blind review); it is looked up when verdicts come back.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from pixel_pipeline.core.records import DATASET_SEGMENTS, DATASETS, STYLES

REVIEW_COLUMNS = ["dataset", "segment_id", "record_id", "style", "source", "file", "prompt", "response", "quality",
                  "alignment", "quality_classifier", "shaping", "scores", "crisis_flags", "pii_counts", "verdict", "reviewer", "note"]
VERDICT_COLUMNS = ["dataset", "segment_id", "record_id", "verdict", "reviewer", "note"]
VERDICTS = ("accept", "reject")
# OWASP CSV injection: a cell starting with one of these is run as a formula by spreadsheet programs.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def escape_formula(value):
    """A text cell that a spreadsheet would run as a formula, prefixed with `'` so it is shown as text (OWASP)."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) else value


def spreadsheet_safe(df: pd.DataFrame) -> pd.DataFrame:
    """Every text cell escaped with escape_formula (for the CSV reviewers open; the Parquet keeps the texts)."""
    return df.apply(lambda col: col.map(escape_formula) if col.dtype == object or pd.api.types.is_string_dtype(col) else col)


def with_filter_scores(pairs: pd.DataFrame, curated_segments: pd.DataFrame | None) -> pd.DataFrame:
    """The pairs with the curated segments' `score_<rule>` columns, so reviewers see what the filters measured."""
    if curated_segments is None or not len(pairs):
        return pairs
    score_cols = [c for c in curated_segments.columns if c.startswith("score_")]
    scores = curated_segments[["segment_id", *score_cols]].drop_duplicates("segment_id")
    return pairs.merge(scores, on="segment_id", how="left")


def _stratified(df: pd.DataFrame, k: int, strata: list[str], seed: int) -> pd.DataFrame:
    """Up to k rows, taking one row per stratum in turn (random order inside each stratum, seeded)."""
    if len(df) <= k:
        return df
    rng = np.random.default_rng(seed)
    df = df.assign(_r=rng.random(len(df)))
    df = df.sort_values("_r")
    df["_rank"] = df.groupby(strata, dropna=False).cumcount()
    return df.sort_values(["_rank", "_r"]).head(k).drop(columns=["_r", "_rank"])


def _quality_band(q: pd.Series) -> pd.Series:
    return pd.cut(pd.to_numeric(q, errors="coerce"), [-0.01, 0.5, 0.7, 0.85, 1.01],
                  labels=["<0.5", "0.5-0.7", "0.7-0.85", ">=0.85"]).astype(str)


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame | None:
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else None


def _kept_sample(pairs: pd.DataFrame, per_style: int, per_conversation_dataset: int, seed: int) -> pd.DataFrame:
    """Kept pairs: per style over source x quality band, then per conversation dataset over sources."""
    seg = pairs[pairs["dataset"] == DATASET_SEGMENTS].assign(_band=lambda d: _quality_band(d["quality"]))
    parts = [_stratified(seg[seg["style"] == style], per_style, ["source", "_band"], seed + i)
             for i, style in enumerate(STYLES)]
    for j, ds in enumerate(d for d in DATASETS if d != DATASET_SEGMENTS):
        parts.append(_stratified(pairs[pairs["dataset"] == ds], per_conversation_dataset, ["source"], seed + 10 + j))
    sample = _concat(parts)
    sample = pairs.iloc[0:0] if sample is None else sample
    return sample.drop(columns=[c for c in ("_band",) if c in sample])


def _scores_json(sample: pd.DataFrame) -> list[str]:
    """Per row: quality, alignment and every `score_<rule>` the filters measured, as JSON for the sheet."""
    score_cols = [c for c in sample.columns if c.startswith("score_")]
    return [
        json.dumps({"quality": _num(r.get("quality")), "alignment": _num(r.get("alignment")),
                    **{c.removeprefix("score_"): _num(r.get(c)) for c in score_cols if _num(r.get(c)) is not None}})
        for r in sample.to_dict("records")
    ]


def _rejected_sheet(rejected_segments: pd.DataFrame, rejected_per_style: int, seed: int) -> pd.DataFrame | None:
    """Filter-rejected segments per style over sources, as sheet rows without a prompt (None when there are none)."""
    if not len(rejected_segments) or rejected_per_style <= 0:
        return None
    rej = _concat([_stratified(rejected_segments[rejected_segments["style"] == style], rejected_per_style,
                               ["source"], seed + 20 + i) for i, style in enumerate(STYLES)])
    if rej is None:
        return None
    return pd.DataFrame({
        "dataset": DATASET_SEGMENTS, "segment_id": rej["segment_id"], "record_id": None, "style": rej["style"],
        "source": rej["source"], "file": rej["file"], "prompt": "", "response": rej["text"],
        "quality": rej.get("quality"), "alignment": np.nan,
        "scores": [json.dumps(json.loads(d).get("scores", {})) if isinstance(d, str) else "{}" for d in rej["details"]],
        "crisis_flags": [json.loads(d).get("crisis_flags", []) if isinstance(d, str) else [] for d in rej["details"]],
        "pii_counts": "{}",
    })


def build_sample(pairs: pd.DataFrame, rejected_segments: pd.DataFrame, per_style: int = 50,
                 per_conversation_dataset: int = 25, rejected_per_style: int = 5, seed: int = 0) -> pd.DataFrame:
    """The review sheet (REVIEW_COLUMNS), verdict / reviewer / note empty. `score_<rule>` columns on `pairs`, when
    present, are shown in the sheet's scores.

    `rejected_segments`: rejected segment rows with columns segment_id, style, source, file, text, reasons, details.
    """
    pairs = pairs[~pairs.get("augmented", pd.Series(False, index=pairs.index)).astype(bool)]
    sample = _kept_sample(pairs, per_style, per_conversation_dataset, seed)
    sample["scores"] = _scores_json(sample)
    rejected = _rejected_sheet(rejected_segments, rejected_per_style, seed)
    if rejected is not None:
        sample = pd.concat([sample, rejected], ignore_index=True)
    sample["crisis_flags"] = [", ".join(list(f)) if isinstance(f, (list, tuple, np.ndarray)) else (f or "")
                              for f in sample.get("crisis_flags", pd.Series([], dtype=object))]
    for col in ("verdict", "reviewer", "note"):
        sample[col] = ""
    return sample.reindex(columns=REVIEW_COLUMNS).reset_index(drop=True)


def _num(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if np.isnan(f) else round(f, 4)


def sample_html(sample: pd.DataFrame, title: str = "Curation review sample") -> str:
    """A self-contained page: one card per pair, with scores, flags and an empty verdict field."""
    cards = []
    for k, r in sample.iterrows():
        rid = r["segment_id"] if isinstance(r["segment_id"], str) and r["segment_id"] else r["record_id"]
        flags = f'<span class="flag">crisis: {html.escape(str(r["crisis_flags"]))}</span>' if r["crisis_flags"] else ""
        cards.append(
            f'<div class="card"><div class="meta">#{k + 1} · {html.escape(str(r["dataset"]))} · '
            f'<code>{html.escape(str(rid))}</code> · {html.escape(str(r["style"] or ""))} · '
            f'{html.escape(str(r["source"] or ""))} · {html.escape(str(r["file"] or ""))} {flags}</div>'
            f'<div class="q"><b>Prompt</b><p>{html.escape(str(r["prompt"] or "(no prompt: segment rejected before prompting)"))}</p></div>'
            f'<div class="a"><b>Response</b><p>{html.escape(str(r["response"] or ""))}</p></div>'
            f'<div class="scores">scores: <code>{html.escape(str(r["scores"]))}</code> · PII redacted: '
            f'<code>{html.escape(str(r["pii_counts"]))}</code></div>'
            f'<div class="verdict">verdict: accept / reject ______ &nbsp; note: ____________________</div></div>'
        )
    style = ("body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222}"
             ".card{border:1px solid #ccc;border-radius:8px;padding:12px 16px;margin:14px 0}"
             ".meta{font-size:12px;color:#555}.flag{background:#fde2e2;color:#900;padding:1px 6px;border-radius:4px}"
             ".q p{background:#eef4ff;padding:8px;border-radius:6px}.a p{background:#f6f6f6;padding:8px;border-radius:6px;"
             "white-space:pre-wrap}.scores{font-size:12px}.verdict{margin-top:6px;font-size:13px;color:#333}")
    intro = ("<p>Fill in the <b>verdict</b> column (accept / reject), your name in <b>reviewer</b> and an optional "
             "<b>note</b> in <code>review_sample.csv</code>, then save it under <code>PIXEL_DATA_DIR/review/</code> "
             "and materialize <code>review_verdicts</code>. Rejected pairs are excluded from the splits.</p>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{style}</style>"
            f"</head><body><h1>{html.escape(title)}</h1>{intro}<p>{len(sample)} items.</p>{''.join(cards)}</body></html>")


def read_verdicts(files: Iterable[Path]) -> tuple[pd.DataFrame, list[dict]]:
    """Verdict rows (VERDICT_COLUMNS) from filled-in review CSVs, and the problems found (bad rows, bad files).

    Rows with an empty verdict are not reviewed yet and are skipped (counted as problems of kind `unreviewed`).
    """
    rows, problems = [], []
    for path in sorted(files):
        try:
            df = pd.read_csv(path, dtype=str, keep_default_na=False)
        except Exception as exc:  # unreadable file: report, continue with the others
            problems.append({"file": path.name, "row": None, "problem": f"unreadable CSV: {exc}"})
            continue
        missing = [c for c in ("dataset", "verdict") if c not in df.columns]
        if missing or not ({"segment_id", "record_id"} & set(df.columns)):
            problems.append({"file": path.name, "row": None,
                             "problem": f"missing columns {missing or ['segment_id/record_id']}"})
            continue
        for i, r in df.iterrows():
            verdict = str(r.get("verdict", "")).strip().lower()
            sid, rid = str(r.get("segment_id", "")).strip(), str(r.get("record_id", "")).strip()
            if not verdict:
                problems.append({"file": path.name, "row": int(i) + 2, "problem": "unreviewed"})
                continue
            if verdict not in VERDICTS:
                problems.append({"file": path.name, "row": int(i) + 2, "problem": f"verdict {verdict!r} not in {VERDICTS}"})
                continue
            dataset = str(r.get("dataset", "")).strip()
            if dataset not in DATASETS or not (sid or rid):
                problems.append({"file": path.name, "row": int(i) + 2, "problem": "unknown dataset or no id"})
                continue
            rows.append({"dataset": dataset, "segment_id": (sid or None) if dataset == DATASET_SEGMENTS else None,
                         "record_id": (rid or None) if dataset != DATASET_SEGMENTS else None, "verdict": verdict,
                         "reviewer": str(r.get("reviewer", "")).strip() or None, "note": str(r.get("note", "")).strip() or None})
    out = pd.DataFrame(rows, columns=VERDICT_COLUMNS)
    for c in VERDICT_COLUMNS:
        out[c] = out[c].astype("object")
    return out, problems


def agreement(verdicts: pd.DataFrame, kept_ids: set[str], rejected_ids: set[str]) -> dict:
    """Reviewer vs filter agreement on reviewed ids the pipeline decided about (accept = kept, reject = rejected)."""
    if verdicts.empty:
        return {"reviewed": 0}
    ids = [s if isinstance(s, str) else r for s, r in zip(verdicts["segment_id"], verdicts["record_id"])]
    auto = ["accept" if i in kept_ids else "reject" if i in rejected_ids else None for i in ids]
    frame = pd.DataFrame({"id": ids, "reviewer_verdict": verdicts["verdict"].to_numpy(), "filter_decision": auto})
    known = frame.dropna(subset=["filter_decision"])
    out = {"reviewed": int(len(frame)), "with_filter_decision": int(len(known)),
           "unknown_ids": int(frame["filter_decision"].isna().sum())}
    if known.empty:
        return out
    agree = (known["reviewer_verdict"] == known["filter_decision"])
    confusion = pd.crosstab(known["filter_decision"], known["reviewer_verdict"]).reindex(
        index=list(VERDICTS), columns=list(VERDICTS), fill_value=0)
    out.update({
        "agreement": round(float(agree.mean()), 4),
        "confusion (rows: filter, columns: reviewer)": confusion.to_dict(),
        "reviewer_rejects_filter_kept": int(((known["filter_decision"] == "accept") & (known["reviewer_verdict"] == "reject")).sum()),
        "reviewer_accepts_filter_rejected": int(((known["filter_decision"] == "reject") & (known["reviewer_verdict"] == "accept")).sum()),
    })
    if known["reviewer_verdict"].nunique() > 1 or known["filter_decision"].nunique() > 1:
        from sklearn.metrics import cohen_kappa_score

        kappa = cohen_kappa_score(known["filter_decision"], known["reviewer_verdict"], labels=list(VERDICTS))
        out["cohen_kappa"] = None if np.isnan(kappa) else round(float(kappa), 4)
    return out
