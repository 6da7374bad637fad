"""Dagster layer of the curation domain: quality / safety / PII filters, dedup, expert balance, human review.

The logic lives in pixel_pipeline.curation; this module reads upstream tables, writes tables / rejects / reports,
and turns the reports into metadata and asset checks.
"""

# No `from __future__ import annotations`: Dagster resolves the Config annotations at definition time.
from dataclasses import fields, replace

import dagster as dg
import pandas as pd
from pydantic import Field

from pixel_pipeline.core import plots
from pixel_pipeline.core.io import read_parquet, write_json, write_parquet, write_text
from pixel_pipeline.core.records import STYLES, read_voice_choice
from pixel_pipeline.core.settings import REVIEW_DIR, PipelinePaths
from pixel_pipeline.curation import balance, dedup, review
from pixel_pipeline.curation.cache import ScoreCache
from pixel_pipeline.curation.curate import CONVERSATION_RULES, SEGMENT_RULES, CurationSettings, curate_conversations, curate_segments
from pixel_pipeline.curation.pairs import DedupSettings, deduplicate_pairs
from pixel_pipeline.defs.metadata import json_metadata, md_table
from pixel_pipeline.defs.resources import EmbeddingModel, PixelStorage

GROUP = "curation"
LANGUAGE_CACHE_NAMESPACE = "py3langid:P(en):v1"
RULE_CACHE_NAMESPACE = "curation-rules"


# ---- helpers ---------------------------------------------------------------------------------------------------
def _read_rejects(paths: PipelinePaths, stage: str) -> pd.DataFrame:
    path = paths.rejects(stage)
    return read_parquet(path) if path.exists() else pd.DataFrame(columns=["dataset", "segment_id", "record_id"])


def _settings_from(config: dg.Config, cls):
    values = {}
    for f in fields(cls):
        if hasattr(config, f.name):
            v = getattr(config, f.name)
            values[f.name] = tuple(v) if isinstance(v, list) else v
    return cls(**values)


def _language_cache(paths: PipelinePaths) -> ScoreCache:
    return ScoreCache(paths.cache_dir / "curation_scores.sqlite", LANGUAGE_CACHE_NAMESPACE)


def _rule_cache(paths: PipelinePaths) -> ScoreCache:
    """Per-text rule results (keyed by rule, thresholds, rule code and text): re-runs score only new texts."""
    return ScoreCache(paths.cache_dir / "curation_scores.sqlite", RULE_CACHE_NAMESPACE)


def _rule_counts_md(report: dict, rules) -> dg.MetadataValue:
    rows = [{"rule": r, "fired": report["rejected_by_rule"].get(r, 0),
             "only_reason": report["rejected_by_this_rule_only"].get(r, 0),
             "by_source": ", ".join(f"{s}: {n}" for s, n in report["rejected_by_rule_and_source"].get(r, {}).items())}
            for r in rules]
    return md_table(rows, ["rule", "fired", "only_reason", "by_source"])


def _examples_md(report: dict) -> dg.MetadataValue:
    rows = [{"rule": r, "id": e["id"], "source": e["source"], "reason": (e["reason"] or "")[:160]}
            for r, exs in report["examples"].items() for e in exs]
    return md_table(rows, ["rule", "id", "source", "reason"])


def _accounting_check(name: str, rows_in: int, kept: int, rejected: int, input_ids: set, kept_ids: list,
                      rejected_ids: list) -> dg.AssetCheckResult:
    both = set(kept_ids) & set(rejected_ids)
    unknown = (set(kept_ids) | set(rejected_ids)) - input_ids
    ok = rows_in == kept + rejected and not unknown
    return dg.AssetCheckResult(
        check_name=name, passed=bool(ok),
        description=f"{rows_in} rows in = {kept} kept + {rejected} rejected" if ok else
        f"accounting broken: {rows_in} in vs {kept} kept + {rejected} rejected; {len(unknown)} ids not in the input",
        metadata={"rows_in": rows_in, "kept": kept, "rejected": rejected, "ids_kept_and_rejected": len(both),
                  "ids_not_in_input": json_metadata(sorted(unknown)[:20])},
    )


def _crisis_check(name: str, crisis_rows: int, total: int, max_share: float) -> dg.AssetCheckResult:
    share = crisis_rows / total if total else 0.0
    return dg.AssetCheckResult(
        check_name=name, passed=share <= max_share, severity=dg.AssetCheckSeverity.WARN,
        description=f"{crisis_rows}/{total} kept rows ({share:.1%}) carry crisis flags (warn above {max_share:.0%}); "
        "they are kept and marked for special handling in training and review",
        metadata={"crisis_rows": crisis_rows, "rows": total, "share": round(share, 4), "max_share": max_share},
    )


# ---- curated_segments -----------------------------------------------------------------------------------------
class CurationRulesConfig(dg.Config):
    """Rule thresholds shared by segments and conversations (same names as curate.CurationSettings)."""

    max_words: int = Field(1400, description="Longest response kept (~1,800 tokens); longer is rejected or truncated.")
    length_action: str = Field("reject", description="'reject' or 'truncate' (at a sentence boundary) too-long texts.")
    min_english_probability: float = Field(0.5, description="py3langid P(English) below this rejects (language).")
    max_foreign_script_runs: int = Field(2, description="garbled: runs of Cyrillic/CJK/Greek/... inside the text.")
    max_foreign_run_letters: int = Field(12, description="garbled: letters in the longest other-script run.")
    max_foreign_letter_share: float = Field(0.02, description="garbled: share of letters in other scripts.")
    max_non_word_share: float = Field(0.35, description="garbled: share of words outside a 21k-word English vocabulary.")
    max_broken_punctuation_per_100_words: float = Field(3.0, description="garbled: ' , it's', ',,', '. ,' per 100 words.")
    max_consecutive_repeats: int = Field(5, description="repetition: a 1-8 word phrase said more often in a row rejects.")
    max_duplicate_sentence_share: float = Field(0.30, description="repetition: share of sentences repeating an earlier one.")
    keep_crisis_lines: bool = Field(True, description="PII: keep public crisis lines (988, 741741, ...) unredacted.")
    max_crisis_share: float = Field(0.25, description="Warn when more of the kept rows carry crisis flags.")


class CuratedSegmentsConfig(CurationRulesConfig):
    min_words: int = Field(30, description="length: shorter segments cannot answer anything.")
    max_housekeeping_word_share: float = Field(0.25, description="housekeeping: promo share that rejects the segment.")
    max_housekeeping_reads: int = Field(2, description="housekeeping: separate promo passages allowed before rejecting.")
    strip_housekeeping: bool = Field(True, description="Below the thresholds, remove promo sentences instead of keeping them.")
    min_domain_margin: float = Field(0.0, description="off_domain: domain similarity minus nearest off-topic similarity.")
    domain_reference_sources: list[str] = Field(
        default_factory=list,
        description="Sources whose segments (passing the cheap rules) form the known-good centroid for off_domain. "
        "Empty: the voice sources raw_segments resolved (setting, PIXEL_VOICE_SOURCES, else detected).")
    expert_min_quality: dict[str, float] = Field(
        default_factory=lambda: {s: 0.3 for s in STYLES}, description="Per-expert floor on the given `quality`.")
    expert_min_domain_margin: dict[str, float] = Field(
        default_factory=dict, description="Per-expert override of min_domain_margin (style -> margin).")
    quality_classifier: bool = Field(CurationSettings.quality_classifier, description="Apply the learned quality "
                                     "classifier (curation/quality_model, trained on reading labels).")
    quality_threshold: float | None = Field(CurationSettings.quality_threshold, description="quality_classifier: "
                                            "P(reader rejects) at or above this rejects; empty: the cross-validated "
                                            "threshold in the model card.")


@dg.asset(
    group_name=GROUP,
    deps=["raw_segments"],
    kinds={"pandas", "parquet"},
    description="raw_segments through the quality rules (garbled, language, repetition, off_domain, housekeeping, "
    "length, harmful, per-expert quality), PII redaction and crisis flagging; every drop explained in the rejects.",
    check_specs=[
        dg.AssetCheckSpec("curated_segments_accounting", asset="curated_segments", blocking=True,
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
    settings = _settings_from(config, CurationSettings)
    voice_sources = read_voice_choice(paths.voice_choice_file).sources  # resolved once, by raw_segments
    settings = replace(settings, domain_reference_sources=tuple(config.domain_reference_sources) or voice_sources)
    embedder = embedding_model.embedder(storage)
    lang_cache = _language_cache(paths)
    context.log.info("curating %d segments", len(raw))
    out = curate_segments(raw, settings, embed=embedder.encode if len(raw) else None, language_cache=lang_cache,
                          rule_cache=_rule_cache(paths))
    rep = out.report
    write_parquet(out.kept, paths.table("curated_segments"))
    write_parquet(out.rejects, paths.rejects("curated_segments"))
    report_path = write_json({"settings": settings.as_dict(), **rep}, paths.report_dir("curated_segments") / "report.json")

    by_source = pd.DataFrame(rep["by_source"])
    voice = by_source[by_source["source"].isin(voice_sources)] if len(by_source) else by_source
    all_rejected = voice[voice["kept"] == 0] if len(voice) else voice
    score_plots = {r: out.kept[f"score_{r}"].dropna().tolist() for r in ("off_domain", "garbled", "repetition",
                                                                         "quality_classifier")
                   if len(out.kept)}
    checks = [
        _accounting_check("curated_segments_accounting", len(raw), len(out.kept), len(out.rejects),
                          set(raw["segment_id"]), out.kept["segment_id"].tolist(), out.rejects["segment_id"].tolist()),
        dg.AssetCheckResult(
            check_name="main_voice_not_all_rejected", passed=bool(len(voice)) and all_rejected.empty,
            description="no voice source has segments here: stage 3 would be empty" if not len(voice) else
            "every main-voice source keeps some segments" if all_rejected.empty else
            f"all segments rejected for {', '.join(all_rejected['source'])}: check the thresholds",
            metadata={"voice_sources": json_metadata(voice_sources), "voice_reject_rates": md_table(voice)},
        ),
        _crisis_check("curated_segments_crisis_share", rep["crisis_rows"], len(out.kept), config.max_crisis_share),
    ]
    metadata = {
        "dagster/row_count": len(out.kept),
        "rows_in": len(raw), "kept": len(out.kept), "rejected": len(out.rejects),
        "table": dg.MetadataValue.path(str(paths.table("curated_segments"))),
        "rejects": dg.MetadataValue.path(str(paths.rejects("curated_segments"))),
        "report": dg.MetadataValue.path(str(report_path)),
        "rejected_by_rule": _rule_counts_md(rep, SEGMENT_RULES),
        "by_source": md_table(by_source, ["source", "rows_in", "kept", "rejected", "reject_rate"]),
        "examples": _examples_md(rep),
        "pii_redacted": json_metadata(rep["pii_counts"]),
        "crisis_flags": json_metadata(rep["crisis_counts"]),
        "housekeeping_sentences_removed": rep["housekeeping_sentences_removed"],
        "quality_classifier": rep["quality_classifier"],
        "shaping_of_kept": json_metadata(rep["shaping_of_kept"]),
        "off_domain": rep["off_domain"],
        "score_quantiles": json_metadata(rep["score_quantiles"]),
        "language_cache": json_metadata(rep["language_cache"]),
        "rule_cache": json_metadata(rep["rule_cache"]),
        "embedding_cache": json_metadata(embedder.stats),
    }
    if score_plots.get("off_domain"):
        metadata["off_domain_margin"] = dg.MetadataValue.md(plots.histogram_markdown(
            score_plots["off_domain"], "off_domain margin of kept segments", "domain - off-topic similarity"))
    if score_plots.get("quality_classifier"):
        metadata["quality_classifier_score"] = dg.MetadataValue.md(plots.histogram_markdown(
            score_plots["quality_classifier"], "quality classifier P(reject) of kept segments", "P(reader rejects)"))
    return dg.MaterializeResult(metadata=metadata, check_results=checks)


# ---- curated_conversations ------------------------------------------------------------------------------------
class CuratedConversationsConfig(CurationRulesConfig):
    conversation_min_words: int = Field(5, description="length: shortest therapist response kept.")


@dg.asset(
    group_name=GROUP,
    deps=["counseling_conversations", "cot_conversations"],
    kinds={"pandas", "parquet"},
    description="Counseling and reasoning conversations through PII redaction (prompt, response, every turn), "
    "crisis flagging, harmful-advice rejection and the text-quality rules on the response.",
    check_specs=[
        dg.AssetCheckSpec("curated_conversations_accounting", asset="curated_conversations", blocking=True,
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
    settings = _settings_from(config, CurationSettings)
    out = curate_conversations(conv, settings, language_cache=_language_cache(paths), rule_cache=_rule_cache(paths))
    rep = out.report
    write_parquet(out.kept, paths.table("curated_conversations"))
    write_parquet(out.rejects, paths.rejects("curated_conversations"))
    report_path = write_json({"settings": settings.as_dict(), **rep},
                             paths.report_dir("curated_conversations") / "report.json")
    checks = [
        _accounting_check("curated_conversations_accounting", len(conv), len(out.kept), len(out.rejects),
                          set(conv["record_id"]) if len(conv) else set(), out.kept["record_id"].tolist(),
                          out.rejects["record_id"].tolist()),
        _crisis_check("curated_conversations_crisis_share", rep["crisis_rows"], len(out.kept), config.max_crisis_share),
    ]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(out.kept),
            "rows_in": len(conv), "kept": len(out.kept), "rejected": len(out.rejects),
            "table": dg.MetadataValue.path(str(paths.table("curated_conversations"))),
            "rejects": dg.MetadataValue.path(str(paths.rejects("curated_conversations"))),
            "report": dg.MetadataValue.path(str(report_path)),
            "by_dataset": md_table(rep.get("by_dataset", [])),
            "rejected_by_rule": _rule_counts_md(rep, CONVERSATION_RULES),
            "by_source": md_table(pd.DataFrame(rep["by_source"]), ["source", "rows_in", "kept", "rejected", "reject_rate"]),
            "examples": _examples_md(rep),
            "pii_redacted": json_metadata(rep["pii_counts"]),
            "crisis_flags": json_metadata(rep["crisis_counts"]),
        },
        check_results=checks,
    )


# ---- deduplicated_pairs ---------------------------------------------------------------------------------------
class DeduplicatedPairsConfig(dg.Config):
    near_threshold: float = Field(0.8, description="Near-dup: exact word 3-shingle Jaccard at or above this.")
    semantic_threshold: float = Field(0.95, description="Semantic dup: embedding cosine at or above this.")
    semantic_dedup: bool = Field(True, description="Run the embedding (semantic) dedup level.")
    num_perm: int = Field(128, description="MinHash permutations.")
    shingle_words: int = Field(3, description="Words per shingle.")
    lsh_bands: int = Field(20, description="LSH bands (bands x rows <= num_perm).")
    lsh_rows: int = Field(6, description="Signature rows per LSH band.")
    dedup_prompts: bool = Field(False, description="Also cluster segment pairs whose generated prompts duplicate.")
    balance_policy: str = Field("warn", description="'warn', 'cap' (largest experts) or 'upsample' (smallest).")
    target_expert_ratio: float = Field(3.0, description="Largest / smallest expert count the rebalancing aims at.")
    keep_crisis_lines: bool = Field(True, description="PII in prompts: keep public crisis lines.")
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
        dg.AssetCheckSpec("deduplicated_pairs_accounting", asset="deduplicated_pairs", blocking=True,
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
    prompt_rejects = _read_rejects(paths, "generated_prompts")
    settings = _settings_from(config, DedupSettings)
    embedder = embedding_model.embedder(storage) if config.semantic_dedup else None
    out = deduplicate_pairs(segs, prompts, convs, set(prompt_rejects["segment_id"].dropna()), settings,
                            embed=embedder.encode if embedder else None)
    pairs, rep = out.pairs, out.report
    write_parquet(pairs, paths.table("deduplicated_pairs"))
    write_parquet(out.rejects, paths.rejects("deduplicated_pairs"))

    acc = rep["accounting"]
    original = pairs[~pairs["augmented"].astype(bool)]
    remaining = dedup.remaining_duplicate_rate(original["response"].fillna("").tolist(), settings.near())
    counts = balance.expert_counts(pairs)
    present = counts[counts["count"] > 0]
    ratio = float(present["count"].max() / present["count"].min()) if len(present) > 1 else 1.0
    total_segments = int(counts["count"].sum())
    short = counts[counts["count"] < config.min_expert_count]
    crisis_rows = int(original["crisis_flags"].apply(lambda f: len(f) > 0 if f is not None else False).sum())
    write_json({"settings": config.model_dump(), **rep, "remaining_duplicates": remaining,
                "expert_counts": counts.to_dict("records")}, paths.report_dir("deduplicated_pairs") / "report.json")

    seg_ok = acc["curated_segments_in"] == (acc["segments_with_prompt"] + acc["segments_rejected_by_prompts_stage"]
                                            + acc["segments_missing_prompt"])
    pairs_ok = acc["pair_candidates"] == acc["kept"] + acc["rejected_duplicates"] + acc["rejected_expert_cap"]
    checks = [
        dg.AssetCheckResult(
            check_name="deduplicated_pairs_accounting", passed=bool(seg_ok and pairs_ok),
            description=(f"{acc['pair_candidates']} candidate pairs = {acc['kept']} kept + {acc['rejected_duplicates']} "
                         f"duplicates + {acc['rejected_expert_cap']} capped; {acc['curated_segments_in']} curated segments "
                         f"= {acc['segments_with_prompt']} with prompt + {acc['segments_rejected_by_prompts_stage']} rejected "
                         f"by generated_prompts + {acc['segments_missing_prompt']} missing_prompt"),
            metadata={k: int(v) for k, v in acc.items()},
        ),
        dg.AssetCheckResult(
            check_name="max_remaining_duplicate_rate", passed=remaining["rate"] <= config.max_remaining_duplicate_rate,
            description=f"{remaining['rows_with_duplicate']}/{remaining['rows']} kept responses still have an exact or "
            f"near duplicate (max rate {config.max_remaining_duplicate_rate})",
            metadata={**remaining, "max_rate": config.max_remaining_duplicate_rate},
        ),
        dg.AssetCheckResult(
            check_name="min_expert_count", passed=bool(short.empty or total_segments == 0), severity=dg.AssetCheckSeverity.WARN,
            description=("no segment pairs at all: nothing to check" if total_segments == 0 else
                         "every expert has enough pairs" if short.empty else
                         f"experts under {config.min_expert_count} pairs: {', '.join(short['style'])}"),
            metadata={"counts": md_table(counts), "min_expert_count": config.min_expert_count},
        ),
        dg.AssetCheckResult(
            check_name="expert_balance", passed=ratio <= config.max_expert_ratio, severity=dg.AssetCheckSeverity.WARN,
            description=f"largest / smallest expert = {ratio:.2f} (warn above {config.max_expert_ratio}); "
            f"policy {config.balance_policy}",
            metadata={"counts": md_table(counts), "ratio": round(ratio, 3), "balance": json_metadata(rep["balance"])},
        ),
        _crisis_check("pairs_crisis_share", crisis_rows, len(original), config.max_crisis_share),
    ]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(pairs),
            "table": dg.MetadataValue.path(str(paths.table("deduplicated_pairs"))),
            "rejects": dg.MetadataValue.path(str(paths.rejects("deduplicated_pairs"))),
            "by_dataset": json_metadata(rep["by_dataset"]),
            "duplicates_by_kind": json_metadata(rep["duplicates_by_kind"]),
            "clusters": rep["clusters"],
            "lsh": json_metadata(rep["lsh"]),
            "semantic": rep["semantic"],
            "prompt_duplicates": json_metadata(rep["prompts"]),
            "expert_counts": md_table(counts),
            "expert_shares": dg.MetadataValue.md(plots.bar_markdown(
                dict(zip(counts["style"], counts["count"])), "segment pairs per expert")),
            "balance": json_metadata(rep["balance"]),
            "crisis_flagged_pairs": crisis_rows,
            "accounting": json_metadata(acc),
        },
        check_results=checks,
    )


# ---- review_sample / review_verdicts --------------------------------------------------------------------------
class ReviewSampleConfig(dg.Config):
    per_style: int = Field(50, description="Kept segment pairs per style.")
    per_conversation_dataset: int = Field(25, description="Kept pairs per conversation dataset (counseling, cot).")
    rejected_per_style: int = Field(5, description="Filter-rejected segments per style, for agreement both ways.")
    seed: int = Field(0, description="Sampling seed.")


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
    pairs = paths.read_table("deduplicated_pairs")
    curated = read_parquet(paths.table("curated_segments")) if paths.table("curated_segments").exists() else None
    if curated is not None and len(pairs):  # show the filters' scores to reviewers
        scores = curated[["segment_id", *[c for c in curated.columns if c.startswith("score_")]]].drop_duplicates("segment_id")
        pairs = pairs.merge(scores, on="segment_id", how="left")
    sample = review.build_sample(pairs, _rejected_segments_for_review(paths), config.per_style,
                                 config.per_conversation_dataset, config.rejected_per_style, config.seed)
    out_dir = paths.report_dir("review_sample")
    csv_path = out_dir / "review_sample.csv"
    write_text(review.spreadsheet_safe(sample).to_csv(index=False), csv_path)  # no cell runs as a formula
    html_path = write_text(review.sample_html(sample), out_dir / "review_sample.html")
    write_parquet(sample, paths.table("review_sample"))
    kept_sample = sample[sample["prompt"].astype(str) != ""]
    per_style = kept_sample[kept_sample["dataset"] == "segments"]["style"].value_counts().reindex(list(STYLES), fill_value=0)
    available = pairs[(pairs["dataset"] == "segments") & ~pairs["augmented"].astype(bool)]["style"].value_counts()
    short = [s for s in STYLES if per_style[s] < min(config.per_style, int(available.get(s, 0)))]
    strata = sample.fillna({"style": "-"}).groupby(["dataset", "style", "source"], dropna=False).size().reset_index(name="rows")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(sample),
            "csv": dg.MetadataValue.path(str(csv_path)),
            "html": dg.MetadataValue.path(str(html_path)),
            "how_to_review": f"Fill verdict (accept/reject), reviewer, note in the CSV; save it as "
            f"{paths.data_dir / REVIEW_DIR}/<name>.csv; materialize review_verdicts.",
            "strata": md_table(strata),
            "preview": md_table(sample.head(8)[["dataset", "style", "source", "prompt"]].assign(
                prompt=lambda d: d["prompt"].astype(str).str[:90])),
        },
        check_results=[dg.AssetCheckResult(
            check_name="review_sample_coverage", passed=not short, severity=dg.AssetCheckSeverity.WARN,
            description="every style fully sampled" if not short else f"under-sampled styles: {', '.join(short)}",
            metadata={"per_style": json_metadata(per_style.to_dict()), "available": json_metadata(available.to_dict())},
        )],
    )


class ReviewVerdictsConfig(dg.Config):
    min_agreement: float = Field(0.8, description="Warn when reviewer / filter agreement falls below this.")
    min_reviewed_for_agreement: int = Field(10, description="Reviewed rows needed before agreement is judged.")


REJECT_STAGES_FOR_AGREEMENT = ("curated_segments", "curated_conversations", "generated_prompts", "deduplicated_pairs")


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
    write_parquet(verdicts, paths.table("review_verdicts"))
    pairs_path = paths.table("deduplicated_pairs")
    kept_ids = set()
    if pairs_path.exists():
        p = read_parquet(pairs_path, columns=["segment_id", "record_id"])
        kept_ids = set(p["segment_id"].dropna()) | set(p["record_id"].dropna())
    rejected_ids = set()
    for stage in REJECT_STAGES_FOR_AGREEMENT:
        r = _read_rejects(paths, stage)
        rejected_ids |= set(r["segment_id"].dropna()) | set(r["record_id"].dropna())
    agreement = review.agreement(verdicts, kept_ids, rejected_ids)
    report_path = write_json({"files": [f.name for f in files], "problems": problems, "agreement": agreement},
                             paths.report_dir("review_verdicts") / "agreement.json")
    bad = [p for p in problems if p["problem"] != "unreviewed"]
    judged = agreement.get("with_filter_decision", 0)
    agree = agreement.get("agreement")
    enough = judged >= config.min_reviewed_for_agreement
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(verdicts),
            "table": dg.MetadataValue.path(str(paths.table("review_verdicts"))),
            "report": dg.MetadataValue.path(str(report_path)),
            "review_folder": dg.MetadataValue.path(str(folder)),
            "files": len(files),
            "verdicts": json_metadata(verdicts["verdict"].value_counts().to_dict() if len(verdicts) else {}),
            "agreement": json_metadata(agreement),
            "unreviewed_rows": sum(1 for p in problems if p["problem"] == "unreviewed"),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="verdict_rows_valid", passed=not bad, severity=dg.AssetCheckSeverity.WARN,
                description="all filled-in rows are valid" if not bad else f"{len(bad)} rows or files ignored",
                metadata={"problems": md_table(bad[:30], ["file", "row", "problem"])},
            ),
            dg.AssetCheckResult(
                check_name="reviewer_filter_agreement", passed=(not enough) or (agree is not None and agree >= config.min_agreement),
                severity=dg.AssetCheckSeverity.WARN,
                description=(f"only {judged} reviewed rows with a filter decision (need {config.min_reviewed_for_agreement})"
                             if not enough else f"agreement {agree:.1%} (warn below {config.min_agreement:.0%})"),
                metadata={"agreement": json_metadata(agreement)},
            ),
        ],
    )


defs = dg.Definitions(assets=[curated_segments, curated_conversations, deduplicated_pairs, review_sample, review_verdicts])
