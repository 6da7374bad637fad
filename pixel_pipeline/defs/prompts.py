"""Dagster layer of the prompts domain: the `generated_prompts` asset and its checks.

The work happens in pixel_pipeline.prompts.pipeline.generate_prompts; this module reads the upstream Parquet
tables, writes the table / rejects / report, and turns the figures into metadata and check results.
"""

# No `from __future__ import annotations`: Dagster resolves the Config annotation at definition time.
import os
import time

import dagster as dg
import pandas as pd

from pixel_pipeline.core.io import read_parquet
from pixel_pipeline.core.records import rejects_frame
from pixel_pipeline.core.settings import PipelinePaths
from pixel_pipeline.defs.metadata import materialize_result
from pixel_pipeline.defs.resources import EmbeddingModel, PixelStorage
from pixel_pipeline.defs.settings import keyword_defaults, settings_from
from pixel_pipeline.prompts.checks import (
    PromptThresholds,
    prompt_figures,
    prompt_verdicts,
    prompts_metadata,
    prompts_report,
)
from pixel_pipeline.prompts.pipeline import STAGE, PromptSettings, StageProgress, generate_prompts
from pixel_pipeline.prompts.report import sample_pairs_markdown

ASSET = STAGE  # "generated_prompts": the asset and the stage its rejects name are one
UPSTREAM_SEGMENTS = "curated_segments"
UPSTREAM_CONVERSATIONS = "curated_conversations"
# Defaults of the knobs the pure settings own, read from them (a dataclass field's class attribute is its default).
_PROMPTS, _THRESHOLDS = PromptSettings, PromptThresholds


class GeneratedPromptsConfig(dg.Config):
    """Knobs of prompt generation (same names as PromptSettings); empty llm_model / cross_encoder_model fall back
    to PIXEL_PROMPT_LLM / PIXEL_PROMPT_CROSS_ENCODER."""

    generators: list[str] = list(_PROMPTS().generators)
    alignment_floor: float = _PROMPTS.alignment_floor
    reuse_penalty: float = _PROMPTS.reuse_penalty
    unique_prompts: bool = _PROMPTS.unique_prompts
    specificity_weight: float = _PROMPTS.specificity_weight
    runner_ups: int = _PROMPTS.runner_ups
    seed: int = _PROMPTS.seed
    talk_min_words_after: int = _PROMPTS.talk_min_words_after
    talk_max_words_before: int = _PROMPTS.talk_max_words_before
    retrieval_top_k: int = _PROMPTS.retrieval_top_k
    retrieval_min_similarity: float = _PROMPTS.retrieval_min_similarity
    retrieval_datasets: list[str] = list(_PROMPTS().retrieval_datasets)
    concept_min_mentions: int = _PROMPTS.concept_min_mentions
    concept_general_forms: bool = _PROMPTS.concept_general_forms
    template_candidates: int = _PROMPTS.template_candidates
    llm_model: str = _PROMPTS.llm_model
    llm_batch_size: int = _PROMPTS.llm_batch_size
    llm_max_new_tokens: int = _PROMPTS.llm_max_new_tokens
    llm_candidates: int = _PROMPTS.llm_candidates
    llm_temperature: float = _PROMPTS.llm_temperature
    llm_device: str = _PROMPTS.llm_device
    opening_words: int = _PROMPTS.opening_words
    opening_floor: float = _PROMPTS.opening_floor
    reject_leaning_openings: bool = _PROMPTS.reject_leaning_openings
    concept_fallback: bool = _PROMPTS.concept_fallback
    cross_encoder_model: str = _PROMPTS.cross_encoder_model
    min_words: int = _PROMPTS.min_words
    max_words: int = _PROMPTS.max_words
    copied_ngram_words: int = _PROMPTS.copied_ngram_words
    # check thresholds
    min_alignment_share: float = _THRESHOLDS.min_alignment_share
    min_distinct_prompts: float = _THRESHOLDS.min_distinct_prompts
    min_specificity: float = _THRESHOLDS.min_specificity
    min_prompt_yield: float = _THRESHOLDS.min_prompt_yield
    sample_pairs_per_style: int = keyword_defaults(sample_pairs_markdown)["per_style"]

    def settings(self) -> PromptSettings:
        return settings_from(
            self, PromptSettings,
            llm_model=self.llm_model or os.environ.get("PIXEL_PROMPT_LLM", ""),
            cross_encoder_model=self.cross_encoder_model or os.environ.get("PIXEL_PROMPT_CROSS_ENCODER", ""),
        )

    def thresholds(self) -> PromptThresholds:
        return settings_from(self, PromptThresholds)


CHECKS = [
    dg.AssetCheckSpec(
        "row_accounting",
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
    segments, conversations = read_upstream(paths, context.log)
    settings = config.settings()
    started = time.perf_counter()
    run = generate_prompts(segments, conversations, embedding_model.embedder(storage), settings,
                           cache_dir=paths.cache_dir, progress=throttled_progress(context.log))
    elapsed = time.perf_counter() - started
    for message in run.skipped.values():
        context.log.warning(message)

    figures = prompt_figures(run.table, segments)
    report = prompts_report(run, figures, settings, elapsed)
    written = paths.write_outputs(ASSET, run.table, rejects_frame(run.rejects), report)
    return materialize_result(
        prompts_metadata(run, figures, settings, written, config.sample_pairs_per_style),
        prompt_verdicts(run, figures, segments, settings, config.thresholds()),
    )


def read_upstream(paths: PipelinePaths, log) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """curated_segments (required, with segment_id and text) and curated_conversations (optional)."""
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
        log.warning(f"{conversations_path} does not exist: the retrieval generator has no client questions.")
    return segments, conversations


def throttled_progress(log) -> StageProgress:
    """Logs each stage's progress at most every 10 % (and at its end)."""
    last_logged: dict[str, float] = {}

    def progress(stage: str, done: int, total: int) -> None:
        share = done / max(total, 1)
        if done == total or share - last_logged.get(stage, -1.0) >= 0.1:
            last_logged[stage] = share
            log.info(f"{stage}: {done}/{total}")

    return progress


defs = dg.Definitions(assets=[generated_prompts])
