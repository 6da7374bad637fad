"""Dagster layer of the curation domain: quality / safety / PII filters, dedup, expert balance, human review.

The logic lives in pixel_pipeline.curation; each asset here reads its upstream tables, calls the pure stage, writes
tables / rejects / reports, and returns the metadata and check verdicts that curation.checks builds from them.
"""

# No `from __future__ import annotations`: Dagster resolves the Config annotations at definition time.
import dagster as dg
import pandas as pd
from pydantic import Field

from pixel_pipeline.core.io import read_parquet, write_json, write_parquet, write_text
from pixel_pipeline.core.records import read_voice_choice
from pixel_pipeline.core.settings import REVIEW_DIR, PipelinePaths
from pixel_pipeline.curation import checks, review
from pixel_pipeline.curation.cache import ScoreCache
from pixel_pipeline.curation.curate import CurationSettings, curate_conversations, curate_segments
from pixel_pipeline.curation.pairs import DedupSettings, deduplicate_pairs
from pixel_pipeline.defs.metadata import materialize_result
from pixel_pipeline.defs.resources import EmbeddingModel, PixelStorage
from pixel_pipeline.defs.settings import keyword_defaults, settings_from

GROUP = "curation"
LANGUAGE_CACHE_NAMESPACE = "py3langid:P(en):v1"
RULE_CACHE_NAMESPACE = "curation-rules"


# ---- helpers ---------------------------------------------------------------------------------------------------
def _read_rejects(paths: PipelinePaths, stage: str) -> pd.DataFrame:
    path = paths.rejects(stage)
    return read_parquet(path) if path.exists() else pd.DataFrame(columns=["dataset", "segment_id", "record_id"])


def _language_cache(paths: PipelinePaths) -> ScoreCache:
    return ScoreCache(paths.cache_dir / "curation_scores.sqlite", LANGUAGE_CACHE_NAMESPACE)


def _rule_cache(paths: PipelinePaths) -> ScoreCache:
    """Per-text rule results (keyed by rule, thresholds, rule code and text): re-runs score only new texts."""
    return ScoreCache(paths.cache_dir / "curation_scores.sqlite", RULE_CACHE_NAMESPACE)


# Defaults of the knobs the pure settings own, read from them (a dataclass field's class attribute is its default);
# a literal below is a knob only the asset uses (a check threshold).
_RULES, _DEDUP = CurationSettings, DedupSettings


# ---- curated_segments -----------------------------------------------------------------------------------------
class CurationRulesConfig(dg.Config):
    """Rule thresholds shared by segments and conversations (same names as curate.CurationSettings)."""

    max_words: int = Field(
        _RULES.max_words, description="Longest response kept (~1,800 tokens); longer is rejected or truncated.")
    length_action: str = Field(
        _RULES.length_action, description="'reject' or 'truncate' (at a sentence boundary) too-long texts.")
    min_english_probability: float = Field(
        _RULES.min_english_probability, description="py3langid P(English) below this rejects (language).")
    max_foreign_script_runs: int = Field(
        _RULES.max_foreign_script_runs, description="garbled: runs of Cyrillic/CJK/Greek/... inside the text.")
    max_foreign_run_letters: int = Field(
        _RULES.max_foreign_run_letters, description="garbled: letters in the longest other-script run.")
    max_foreign_letter_share: float = Field(
        _RULES.max_foreign_letter_share, description="garbled: share of letters in other scripts.")
    max_non_word_share: float = Field(
        _RULES.max_non_word_share, description="garbled: share of words outside a 21k-word English vocabulary.")
    max_broken_punctuation_per_100_words: float = Field(
        _RULES.max_broken_punctuation_per_100_words, description="garbled: ' , it's', ',,', '. ,' per 100 words.")
    max_consecutive_repeats: int = Field(
        _RULES.max_consecutive_repeats, description="repetition: a 1-8 word phrase said more often in a row rejects.")
    max_duplicate_sentence_share: float = Field(
        _RULES.max_duplicate_sentence_share, description="repetition: share of sentences repeating an earlier one.")
    keep_crisis_lines: bool = Field(
        _RULES.keep_crisis_lines, description="PII: keep public crisis lines (988, 741741, ...) unredacted.")
    max_crisis_share: float = Field(0.25, description="Warn when more of the kept rows carry crisis flags.")


class CuratedSegmentsConfig(CurationRulesConfig):
    min_words: int = Field(_RULES.min_words, description="length: shorter segments cannot answer anything.")
    max_housekeeping_word_share: float = Field(
        _RULES.max_housekeeping_word_share, description="housekeeping: promo share that rejects the segment.")
    max_housekeeping_reads: int = Field(
        _RULES.max_housekeeping_reads, description="housekeeping: separate promo passages allowed before rejecting.")
    strip_housekeeping: bool = Field(
        _RULES.strip_housekeeping, description="Below the thresholds, remove promo sentences instead of keeping them.")
    max_scripture_per_100_words: float = Field(
        _RULES.max_scripture_per_100_words, description="religious: scripture words per 100 words above which a "
        "segment reads as a sermon or prayer.")
    min_scripture_words: int = Field(
        _RULES.min_scripture_words, description="religious: fewer scripture words than this never reject.")
    min_domain_margin: float = Field(
        _RULES.min_domain_margin, description="off_domain: domain similarity minus nearest off-topic similarity.")
    domain_reference_sources: list[str] = Field(
        default_factory=lambda: list(_RULES.domain_reference_sources),
        description="Sources whose segments (passing the cheap rules) form the known-good centroid for off_domain. "
        "Empty: the voice sources raw_segments resolved (setting, PIXEL_VOICE_SOURCES, else detected).")
    expert_min_quality: dict[str, float] = Field(
        default_factory=lambda: dict(_RULES().expert_min_quality), description="Per-expert floor on the given `quality`.")
    expert_min_domain_margin: dict[str, float] = Field(
        default_factory=lambda: dict(_RULES().expert_min_domain_margin),
        description="Per-expert override of min_domain_margin (style -> margin).")
    quality_classifier: bool = Field(_RULES.quality_classifier, description="Apply the learned quality "
                                     "classifier (curation/quality_model, trained on reading labels).")
    quality_threshold: float | None = Field(_RULES.quality_threshold, description="quality_classifier: "
                                            "P(reader rejects) at or above this rejects; empty: the cross-validated "
                                            "threshold in the model card.")
    reject_before_embedding: bool = Field(_RULES.reject_before_embedding, description="quality_classifier: "
                                          "reject without embedding a row whose P(reader rejects) reaches the "
                                          "threshold at any off_domain margin up to the model card's ceiling (the "
                                          "same decision, one transformer pass fewer).")


@dg.asset(
    group_name=GROUP,
    deps=["raw_segments"],
    kinds={"pandas", "parquet"},
    description="raw_segments through the quality rules (garbled, language, repetition, off_domain, housekeeping, "
    "length, harmful, per-expert quality), PII redaction and crisis flagging; every drop explained in the rejects.",
    check_specs=[
        dg.AssetCheckSpec("row_accounting", asset="curated_segments", blocking=True,
                          description="raw_segments rows = kept + rejected, and every id comes from the input."),
        dg.AssetCheckSpec("main_voice_not_all_rejected", asset="curated_segments", blocking=True,
                          description="No main-voice source loses 100 % of its segments (a rule gone wrong)."),
        dg.AssetCheckSpec("curated_segments_crisis_share", asset="curated_segments",
                          description="Share of kept segments flagged as crisis content (warn when high)."),
    ],
)
def curated_segments(context: dg.AssetExecutionContext, config: CuratedSegmentsConfig, storage: PixelStorage,
                     embedding_model: EmbeddingModel) -> dg.MaterializeResult:
    paths = storage.paths
    raw = paths.read_table("raw_segments")
    voice_sources = read_voice_choice(paths.voice_choice_file).sources  # resolved once, by raw_segments
    settings = settings_from(config, CurationSettings,
                             domain_reference_sources=tuple(config.domain_reference_sources) or voice_sources)
    embedder = embedding_model.embedder(storage)
    context.log.info("curating %d segments", len(raw))
    out = curate_segments(raw, settings, embed=embedder.encode if len(raw) else None,
                          language_cache=_language_cache(paths), rule_cache=_rule_cache(paths))
    files = paths.write_outputs("curated_segments", out.kept, out.rejects,
                                checks.curated_segments_report(settings.as_dict(), out, embedder.stats), "report.json")
    return materialize_result(
        checks.curated_segments_metadata(len(raw), out, files),
        checks.curated_segments_verdicts(raw, out, voice_sources, config.max_crisis_share),
    )


# ---- curated_conversations ------------------------------------------------------------------------------------
class CuratedConversationsConfig(CurationRulesConfig):
    conversation_min_words: int = Field(
        _RULES.conversation_min_words, description="length: shortest therapist response kept.")


@dg.asset(
    group_name=GROUP,
    deps=["counseling_conversations", "cot_conversations"],
    kinds={"pandas", "parquet"},
    description="Counseling and reasoning conversations through PII redaction (prompt, response, every turn), "
    "crisis flagging, harmful-advice rejection and the text-quality rules on the response.",
    check_specs=[
        dg.AssetCheckSpec("row_accounting", asset="curated_conversations", blocking=True,
                          description="counseling + cot rows = kept + rejected, and every id comes from the input."),
        dg.AssetCheckSpec("curated_conversations_crisis_share", asset="curated_conversations",
                          description="Share of kept conversations flagged as crisis content (warn when high)."),
    ],
)
def curated_conversations(context: dg.AssetExecutionContext, config: CuratedConversationsConfig,
                          storage: PixelStorage) -> dg.MaterializeResult:
    paths = storage.paths
    frames = [paths.read_table("counseling_conversations"), paths.read_table("cot_conversations")]
    conv = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) else frames[0]
    settings = settings_from(config, CurationSettings)
    out = curate_conversations(conv, settings, language_cache=_language_cache(paths), rule_cache=_rule_cache(paths))
    files = paths.write_outputs("curated_conversations", out.kept, out.rejects,
                                checks.outcome_report(settings.as_dict(), out), "report.json")
    return materialize_result(
        checks.curated_conversations_metadata(len(conv), out, files),
        checks.curated_conversations_verdicts(conv, out, config.max_crisis_share),
    )


# ---- deduplicated_pairs ---------------------------------------------------------------------------------------
class DeduplicatedPairsConfig(dg.Config):
    near_threshold: float = Field(
        _DEDUP.near_threshold, description="Near-dup: exact word 3-shingle Jaccard at or above this.")
    semantic_threshold: float = Field(
        _DEDUP.semantic_threshold, description="Semantic dup: embedding cosine at or above this.")
    semantic_dedup: bool = Field(_DEDUP.semantic_dedup, description="Run the embedding (semantic) dedup level.")
    num_perm: int = Field(_DEDUP.num_perm, description="MinHash permutations.")
    shingle_words: int = Field(_DEDUP.shingle_words, description="Words per shingle.")
    lsh_bands: int = Field(_DEDUP.lsh_bands, description="LSH bands (bands x rows <= num_perm).")
    lsh_rows: int = Field(_DEDUP.lsh_rows, description="Signature rows per LSH band.")
    dedup_prompts: bool = Field(
        _DEDUP.dedup_prompts, description="Also cluster segment pairs whose generated prompts duplicate.")
    balance_policy: str = Field(
        _DEDUP.balance_policy, description="'warn', 'cap' (largest experts) or 'upsample' (smallest).")
    target_expert_ratio: float = Field(
        _DEDUP.target_expert_ratio, description="Largest / smallest expert count the rebalancing aims at.")
    keep_crisis_lines: bool = Field(_DEDUP.keep_crisis_lines, description="PII in prompts: keep public crisis lines.")
    max_remaining_duplicate_rate: float = Field(0.0, description="Blocking: share of kept rows still duplicated.")
    min_expert_count: int = Field(10, description="Warn: fewest segment pairs an expert may have (training is blocked "
                                  "by fine_tuning_exports' training_data_sizes check, after the exports are written).")
    max_expert_ratio: float = Field(4.0, description="Warn: largest / smallest expert count above this.")
    max_crisis_share: float = Field(0.25, description="Warn: share of crisis-flagged pairs above this.")


@dg.asset(
    group_name=GROUP,
    deps=["curated_segments", "generated_prompts", "curated_conversations"],
    kinds={"pandas", "parquet"},
    description="All (prompt, response) pairs, exact / near (MinHash+LSH) / semantic duplicates removed keeping the "
    "best member, with the expert balance policy applied.",
    check_specs=[
        dg.AssetCheckSpec("row_accounting", asset="deduplicated_pairs", blocking=True,
                          description="Curated rows = pairs kept + duplicates + capped (+ prompt-stage rejects); "
                          "augmented copies counted apart."),
        dg.AssetCheckSpec("max_remaining_duplicate_rate", asset="deduplicated_pairs", blocking=True,
                          description="Share of kept responses that still have an exact or near duplicate."),
        dg.AssetCheckSpec("min_expert_count", asset="deduplicated_pairs",
                          description="Every expert has at least min_expert_count segment pairs (warning: a small "
                          "corpus still gets its exports; training_data_sizes blocks training)."),
        dg.AssetCheckSpec("expert_balance", asset="deduplicated_pairs",
                          description="Per-expert count and share; warns when largest / smallest > max_expert_ratio."),
        dg.AssetCheckSpec("pairs_crisis_share", asset="deduplicated_pairs",
                          description="Share of crisis-flagged pairs (warn when high)."),
    ],
)
def deduplicated_pairs(context: dg.AssetExecutionContext, config: DeduplicatedPairsConfig, storage: PixelStorage,
                       embedding_model: EmbeddingModel) -> dg.MaterializeResult:
    paths = storage.paths
    segs = paths.read_table("curated_segments")
    prompts = paths.read_table("generated_prompts")
    convs = paths.read_table("curated_conversations")
    prompt_rejected_ids = set(_read_rejects(paths, "generated_prompts")["segment_id"].dropna())
    settings = settings_from(config, DedupSettings)
    embedder = embedding_model.embedder(storage) if config.semantic_dedup else None
    out = deduplicate_pairs(segs, prompts, convs, prompt_rejected_ids, settings,
                            embed=embedder.encode if embedder else None)
    figures = checks.measure_pairs(out.pairs, settings.near())
    files = paths.write_outputs("deduplicated_pairs", out.pairs, out.rejects,
                                checks.pairs_report(config.model_dump(), out.report, figures), "report.json")
    return materialize_result(
        checks.deduplicated_pairs_metadata(out, figures, files),
        checks.deduplicated_pairs_verdicts(out, figures, settings_from(config, checks.PairLimits)),
    )


# ---- review_sample / review_verdicts --------------------------------------------------------------------------
_SAMPLE = keyword_defaults(review.build_sample)


class ReviewSampleConfig(dg.Config):
    per_style: int = Field(_SAMPLE["per_style"], description="Kept segment pairs per style.")
    per_conversation_dataset: int = Field(
        _SAMPLE["per_conversation_dataset"], description="Kept pairs per conversation dataset (counseling, cot).")
    rejected_per_style: int = Field(
        _SAMPLE["rejected_per_style"], description="Filter-rejected segments per style, for agreement both ways.")
    seed: int = Field(_SAMPLE["seed"], description="Sampling seed.")


def _rejected_segments_for_review(paths: PipelinePaths) -> pd.DataFrame:
    rej = _read_rejects(paths, "curated_segments")
    raw_path = paths.table("raw_segments")
    if rej.empty or not raw_path.exists():
        return pd.DataFrame(columns=["segment_id", "style", "source", "file", "text", "quality", "details"])
    raw = read_parquet(raw_path, columns=["segment_id", "text", "style", "quality"]).drop_duplicates("segment_id")
    return rej.merge(raw, on="segment_id", how="inner")


@dg.asset(
    group_name=GROUP,
    deps=["deduplicated_pairs", "curated_segments"],
    kinds={"html", "csv"},
    description="A stratified review sheet (HTML + CSV): 50 pairs per style over sources and quality bands, "
    "conversation pairs, and some filter-rejected segments for measuring reviewer / filter agreement.",
    check_specs=[dg.AssetCheckSpec("review_sample_coverage", asset="review_sample",
                                   description="Each style got per_style pairs, or all it has.")],
)
def review_sample(config: ReviewSampleConfig, storage: PixelStorage) -> dg.MaterializeResult:
    paths = storage.paths
    curated_path = paths.table("curated_segments")
    curated = read_parquet(curated_path) if curated_path.exists() else None
    pairs = review.with_filter_scores(paths.read_table("deduplicated_pairs"), curated)
    sample = review.build_sample(pairs, _rejected_segments_for_review(paths), config.per_style,
                                 config.per_conversation_dataset, config.rejected_per_style, config.seed)
    out_dir = paths.report_dir("review_sample")
    csv_path = write_text(review.spreadsheet_safe(sample).to_csv(index=False),  # no cell runs as a formula
                          out_dir / "review_sample.csv")
    html_path = write_text(review.sample_html(sample), out_dir / "review_sample.html")
    write_parquet(sample, paths.table("review_sample"))
    return materialize_result(
        checks.review_sample_metadata(sample, csv_path, html_path, paths.data_dir / REVIEW_DIR),
        [checks.review_coverage_verdict(sample, pairs, config.per_style)],
    )


class ReviewVerdictsConfig(dg.Config):
    min_agreement: float = Field(0.8, description="Warn when reviewer / filter agreement falls below this.")
    min_reviewed_for_agreement: int = Field(10, description="Reviewed rows needed before agreement is judged.")


REJECT_STAGES_FOR_AGREEMENT = ("curated_segments", "curated_conversations", "generated_prompts", "deduplicated_pairs")


def _filter_decisions(paths: PipelinePaths) -> tuple[set, set]:
    """Ids the pipeline kept (in deduplicated_pairs) and ids some stage rejected, for reviewer agreement."""
    kept_ids, rejected_ids = set(), set()
    if paths.table("deduplicated_pairs").exists():
        p = read_parquet(paths.table("deduplicated_pairs"), columns=["segment_id", "record_id"])
        kept_ids = set(p["segment_id"].dropna()) | set(p["record_id"].dropna())
    for stage in REJECT_STAGES_FOR_AGREEMENT:
        r = _read_rejects(paths, stage)
        rejected_ids |= set(r["segment_id"].dropna()) | set(r["record_id"].dropna())
    return kept_ids, rejected_ids


@dg.asset(
    group_name=GROUP,
    deps=["review_sample", "deduplicated_pairs"],
    kinds={"pandas", "parquet"},
    description="Reviewer verdicts read back from PIXEL_DATA_DIR/review/*.csv (the review_sample sheet filled in); "
    "rejected pairs are excluded by `splits`. Reports agreement between reviewers and the automatic filters.",
    check_specs=[
        dg.AssetCheckSpec("verdict_rows_valid", asset="review_verdicts",
                          description="Every filled-in row has a known dataset, an id and accept/reject."),
        dg.AssetCheckSpec("reviewer_filter_agreement", asset="review_verdicts",
                          description="Reviewers agree with the filters on at least min_agreement of reviewed rows."),
    ],
)
def review_verdicts(config: ReviewVerdictsConfig, storage: PixelStorage) -> dg.MaterializeResult:
    paths = storage.paths
    folder = paths.data_dir / REVIEW_DIR
    files = sorted(folder.glob("*.csv")) if folder.is_dir() else []
    verdicts, problems = review.read_verdicts(files)
    agreement = review.agreement(verdicts, *_filter_decisions(paths))
    written = {
        "path": write_parquet(verdicts, paths.table("review_verdicts")),
        "report_path": write_json({"files": [f.name for f in files], "problems": problems, "agreement": agreement},
                             paths.report_dir("review_verdicts") / "agreement.json"),
        "review_folder": folder,
    }
    return materialize_result(
        checks.review_verdicts_metadata(verdicts, problems, agreement, files, written),
        checks.review_checks(problems, agreement, config.min_agreement, config.min_reviewed_for_agreement),
    )


defs = dg.Definitions(assets=[curated_segments, curated_conversations, deduplicated_pairs, review_sample, review_verdicts])
