"""What `generated_prompts` reports, as plain data: its check verdicts, its UI metadata and its summary report.

Pure functions over a PromptRun and the curated segments, so tests call them with hand-made inputs; the Dagster
layer (defs/prompts.py) turns them into check results and metadata values.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pixel_pipeline.core.records import reason_key
from pixel_pipeline.core.verdicts import WARN, Verdict, json_value, md, path
from pixel_pipeline.core.verdicts import table as md_table
from pixel_pipeline.prompts.generators import CONCEPTS
from pixel_pipeline.prompts.pipeline import PromptRun
from pixel_pipeline.prompts.report import generator_distribution, prompt_metrics, sample_pairs_markdown
from pixel_pipeline.prompts.rules import has_copied_ngram
from pixel_pipeline.prompts.selection import ALIGNMENT_BELOW_FLOOR, NO_ACCEPTABLE_QUESTION, OPENING_LEANS, PROMPT_ALREADY_USED
from pixel_pipeline.prompts.settings import PromptSettings


@dataclass(frozen=True)
class PromptThresholds:
    """The check thresholds of `generated_prompts` (same names as its Config)."""

    min_alignment_share: float = 0.95
    min_distinct_prompts: float = 0.95
    min_specificity: float = 0.5
    min_prompt_yield: float = 0.1


@dataclass
class PromptFigures:
    """Quality figures of the written table, shared by the checks, the metadata and the report."""

    responses: dict[str, str]  # segment_id -> text, every curated segment
    kept_responses: list[str]  # the response of each table row, in table order
    metrics: dict[str, Any]  # report.prompt_metrics
    distribution: pd.DataFrame  # report.generator_distribution: pairs won per style and generator


def prompt_figures(table: pd.DataFrame, segments: pd.DataFrame) -> PromptFigures:
    responses = dict(zip(segments["segment_id"].astype(str), segments["text"].fillna("").astype(str)))
    kept_responses = [responses[s] for s in table["segment_id"]]
    metrics = prompt_metrics(table["prompt"].tolist(), kept_responses, table["alignment"].tolist())
    return PromptFigures(responses, kept_responses, metrics, generator_distribution(table))


# ---- check verdicts ------------------------------------------------------------------------------------


def prompt_verdicts(run: PromptRun, figures: PromptFigures, segments: pd.DataFrame, settings: PromptSettings,
                    thresholds: PromptThresholds) -> list[Verdict]:
    """The eight checks of `generated_prompts`, in the order of its check specs."""
    table, n_kept = run.table, len(run.table)
    below, no_question, leaning, no_valid = reject_counts(run.rejects)
    styles_in = set(segments["style"].dropna().astype(str)) if "style" in segments else set()
    return [
        accounting_verdict(run.rows_in, table["segment_id"].astype(str).tolist(),
                           [r["segment_id"] for r in run.rejects], set(segments["segment_id"].astype(str))),
        alignment_floor_verdict(n_kept, below, no_valid, settings.alignment_floor, thresholds.min_alignment_share),
        prompt_yield_verdict(run.rows_in, n_kept, no_question, leaning, no_valid, thresholds.min_prompt_yield,
                             run.generator_stats),
        concept_slots_verdict(int((table["generator"] == CONCEPTS).sum()) if n_kept else 0, run.concept_slot_violations),
        copied_ngrams_verdict(table["prompt"].tolist(), figures.kept_responses, table["segment_id"].tolist(),
                              settings.copied_ngram_words),
        distinct_prompts_verdict(n_kept, figures.metrics["distinct_prompts"], figures.metrics["distinct_2"],
                                 thresholds.min_distinct_prompts),
        specificity_verdict(n_kept, figures.metrics["specificity_bm25_recall_at_1"], thresholds.min_specificity),
        generator_distribution_verdict(
            [g for g in settings.generators if g not in run.skipped], run.skipped, run.valid_candidates_per_generator,
            run.rows_in, styles_in, set(table["style"].dropna().astype(str)), figures.distribution,
        ),
    ]


def reject_counts(rejects: Iterable[Mapping[str, Any]]) -> tuple[int, int, int, int]:
    """Rejects (below the alignment floor, without an acceptable question, with a response that opens mid-thought,
    with only rule-breaking candidates)."""
    reasons = [r["reasons"][0] for r in rejects]
    below = sum(1 for r in reasons if r.startswith(ALIGNMENT_BELOW_FLOOR))
    no_question = sum(1 for r in reasons if r.startswith((NO_ACCEPTABLE_QUESTION, PROMPT_ALREADY_USED)))
    leaning = sum(1 for r in reasons if r.startswith(OPENING_LEANS))
    return below, no_question, leaning, len(reasons) - below - no_question - leaning


def accounting_verdict(rows_in: int, kept_ids: Sequence[str], rejected_ids: Sequence[str], input_ids: set[str]) -> Verdict:
    """Every input segment is exactly one kept row or one reject row."""
    n_kept, n_rejected = len(kept_ids), len(rejected_ids)
    out_ids = list(kept_ids) + list(rejected_ids)
    accounted = rows_in == n_kept + n_rejected and len(set(out_ids)) == len(out_ids) and set(out_ids) == input_ids
    return Verdict(
        "row_accounting",
        accounted,
        f"{rows_in} in = {n_kept} kept + {n_rejected} rejected" if accounted else "rows do not reconcile",
        {
            "rows_in": rows_in,
            "kept": n_kept,
            "rejected": n_rejected,
            "duplicate_ids": len(out_ids) - len(set(out_ids)),
            "unaccounted_ids": len(input_ids - set(out_ids)),
        },
    )


def alignment_floor_verdict(kept: int, below: int, no_valid: int, alignment_floor: float, min_share: float) -> Verdict:
    """Of the segments with a question passing the rules, the share whose question also met the floor."""
    with_question = kept + below
    share = kept / with_question if with_question else 1.0
    return Verdict(
        "alignment_floor_share",
        share >= min_share,
        f"{share:.1%} of segments with a candidate question have one with alignment >= {alignment_floor}",
        {
            "share_meeting_floor": round(share, 4),
            "alignment_floor": alignment_floor,
            "min_alignment_share": min_share,
            "rejected_below_floor": below,
            "rejected_no_valid_prompt": no_valid,
        },
    )


def prompt_yield_verdict(rows_in: int, kept: int, no_question: int, leaning: int, no_valid: int, min_yield: float,
                         generator_stats: Mapping[str, Any]) -> Verdict:
    """Warns when too few segments get a question (rejecting is right, but a low yield says a generator is off)."""
    share = kept / rows_in if rows_in else 1.0
    return Verdict(
        "prompt_yield",
        share >= min_yield,
        f"{share:.1%} of segments got a question a person would ask ({leaning} responses open mid-thought, "
        f"{no_question} had none, {no_valid} had only candidates breaking the prompt rules)",
        {
            "kept_share": round(share, 4),
            "min_prompt_yield": min_yield,
            "rejected_no_acceptable_question": no_question,
            "rejected_opening_leans": leaning,
            "rejected_no_valid_prompt": no_valid,
            "generator_stats": json_value(generator_stats),
        },
        severity=WARN,
    )


def concept_slots_verdict(concept_prompts: int, slot_violations: int) -> Verdict:
    return Verdict(
        "concept_slots",
        slot_violations == 0,
        f"{slot_violations} concept prompts whose concept the tagger reads as a verb, adjective or name",
        {"concept_prompts": concept_prompts, "slot_violations": slot_violations},
    )


def copied_ngrams_verdict(prompts: Sequence[str], responses: Sequence[str], segment_ids: Sequence[str],
                          n_words: int) -> Verdict:
    """Re-checks the written pairs: no prompt repeats an n_words run of its own response."""
    copied = has_copied_ngram(list(prompts), list(responses), n_words)
    return Verdict(
        "no_copied_ngrams",
        not copied,
        f"{len(copied)} prompts copy a {n_words}-word run from their response",
        {"pairs_with_copied_run": len(copied), "examples": json_value([segment_ids[i] for i in copied[:10]])},
    )


def distinct_prompts_verdict(kept: int, distinct: float, distinct_2: float, minimum: float) -> Verdict:
    return Verdict(
        "distinct_prompts",
        kept == 0 or distinct >= minimum,
        f"{distinct:.1%} of {kept} prompts are distinct",
        {"distinct_prompts": distinct, "min_distinct_prompts": minimum, "distinct_2": distinct_2},
    )


def specificity_verdict(kept: int, recall_at_1: float, minimum: float) -> Verdict:
    return Verdict(
        "specificity",
        kept == 0 or recall_at_1 >= minimum,
        f"the prompt retrieves its own response first for {recall_at_1:.1%} of pairs",
        {"bm25_recall_at_1": recall_at_1, "min_specificity": minimum, "pairs": kept},
        severity=WARN,
    )


def generator_distribution_verdict(ran: Sequence[str], skipped: Mapping[str, str], valid_per_generator: Mapping[str, int],
                                   rows_in: int, styles_in: set[str], styles_out: set[str],
                                   distribution: pd.DataFrame) -> Verdict:
    """Warns when a style got no pairs, or a generator that ran proposed no candidate passing the rules."""
    silent = [g for g in ran if rows_in and not valid_per_generator.get(g, 0)]
    empty_styles = sorted(styles_in - styles_out)
    return Verdict(
        "generator_distribution",
        not silent and not empty_styles,
        "every style has pairs and every generator that ran proposed usable candidates"
        if not silent and not empty_styles
        else f"styles without pairs: {empty_styles}; generators with no usable candidate: {silent}",
        {
            "winners_per_style": md_table(distribution, index=True),
            "generators_run": json_value(list(ran)),
            "generators_skipped": json_value(skipped),
            "generators_without_valid_candidates": json_value(silent),
            "styles_without_pairs": json_value(empty_styles),
        },
        severity=WARN,
    )


# ---- metadata and report -------------------------------------------------------------------------------


def run_seconds(run: PromptRun, elapsed: float) -> dict[str, float]:
    return {**run.seconds, "total": round(elapsed, 2)}


def reject_reason_counts(rejects: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Rejected segments per reason rule (the key of each segment's first reason), most frequent first; the counts
    add up to the rejected segments."""
    counts = Counter(reason_key(r["reasons"][0]) for r in rejects)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def prompts_report(run: PromptRun, figures: PromptFigures, settings: PromptSettings, elapsed: float) -> dict[str, Any]:
    """reports/generated_prompts/summary.json: every figure of the run, including those the UI metadata leaves out
    (alignment, timings, cache, generator statistics)."""
    distribution = figures.distribution
    return {
        "rows_in": run.rows_in,
        "kept": len(run.table),
        "rejected": len(run.rejects),
        "reject_reasons": reject_reason_counts(run.rejects),
        **figures.metrics,
        "alignment_histogram": alignment_histogram_counts(run.table, settings.alignment_floor),
        "skipped_generators": run.skipped,
        "cache": run.cache_stats,
        "seconds": run_seconds(run, elapsed),
        "segments_per_second": round(run.rows_in / elapsed, 2) if elapsed > 0 else 0.0,
        "candidates_per_generator": run.candidates_per_generator,
        "valid_candidates_per_generator": run.valid_candidates_per_generator,
        "rule_failures_per_generator": run.rule_failures,
        "generator_stats": run.generator_stats,
        "concept_slot_violations": run.concept_slot_violations,
        "winners_per_style": distribution.to_dict(orient="index") if not distribution.empty else {},
        "settings": settings.__dict__,
    }


def prompts_metadata(run: PromptRun, figures: PromptFigures, settings: PromptSettings, written: Mapping[str, Path],
                     sample_pairs_per_style: int) -> dict[str, Any]:
    """The asset's headline metadata; `written` holds the output paths (`path`, `rejects_path`, `report_path`).
    Everything else (alignment, generator statistics, cache, timings) is in the report (`prompts_report`)."""
    table, metrics = run.table, figures.metrics
    reasons = reject_reason_counts(run.rejects)
    return {
        "dagster/row_count": len(table),
        **{key: path(value) for key, value in written.items()},
        "rows_in": run.rows_in,
        "rejected": len(run.rejects),
        "reject_reasons": md_table([{"reason": r, "segments": n} for r, n in reasons.items()], ["reason", "segments"]),
        "distinct_2": metrics["distinct_2"],
        "specificity_bm25_recall_at_1": metrics["specificity_bm25_recall_at_1"],
        "sample_pairs": md(sample_pairs_markdown(table, figures.responses, per_style=sample_pairs_per_style, seed=settings.seed)),
    }


def alignment_histogram_counts(table: pd.DataFrame, alignment_floor: float, bins: int = 30) -> dict[str, Any]:
    """Prompt-response alignment per style as histogram counts over shared bin edges (the report's plot data)."""
    if not len(table):
        return {"floor": alignment_floor, "edges": [], "by_style": {}}
    values = table["alignment"].astype(float)
    edges = np.histogram_bin_edges(values, bins=bins)
    by_style = table.groupby(table["style"].fillna("unknown"))["alignment"]
    return {
        "floor": alignment_floor,
        "edges": [round(float(e), 4) for e in edges],
        "by_style": {str(style): np.histogram(group.astype(float), bins=edges)[0].tolist() for style, group in by_style},
    }
