"""Curation's asset checks and metadata as plain data: verdicts and dicts the Dagster layer only wraps.

Every check the curation assets report is built here from the stage's outcome (kept rows, rejects, report), so tests
call the builders directly with tiny hand-made inputs; `defs/curation.py` reads, calls the pure stage, writes, and
returns `materialize_result(<stage>_metadata(...), <stage>_verdicts(...))`.

The metadata is what a user scans first in the UI (issue 16: row count, the files written, 3-5 headline numbers, at
most three tables / plots); everything else the stage measured goes to its report JSON (`<stage>_report` / the
stage's own report), so nothing is lost by keeping the metadata short.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pixel_pipeline.core import plots
from pixel_pipeline.core.records import DATASET_SEGMENTS, STYLES
from pixel_pipeline.core.verdicts import WARN, Verdict, json_value, md, path, table
from pixel_pipeline.curation import balance, dedup
from pixel_pipeline.curation.curate import CONVERSATION_RULES, SEGMENT_RULES, CurationOutcome
from pixel_pipeline.curation.pairs import PairsOutcome

BY_SOURCE_COLUMNS = ["source", "rows_in", "kept", "rejected", "reject_rate"]
SCORE_HISTOGRAMS = {  # name -> (score column of the kept rows, title, x label)
    "off_domain_margin": ("score_off_domain", "off_domain margin of kept segments", "domain - off-topic similarity"),
    "quality_classifier_score": ("score_quality_classifier", "quality classifier P(reject) of kept segments",
                                 "P(reader rejects)"),
}
PLOTTED_SCORES = ("off_domain_margin",)  # the metadata's histogram; report.json has every kept score's quantiles
KEPT_SCORE_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


# ---- checks shared by the curation stages -----------------------------------------------------------------------
def accounting_verdict(check_name: str, rows_in: int, input_ids: Collection, kept_ids: Sequence,
                       rejected_ids: Sequence) -> Verdict:
    """Rows in = kept + rejected, and no kept or rejected id that the input did not have."""
    kept, rejected = len(kept_ids), len(rejected_ids)
    both = set(kept_ids) & set(rejected_ids)
    unknown = (set(kept_ids) | set(rejected_ids)) - set(input_ids)
    ok = rows_in == kept + rejected and not unknown
    return Verdict(
        check_name, ok,
        f"{rows_in} rows in = {kept} kept + {rejected} rejected" if ok else
        f"accounting broken: {rows_in} in vs {kept} kept + {rejected} rejected; {len(unknown)} ids not in the input",
        {"rows_in": rows_in, "kept": kept, "rejected": rejected, "ids_kept_and_rejected": len(both),
         "ids_not_in_input": json_value(sorted(unknown)[:20])},
    )


def crisis_share_verdict(check_name: str, crisis_rows: int, rows: int, max_share: float) -> Verdict:
    """Warns when many kept rows carry crisis flags (they are kept, but training and review treat them apart)."""
    share = crisis_rows / rows if rows else 0.0
    return Verdict(
        check_name, share <= max_share,
        f"{crisis_rows}/{rows} kept rows ({share:.1%}) carry crisis flags (warn above {max_share:.0%}); "
        "they are kept and marked for special handling in training and review",
        {"crisis_rows": crisis_rows, "rows": rows, "share": round(share, 4), "max_share": max_share},
        severity=WARN,
    )


def _ids(frame: pd.DataFrame, column: str) -> list:
    return frame[column].tolist() if column in frame else []


def _rule_counts(report: Mapping, rules: Iterable[str]) -> dict:
    rows = [{"rule": r, "fired": report["rejected_by_rule"].get(r, 0),
             "only_reason": report["rejected_by_this_rule_only"].get(r, 0),
             "by_source": ", ".join(f"{s}: {n}" for s, n in report["rejected_by_rule_and_source"].get(r, {}).items())}
            for r in rules]
    return table(rows, ["rule", "fired", "only_reason", "by_source"])


def _outcome_metadata(rows_in: int, outcome: CurationOutcome, files: Mapping[str, Path]) -> dict:
    """Counts and files every curation stage reports: `files` holds the `path`, `rejects_path` and `report_path` written."""
    kept = len(outcome.kept)
    return {"dagster/row_count": kept, "rows_in": rows_in, "kept": kept, "rejected": len(outcome.rejects),
            **{key: path(files[key]) for key in ("path", "rejects_path", "report_path")}}


def outcome_report(settings: Mapping, outcome: CurationOutcome, **extra: Any) -> dict:
    """The report.json of curated_segments / curated_conversations: the settings, the stage's report (per rule, per
    source, examples, PII and crisis counts, score quantiles, caches, ...) and what the asset adds (`extra`)."""
    return {"settings": dict(settings), **outcome.report, **extra}


# ---- curated_segments ---------------------------------------------------------------------------------------------
def main_voice_verdict(by_source: Sequence[Mapping] | pd.DataFrame, voice_sources: Sequence[str]) -> Verdict:
    """Fails when no voice source has segments, or one loses all of them (a rule gone wrong, not a bad corpus)."""
    by_source = pd.DataFrame(by_source)
    voice = by_source[by_source["source"].isin(voice_sources)] if len(by_source) else by_source
    all_rejected = voice[voice["kept"] == 0] if len(voice) else voice
    return Verdict(
        "main_voice_not_all_rejected", bool(len(voice)) and all_rejected.empty,
        "no voice source has segments here: stage 3 would be empty" if not len(voice) else
        "every main-voice source keeps some segments" if all_rejected.empty else
        f"all segments rejected for {', '.join(all_rejected['source'])}: check the thresholds",
        {"voice_sources": json_value(voice_sources), "voice_reject_rates": table(voice)},
    )


def curated_segments_verdicts(raw: pd.DataFrame, outcome: CurationOutcome, voice_sources: Sequence[str],
                              max_crisis_share: float) -> list[Verdict]:
    kept, rejects, report = outcome.kept, outcome.rejects, outcome.report
    return [
        accounting_verdict("row_accounting", len(raw), _ids(raw, "segment_id"), _ids(kept, "segment_id"),
                           _ids(rejects, "segment_id")),
        main_voice_verdict(report["by_source"], voice_sources),
        crisis_share_verdict("curated_segments_crisis_share", report["crisis_rows"], len(kept), max_crisis_share),
    ]


def _kept_scores(kept: pd.DataFrame, column: str) -> list[float]:
    return pd.to_numeric(kept[column], errors="coerce").dropna().tolist() if column in kept and len(kept) else []


def score_histograms(kept: pd.DataFrame, keys: Sequence[str] = PLOTTED_SCORES) -> dict:
    """Histograms of the kept segments' scores named in `keys` (SCORE_HISTOGRAMS), where any were scored."""
    out = {}
    for key in keys:
        column, title, xlabel = SCORE_HISTOGRAMS[key]
        values = _kept_scores(kept, column)
        if values:
            out[key] = md(plots.histogram_markdown(values, title, xlabel))
    return out


def kept_score_quantiles(kept: pd.DataFrame) -> dict:
    """Rows scored and quantiles of each SCORE_HISTOGRAMS score over the kept segments (the report's numbers for
    the histograms; `report["score_quantiles"]` is over every judged row)."""
    out = {}
    for key, (column, _title, _xlabel) in SCORE_HISTOGRAMS.items():
        values = pd.Series(_kept_scores(kept, column), dtype=float)
        if len(values):
            out[key] = {"rows": int(len(values)),
                        **{str(q): round(float(values.quantile(q)), 4) for q in KEPT_SCORE_QUANTILES}}
    return out


def curated_segments_report(settings: Mapping, outcome: CurationOutcome, embedding_cache: Mapping) -> dict:
    """report.json of curated_segments: the stage's report, the embedding cache's hits and the kept scores."""
    return outcome_report(settings, outcome, embedding_cache=dict(embedding_cache),
                          kept_score_quantiles=kept_score_quantiles(outcome.kept))


def curated_segments_metadata(rows_in: int, outcome: CurationOutcome, files: Mapping[str, Path]) -> dict:
    """Counts, files, the per-rule and per-source tables and the off_domain histogram; the rest (examples, PII and
    crisis counts, shaping, caches, quantiles, ...) is in report.json (curated_segments_report)."""
    report = outcome.report
    return {
        **_outcome_metadata(rows_in, outcome, files),
        "reject_reasons": _rule_counts(report, SEGMENT_RULES),
        "by_source": table(pd.DataFrame(report["by_source"]), BY_SOURCE_COLUMNS),
        **score_histograms(outcome.kept),
    }


# ---- curated_conversations ----------------------------------------------------------------------------------------
def curated_conversations_verdicts(conversations: pd.DataFrame, outcome: CurationOutcome,
                                   max_crisis_share: float) -> list[Verdict]:
    kept, rejects, report = outcome.kept, outcome.rejects, outcome.report
    return [
        accounting_verdict("row_accounting", len(conversations), _ids(conversations, "record_id"),
                           _ids(kept, "record_id"), _ids(rejects, "record_id")),
        crisis_share_verdict("curated_conversations_crisis_share", report["crisis_rows"], len(kept), max_crisis_share),
    ]


def curated_conversations_metadata(rows_in: int, outcome: CurationOutcome, files: Mapping[str, Path]) -> dict:
    """Counts, files and the per-dataset and per-rule tables; by_source, examples, PII and crisis counts are in
    report.json (outcome_report)."""
    report = outcome.report
    return {
        **_outcome_metadata(rows_in, outcome, files),
        "by_dataset": table(report.get("by_dataset", [])),
        "reject_reasons": _rule_counts(report, CONVERSATION_RULES),
    }


# ---- deduplicated_pairs -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PairLimits:
    """The deduplicated_pairs checks' thresholds (DeduplicatedPairsConfig holds the defaults)."""

    max_remaining_duplicate_rate: float
    min_expert_count: int
    max_expert_ratio: float
    balance_policy: str
    max_crisis_share: float


@dataclass(frozen=True)
class PairFigures:
    """What the checks measure on the kept pairs (augmented copies aside, except in the expert counts)."""

    remaining: dict  # dedup.remaining_duplicate_rate of the original responses
    expert_counts: pd.DataFrame  # balance.expert_counts
    crisis_rows: int
    original_rows: int


def measure_pairs(pairs: pd.DataFrame, near: dedup.NearDupSettings) -> PairFigures:
    original = pairs[~pairs["augmented"].astype(bool)]
    return PairFigures(
        remaining=dedup.remaining_duplicate_rate(original["response"].fillna("").tolist(), near),
        expert_counts=balance.expert_counts(pairs),
        crisis_rows=int(original["crisis_flags"].apply(lambda f: len(f) > 0 if f is not None else False).sum()),
        original_rows=len(original),
    )


def pairs_accounting_verdict(accounting: Mapping[str, int]) -> Verdict:
    """Candidates = kept + duplicates + capped, and curated segments = with prompt + prompt-stage rejects + missing."""
    acc = accounting
    segments_ok = acc["curated_segments_in"] == (acc["segments_with_prompt"] + acc["segments_rejected_by_prompts_stage"]
                                                 + acc["segments_missing_prompt"])
    pairs_ok = acc["pair_candidates"] == acc["kept"] + acc["rejected_duplicates"] + acc["rejected_expert_cap"]
    return Verdict(
        "row_accounting", segments_ok and pairs_ok,
        f"{acc['pair_candidates']} candidate pairs = {acc['kept']} kept + {acc['rejected_duplicates']} "
        f"duplicates + {acc['rejected_expert_cap']} capped; {acc['curated_segments_in']} curated segments "
        f"= {acc['segments_with_prompt']} with prompt + {acc['segments_rejected_by_prompts_stage']} rejected "
        f"by generated_prompts + {acc['segments_missing_prompt']} missing_prompt",
        {k: int(v) for k, v in acc.items()},
    )


def remaining_duplicates_verdict(remaining: Mapping[str, Any], max_rate: float) -> Verdict:
    return Verdict(
        "max_remaining_duplicate_rate", remaining["rate"] <= max_rate,
        f"{remaining['rows_with_duplicate']}/{remaining['rows']} kept responses still have an exact or "
        f"near duplicate (max rate {max_rate})",
        {**remaining, "max_rate": max_rate},
    )


def min_expert_count_verdict(counts: pd.DataFrame, min_expert_count: int) -> Verdict:
    """Warns when an expert has too few segment pairs; no segment pairs at all is nothing to judge."""
    short = counts[counts["count"] < min_expert_count]
    total = int(counts["count"].sum())
    return Verdict(
        "min_expert_count", short.empty or total == 0,
        "no segment pairs at all: nothing to check" if total == 0 else
        "every expert has enough pairs" if short.empty else
        f"experts under {min_expert_count} pairs: {', '.join(short['style'])}",
        {"counts": table(counts), "min_expert_count": min_expert_count},
        severity=WARN,
    )


def expert_ratio(counts: pd.DataFrame) -> float:
    """Largest / smallest count among the experts that have any pairs (1.0 with fewer than two)."""
    present = counts[counts["count"] > 0]
    return float(present["count"].max() / present["count"].min()) if len(present) > 1 else 1.0


def expert_balance_verdict(counts: pd.DataFrame, max_ratio: float, policy: str, balance_summary: Mapping) -> Verdict:
    ratio = expert_ratio(counts)
    return Verdict(
        "expert_balance", ratio <= max_ratio,
        f"largest / smallest expert = {ratio:.2f} (warn above {max_ratio}); policy {policy}",
        {"counts": table(counts), "ratio": round(ratio, 3), "balance": json_value(balance_summary)},
        severity=WARN,
    )


def deduplicated_pairs_verdicts(outcome: PairsOutcome, figures: PairFigures, limits: PairLimits) -> list[Verdict]:
    report = outcome.report
    return [
        pairs_accounting_verdict(report["accounting"]),
        remaining_duplicates_verdict(figures.remaining, limits.max_remaining_duplicate_rate),
        min_expert_count_verdict(figures.expert_counts, limits.min_expert_count),
        expert_balance_verdict(figures.expert_counts, limits.max_expert_ratio, limits.balance_policy,
                               report["balance"]),
        crisis_share_verdict("pairs_crisis_share", figures.crisis_rows, figures.original_rows,
                             limits.max_crisis_share),
    ]


def pairs_report(settings: Mapping, report: Mapping, figures: PairFigures) -> dict:
    """The report.json of deduplicated_pairs: settings, the dedup report and what the checks measured."""
    return {"settings": dict(settings), **report, "remaining_duplicates": figures.remaining,
            "expert_counts": figures.expert_counts.to_dict("records"), "crisis_flagged_pairs": figures.crisis_rows}


def deduplicated_pairs_metadata(outcome: PairsOutcome, figures: PairFigures, files: Mapping[str, Path]) -> dict:
    """Counts, files, the duplicates removed and the expert counts (table and bar chart); accounting, LSH, semantic,
    prompt duplicates and balance are in report.json (pairs_report)."""
    report, counts = outcome.report, figures.expert_counts
    return {
        "dagster/row_count": len(outcome.pairs),
        **{key: path(files[key]) for key in ("path", "rejects_path", "report_path")},
        "by_dataset": json_value(report["by_dataset"]),
        "duplicates_by_kind": json_value(report["duplicates_by_kind"]),
        "clusters": report["clusters"],
        "crisis_flagged_pairs": figures.crisis_rows,
        "expert_counts": table(counts),
        "expert_shares": md(plots.bar_markdown(dict(zip(counts["style"], counts["count"])), "segment pairs per expert")),
    }


# ---- review_sample / review_verdicts ------------------------------------------------------------------------------
def review_coverage_verdict(sample: pd.DataFrame, pairs: pd.DataFrame, per_style: int) -> Verdict:
    """Warns when a style got fewer kept segment pairs in the sheet than asked for, though it had more."""
    kept_sample = sample[sample["prompt"].astype(str) != ""]
    sampled = kept_sample[kept_sample["dataset"] == DATASET_SEGMENTS]["style"].value_counts().reindex(
        list(STYLES), fill_value=0)
    available = pairs[(pairs["dataset"] == DATASET_SEGMENTS) & ~pairs["augmented"].astype(bool)]["style"].value_counts()
    short = [s for s in STYLES if sampled[s] < min(per_style, int(available.get(s, 0)))]
    return Verdict(
        "review_sample_coverage", not short,
        "every style fully sampled" if not short else f"under-sampled styles: {', '.join(short)}",
        {"per_style": json_value(sampled.to_dict()), "available": json_value(available.to_dict())},
        severity=WARN,
    )


def review_sample_metadata(sample: pd.DataFrame, csv_path: Path, html_path: Path, review_folder: Path) -> dict:
    strata = sample.fillna({"style": "-"}).groupby(["dataset", "style", "source"], dropna=False).size()
    preview = sample.head(8)[["dataset", "style", "source", "prompt"]]
    return {
        "dagster/row_count": len(sample),
        "csv": path(csv_path),
        "html": path(html_path),
        "how_to_review": f"Fill verdict (accept/reject), reviewer, note in the CSV; save it as "
        f"{review_folder}/<name>.csv; materialize review_verdicts.",
        "strata": table(strata.reset_index(name="rows")),
        "preview": table(preview.assign(prompt=lambda d: d["prompt"].astype(str).str[:90])),
    }


def verdict_rows_valid_verdict(problems: Sequence[Mapping]) -> Verdict:
    """Warns about filled-in rows or files that were ignored (rows not reviewed yet are not a problem)."""
    bad = [p for p in problems if p["problem"] != "unreviewed"]
    return Verdict(
        "verdict_rows_valid", not bad,
        "all filled-in rows are valid" if not bad else f"{len(bad)} rows or files ignored",
        {"problems": table(bad[:30], ["file", "row", "problem"])},
        severity=WARN,
    )


def reviewer_agreement_verdict(agreement: Mapping, min_agreement: float, min_reviewed: int) -> Verdict:
    """Warns when reviewers and filters disagree too often; too few reviewed rows with a decision pass unjudged."""
    judged = agreement.get("with_filter_decision", 0)
    agree = agreement.get("agreement")
    enough = judged >= min_reviewed
    return Verdict(
        "reviewer_filter_agreement", (not enough) or (agree is not None and agree >= min_agreement),
        f"only {judged} reviewed rows with a filter decision (need {min_reviewed})" if not enough else
        f"agreement {agree:.1%} (warn below {min_agreement:.0%})",
        {"agreement": json_value(agreement)},
        severity=WARN,
    )


def review_checks(problems: Sequence[Mapping], agreement: Mapping, min_agreement: float,
                             min_reviewed: int) -> list[Verdict]:
    return [verdict_rows_valid_verdict(problems), reviewer_agreement_verdict(agreement, min_agreement, min_reviewed)]


def review_verdicts_metadata(verdicts: pd.DataFrame, problems: Sequence[Mapping], agreement: Mapping,
                             files: Sequence[Path], written: Mapping[str, Path]) -> dict:
    """`files`: the review CSVs read; `written`: the `path`, `report_path` and `review_folder` to show."""
    return {
        "dagster/row_count": len(verdicts),
        **{key: path(written[key]) for key in ("path", "report_path", "review_folder")},
        "files": len(files),
        "verdicts": json_value(verdicts["verdict"].value_counts().to_dict() if len(verdicts) else {}),
        "agreement": json_value(agreement),
        "unreviewed_rows": sum(1 for p in problems if p["problem"] == "unreviewed"),
    }
