"""Dagster layer of the prompts domain: the `generated_prompts` asset and its checks.

The work happens in pixel_pipeline.prompts.pipeline.generate_prompts; this module reads the upstream Parquet
tables, writes the table / rejects / report, and turns the figures into metadata and check results.
"""

# No `from __future__ import annotations`: Dagster resolves the Config annotation at definition time.
import os
import time
from dataclasses import fields

import dagster as dg
import pandas as pd

from pixel_pipeline.core.io import read_parquet, write_json, write_parquet
from pixel_pipeline.core.records import rejects_frame
from pixel_pipeline.core.settings import PipelinePaths
from pixel_pipeline.defs.metadata import materialize_result
from pixel_pipeline.defs.resources import EmbeddingModel, PixelStorage
from pixel_pipeline.prompts.checks import (
    PromptThresholds,
    prompt_figures,
    prompt_verdicts,
    prompts_metadata,
    prompts_report,
)
from pixel_pipeline.prompts.generators import GENERATOR_NAMES
from pixel_pipeline.prompts.pipeline import STAGE, PromptSettings, StageProgress, generate_prompts

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

    def thresholds(self) -> PromptThresholds:
        return PromptThresholds(**{f.name: getattr(self, f.name) for f in fields(PromptThresholds)})


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
    written = {
        "path": write_parquet(run.table, paths.table(ASSET)),
        "rejects_path": write_parquet(rejects_frame(run.rejects), paths.rejects(STAGE)),
        "report_path": write_json(report, paths.report_dir(ASSET) / "summary.json"),
    }
    return materialize_result(
        prompts_metadata(run, figures, settings, written, elapsed, config.sample_pairs_per_style),
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
