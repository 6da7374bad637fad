"""Dagster layer of the prompts domain: the `generated_prompts` asset and its checks.

The work happens in pixel_pipeline.prompts.pipeline.generate_prompts; this module reads the upstream Parquet
tables, writes the table / rejects / report, and turns the figures into metadata and check results.
"""

# No `from __future__ import annotations`: Dagster resolves the Config annotation at definition time.
import os
import time
from dataclasses import fields

import dagster as dg

from pixel_pipeline.core import plots
from pixel_pipeline.core.io import read_parquet, write_json, write_parquet
from pixel_pipeline.core.records import rejects_frame
from pixel_pipeline.defs.resources import EmbeddingModel, PixelStorage
from pixel_pipeline.prompts.generators import GENERATOR_NAMES
from pixel_pipeline.prompts.pipeline import (
    ALIGNMENT_BELOW_FLOOR,
    NO_ACCEPTABLE_QUESTION,
    PROMPT_ALREADY_USED,
    STAGE,
    PromptSettings,
    generate_prompts,
)
from pixel_pipeline.core.markdown import markdown_table
from pixel_pipeline.prompts.report import generator_distribution, prompt_metrics, sample_pairs_markdown
from pixel_pipeline.prompts.rules import has_copied_ngram

ASSET = "generated_prompts"
UPSTREAM_SEGMENTS = "curated_segments"
UPSTREAM_CONVERSATIONS = "curated_conversations"


class GeneratedPromptsConfig(dg.Config):
    """Knobs of prompt generation (same names as PromptSettings); empty llm_model / cross_encoder_model fall back
    to PIXEL_PROMPT_LLM / PIXEL_PROMPT_CROSS_ENCODER."""

    generators: list[str] = list(GENERATOR_NAMES)
    alignment_floor: float = 0.3
    reuse_penalty: float = 0.15
    unique_prompts: bool = True
    specificity_weight: float = 0.15
    runner_ups: int = 5
    seed: int = 13
    talk_min_words_after: int = 80
    talk_max_words_before: int = 200
    retrieval_top_k: int = 8
    retrieval_min_similarity: float = 0.6
    retrieval_datasets: list[str] = ["counseling"]
    concept_min_mentions: int = 3
    concept_general_forms: bool = True
    template_candidates: int = 6
    llm_model: str = ""
    llm_batch_size: int = 8
    llm_max_new_tokens: int = 64
    llm_candidates: int = 2
    llm_temperature: float = 0.8
    llm_device: str = ""
    opening_words: int = 60
    opening_floor: float = 0.62
    concept_fallback: bool = False
    cross_encoder_model: str = ""
    min_words: int = 6
    max_words: int = 60
    copied_ngram_words: int = 6
    # check thresholds
    min_alignment_share: float = 0.95
    min_distinct_prompts: float = 0.95
    min_specificity: float = 0.5
    min_prompt_yield: float = 0.1
    sample_pairs_per_style: int = 3

    def settings(self) -> PromptSettings:
        values = {f.name: getattr(self, f.name) for f in fields(PromptSettings)}
        values["llm_model"] = self.llm_model or os.environ.get("PIXEL_PROMPT_LLM", "")
        values["cross_encoder_model"] = self.cross_encoder_model or os.environ.get("PIXEL_PROMPT_CROSS_ENCODER", "")
        return PromptSettings(**values)


CHECKS = [
    dg.AssetCheckSpec(
        "prompt_accounting",
        asset=ASSET,
        blocking=True,
        description="Every curated segment is either one prompt row or one reject row (rows in = kept + rejected), "
        "and no segment appears twice.",
    ),
    dg.AssetCheckSpec(
        "alignment_floor_share",
        asset=ASSET,
        blocking=True,
        description="At least min_alignment_share of segments get a prompt whose embedding alignment with the "
        "response meets alignment_floor (the rest are rejected).",
    ),
    dg.AssetCheckSpec(
        "prompt_yield",
        asset=ASSET,
        description="At least min_prompt_yield of segments get a question; the rest are rejected as "
        "no_acceptable_question (reject rather than emit a question nobody would ask).",
    ),
    dg.AssetCheckSpec(
        "concept_slots",
        asset=ASSET,
        description="Every concept-form prompt holds a noun phrase in its concept slot, as the POS tagger reads the "
        "written prompt: no verb, adjective or name.",
    ),
    dg.AssetCheckSpec(
        "no_copied_ngrams",
        asset=ASSET,
        blocking=True,
        description="No prompt repeats a run of copied_ngram_words words from its own response (re-verified on the "
        "written table).",
    ),
    dg.AssetCheckSpec(
        "distinct_prompts",
        asset=ASSET,
        description="At least min_distinct_prompts of prompts are distinct (case and punctuation ignored): the "
        "model must not learn one question for many answers.",
    ),
    dg.AssetCheckSpec(
        "specificity",
        asset=ASSET,
        description="BM25 recall@1: the share of prompts that retrieve their own response first among all "
        "responses. Low means prompts say nothing about their answer (the failure of topic-word templates).",
    ),
    dg.AssetCheckSpec(
        "generator_distribution",
        asset=ASSET,
        description="Which generator won how many pairs per style. Warns when a style has no pairs or a generator "
        "that ran produced no candidate passing the prompt rules.",
    ),
]


@dg.asset(
    name=ASSET,
    group_name="prompts",
    deps=[UPSTREAM_SEGMENTS, UPSTREAM_CONVERSATIONS],
    check_specs=CHECKS,
    kinds={"python", "parquet"},
    description="The client question each curated segment answers (instruction backtranslation): the question the "
    "talk itself poses, a real counseling question that matches strongly, the segment's central concept in a form "
    "fitting what its opening says, or an optional local LLM; the talk's and real questions win over concept forms. "
    "A segment with no acceptable question, or under the alignment floor -> rejects/generated_prompts.parquet.",
)
def generated_prompts(
    context: dg.AssetExecutionContext,
    config: GeneratedPromptsConfig,
    storage: PixelStorage,
    embedding_model: EmbeddingModel,
) -> dg.MaterializeResult:
    paths = storage.paths
    segments_path = paths.table(UPSTREAM_SEGMENTS)
    if not segments_path.exists():
        raise dg.Failure(
            description=f"{UPSTREAM_SEGMENTS} has not been materialized: {segments_path} does not exist.",
            metadata={"expected_path": dg.MetadataValue.path(str(segments_path))},
        )
    segments = read_parquet(segments_path)
    missing = {"segment_id", "text"} - set(segments.columns)
    if missing:
        raise dg.Failure(description=f"{segments_path} lacks the columns {sorted(missing)} (see docs/CONTRACTS.md).")
    conversations_path = paths.table(UPSTREAM_CONVERSATIONS)
    conversations = read_parquet(conversations_path) if conversations_path.exists() else None
    if conversations is None:
        context.log.warning(f"{conversations_path} does not exist: the retrieval generator has no client questions.")

    settings = config.settings()
    last_logged: dict[str, float] = {}

    def progress(stage: str, done: int, total: int) -> None:
        share = done / max(total, 1)
        if done == total or share - last_logged.get(stage, -1.0) >= 0.1:
            last_logged[stage] = share
            context.log.info(f"{stage}: {done}/{total}")

    started = time.perf_counter()
    run = generate_prompts(
        segments,
        conversations,
        embedding_model.embedder(storage),
        settings,
        cache_dir=paths.cache_dir,
        progress=progress,
    )
    elapsed = time.perf_counter() - started
    for name, message in run.skipped.items():
        context.log.warning(message)

    table = run.table
    rejects = rejects_frame(run.rejects)
    table_path = write_parquet(table, paths.table(ASSET))
    rejects_path = write_parquet(rejects, paths.rejects(STAGE))

    responses = dict(zip(segments["segment_id"].astype(str), segments["text"].fillna("").astype(str)))
    kept_responses = [responses[s] for s in table["segment_id"]]
    metrics = prompt_metrics(table["prompt"].tolist(), kept_responses, table["alignment"].tolist())
    distribution = generator_distribution(table)
    report = {
        "rows_in": run.rows_in,
        "kept": len(table),
        "rejected": len(rejects),
        **metrics,
        "skipped_generators": run.skipped,
        "cache": run.cache_stats,
        "seconds": {**run.seconds, "total": round(elapsed, 2)},
        "candidates_per_generator": run.candidates_per_generator,
        "rule_failures_per_generator": run.rule_failures,
        "generator_stats": run.generator_stats,
        "concept_slot_violations": run.concept_slot_violations,
        "winners_per_style": distribution.to_dict(orient="index") if not distribution.empty else {},
        "settings": settings.__dict__,
    }
    report_path = write_json(report, paths.report_dir(ASSET) / "summary.json")

    checks = _check_results(config, settings, run, table, kept_responses, metrics, distribution, segments)
    alignment_md = (
        plots.histogram_markdown(
            {str(style): group.tolist() for style, group in table.groupby(table["style"].fillna("unknown"))["alignment"]},
            f"prompt-response alignment by style (floor {settings.alignment_floor})",
            "alignment (cosine)",
            bins=30,
        )
        if len(table)
        else "_(no pairs)_"
    )
    skipped_md = "\n".join(f"- **{k}**: {v}" for k, v in run.skipped.items()) or "none"
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(table),
            "table_path": dg.MetadataValue.path(str(table_path)),
            "rejects_path": dg.MetadataValue.path(str(rejects_path)),
            "report_path": dg.MetadataValue.path(str(report_path)),
            "rows_in": run.rows_in,
            "rejected": len(rejects),
            "specificity_bm25_recall_at_1": metrics["specificity_bm25_recall_at_1"],
            "distinct_prompts": metrics["distinct_prompts"],
            "distinct_2": metrics["distinct_2"],
            "alignment_mean": metrics.get("alignment_mean", 0.0),
            "alignment_histogram": dg.MetadataValue.md(alignment_md),
            "sample_pairs": dg.MetadataValue.md(
                sample_pairs_markdown(table, responses, per_style=config.sample_pairs_per_style, seed=config.seed)
            ),
            "generators_per_style": dg.MetadataValue.md(markdown_table(distribution, index=True)),
            "skipped_generators": dg.MetadataValue.md(skipped_md),
            "candidate_cache": dg.MetadataValue.json(run.cache_stats),
            "rule_failures_per_generator": dg.MetadataValue.json(run.rule_failures),
            "generator_stats": dg.MetadataValue.json(run.generator_stats),
            "valid_candidates_per_generator": dg.MetadataValue.json(run.valid_candidates_per_generator),
            "seconds": dg.MetadataValue.json(report["seconds"]),
            "segments_per_second": round(run.rows_in / elapsed, 2) if elapsed > 0 else 0.0,
        },
        check_results=checks,
    )


def _check_results(config, settings, run, table, kept_responses, metrics, distribution, segments) -> list[dg.AssetCheckResult]:
    n_in, n_kept, n_rejected = run.rows_in, len(table), len(run.rejects)
    rejected_ids = [r["segment_id"] for r in run.rejects]
    out_ids = table["segment_id"].astype(str).tolist() + rejected_ids
    input_ids = set(segments["segment_id"].astype(str))
    accounted = n_in == n_kept + n_rejected and len(set(out_ids)) == len(out_ids) and set(out_ids) == input_ids
    results = [
        dg.AssetCheckResult(
            check_name="prompt_accounting",
            passed=bool(accounted),
            metadata={
                "rows_in": n_in,
                "kept": n_kept,
                "rejected": n_rejected,
                "duplicate_ids": len(out_ids) - len(set(out_ids)),
                "unaccounted_ids": len(input_ids - set(out_ids)),
            },
            description=f"{n_in} in = {n_kept} kept + {n_rejected} rejected" if accounted else "rows do not reconcile",
        )
    ]
    below = sum(1 for r in run.rejects if r["reasons"][0].startswith(ALIGNMENT_BELOW_FLOOR))
    no_question = sum(1 for r in run.rejects if r["reasons"][0].startswith((NO_ACCEPTABLE_QUESTION, PROMPT_ALREADY_USED)))
    no_valid = n_rejected - below - no_question
    with_question = n_kept + below  # segments with a question passing the rules: did it also meet the floor?
    share = n_kept / with_question if with_question else 1.0
    results.append(
        dg.AssetCheckResult(
            check_name="alignment_floor_share",
            passed=bool(share >= config.min_alignment_share),
            metadata={
                "share_meeting_floor": round(share, 4),
                "alignment_floor": settings.alignment_floor,
                "min_alignment_share": config.min_alignment_share,
                "rejected_below_floor": below,
                "rejected_no_valid_prompt": no_valid,
            },
            description=f"{share:.1%} of segments with a candidate question have one with alignment >= "
            f"{settings.alignment_floor}",
        )
    )
    yield_share = n_kept / n_in if n_in else 1.0
    results.append(
        dg.AssetCheckResult(
            check_name="prompt_yield",
            passed=bool(yield_share >= config.min_prompt_yield),
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "kept_share": round(yield_share, 4),
                "min_prompt_yield": config.min_prompt_yield,
                "rejected_no_acceptable_question": no_question,
                "rejected_no_valid_prompt": no_valid,
                "generator_stats": dg.MetadataValue.json(run.generator_stats),
            },
            description=f"{yield_share:.1%} of segments got a question a person would ask ({no_question} had none, "
            f"{no_valid} had only candidates breaking the prompt rules)",
        )
    )
    results.append(
        dg.AssetCheckResult(
            check_name="concept_slots",
            passed=run.concept_slot_violations == 0,
            metadata={
                "concept_prompts": int((table["generator"] == "concepts").sum()) if n_kept else 0,
                "slot_violations": run.concept_slot_violations,
            },
            description=f"{run.concept_slot_violations} concept prompts whose concept the tagger reads as a verb, "
            "adjective or name",
        )
    )
    copied = has_copied_ngram(table["prompt"].tolist(), kept_responses, settings.copied_ngram_words)
    results.append(
        dg.AssetCheckResult(
            check_name="no_copied_ngrams",
            passed=not copied,
            metadata={
                "pairs_with_copied_run": len(copied),
                "examples": dg.MetadataValue.json([table["segment_id"].iloc[i] for i in copied[:10]]),
            },
            description=f"{len(copied)} prompts copy a {settings.copied_ngram_words}-word run from their response",
        )
    )
    distinct = metrics["distinct_prompts"]
    results.append(
        dg.AssetCheckResult(
            check_name="distinct_prompts",
            passed=bool(n_kept == 0 or distinct >= config.min_distinct_prompts),
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"distinct_prompts": distinct, "min_distinct_prompts": config.min_distinct_prompts, "distinct_2": metrics["distinct_2"]},
            description=f"{distinct:.1%} of {n_kept} prompts are distinct",
        )
    )
    spec = metrics["specificity_bm25_recall_at_1"]
    results.append(
        dg.AssetCheckResult(
            check_name="specificity",
            passed=bool(n_kept == 0 or spec >= config.min_specificity),
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"bm25_recall_at_1": spec, "min_specificity": config.min_specificity, "pairs": n_kept},
            description=f"the prompt retrieves its own response first for {spec:.1%} of pairs",
        )
    )
    ran = [g for g in settings.generators if g not in run.skipped]
    silent = [g for g in ran if n_in and not run.valid_candidates_per_generator.get(g, 0)]
    styles_in = set(segments["style"].dropna().astype(str)) if "style" in segments else set()
    styles_out = set(table["style"].dropna().astype(str))
    empty_styles = sorted(styles_in - styles_out)
    results.append(
        dg.AssetCheckResult(
            check_name="generator_distribution",
            passed=not silent and not empty_styles,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "winners_per_style": dg.MetadataValue.md(markdown_table(distribution, index=True)),
                "generators_run": dg.MetadataValue.json(ran),
                "generators_skipped": dg.MetadataValue.json(run.skipped),
                "generators_without_valid_candidates": dg.MetadataValue.json(silent),
                "styles_without_pairs": dg.MetadataValue.json(empty_styles),
            },
            description="every style has pairs and every generator that ran proposed usable candidates"
            if not silent and not empty_styles
            else f"styles without pairs: {empty_styles}; generators with no usable candidate: {silent}",
        )
    )
    return results


defs = dg.Definitions(assets=[generated_prompts])
