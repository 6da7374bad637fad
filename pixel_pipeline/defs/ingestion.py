"""Dagster layer of ingestion: raw_segments, counseling_conversations, cot_conversations, audited_schema.

The logic lives in pixel_pipeline.ingest (pure, file by file) and the checks, reports and metadata in ingest.checks
(plain verdicts and values); these assets list the input files, call them, write the tables, rejects and report
(reports/<asset>/summary.json; audited_schema: audit.json and audit.html) atomically, and return the few headline
values ingest.checks picked from the report. The contract columns are definition metadata
(`dagster/column_schema`). (No `from __future__ import annotations` here: Dagster resolves the Config annotations
at definition time.)
"""

import os
from collections.abc import Sequence
from typing import Any

import dagster as dg
import pandas as pd

from pixel_pipeline.core.io import read_parquet, write_json, write_text
from pixel_pipeline.core.records import (
    DATASET_COT,
    DATASET_COUNSELING,
    VoiceRule,
    VoiceSourceError,
    choose_voice_sources,
    read_voice_choice,
    rejects_frame,
)
from pixel_pipeline.core.settings import COT_DIR, COUNSELING_DIR, SEGMENTS_DIR, TRANSCRIPTS_DIR, PipelinePaths
from pixel_pipeline.core.verdicts import Verdict, path
from pixel_pipeline.defs.metadata import materialize_result
from pixel_pipeline.defs.resources import EmbeddingModel, PixelStorage
from pixel_pipeline.defs.settings import settings_from
from pixel_pipeline.ingest import audit as audit_lib
from pixel_pipeline.ingest import checks
from pixel_pipeline.ingest import conversations as conv
from pixel_pipeline.ingest import segments as seg
from pixel_pipeline.ingest.cache import FileCache, FileResult
from pixel_pipeline.ingest.inputs import scan_input_folder
from pixel_pipeline.ingest.schema import conversation_schema_problems, raw_segments_schema_problems
from pixel_pipeline.ingest.style import build_style_classifier, style_agreement

GROUP = "ingestion"
INGESTED = ("raw_segments", "counseling_conversations", "cot_conversations")
# Defaults of the knobs the pure settings own, read from them (a dataclass field's class attribute is its default);
# a literal in a Config below is a knob only the asset uses (a check threshold, where the rows come from).
_SEGMENTS, _CONVERSATIONS, _AUDIT = seg.SegmentSettings, conv.ConversationSettings, audit_lib.AuditSettings


# ---------------------------------------------------------------------------------------------------------------
# shared helpers


def _column_schema(schema: dict[str, str]) -> dict[str, dg.TableSchema]:
    """The contract columns as definition metadata (the UI's asset overview, before any run)."""
    return {"dagster/column_schema": dg.TableSchema(columns=[dg.TableColumn(column, kind) for column, kind in schema.items()])}


def _write_outputs(paths: PipelinePaths, name: str, rows: pd.DataFrame, rejects: pd.DataFrame) -> dict[str, Any]:
    """Write the table and its rejects (the rejects schema even when there are none); their paths."""
    return paths.write_outputs(name, rows, rejects if len(rejects) else rejects_frame([]))


def _warn_unreadable(context: dg.AssetExecutionContext, asset: str, results: Sequence[FileResult]) -> None:
    for r in results:
        if r.file_error:
            context.log.warning(f"{asset}: {r.input_file} skipped: {r.file_error}")


def _check_specs(asset: str, extra: Sequence[tuple[str, str, bool]] = ()) -> list[dg.AssetCheckSpec]:
    base = [
        ("schema", f"{asset} has exactly the columns, dtypes, ids and value ranges of docs/CONTRACTS.md.", True),
        ("row_accounting", "Every input row is accepted or rejected: rows in (counted while parsing) = rows kept + rows rejected, per input file.", True),
        ("not_empty", "When input files exist, at least one row is accepted (an empty table would starve every downstream asset).", False),
        ("invalid_files", "Every input file could be read; unreadable files are named with the reason (warning: the other files still load).", False),
    ]
    return [dg.AssetCheckSpec(name, asset=asset, description=desc, blocking=blocking) for name, desc, blocking in [*base, *extra]]


def _resolve_voice_sources(context: dg.AssetExecutionContext, paths: PipelinePaths, rows: pd.DataFrame, config: "RawSegmentsConfig"):
    """Resolve the voice sources once, here, where the segments per source are known; write the choice for curation
    and splits. A configured source absent from the corpus, or no clear leader, stops the run with the sources."""
    rule = VoiceRule(min_lead_ratio=config.voice_min_lead_ratio, min_segments=config.voice_min_segments)
    counts = rows["source"].value_counts().to_dict() if len(rows) else {}
    try:
        choice = choose_voice_sources(counts, config.voice_sources, rule, paths.data_dir)
    except VoiceSourceError as exc:
        paths.voice_choice_file.unlink(missing_ok=True)  # no stale choice for a later curation run
        raise dg.Failure(description=str(exc), metadata={"sources": dg.MetadataValue.json({str(k): int(v) for k, v in counts.items()})}) from None
    write_json(choice.to_dict(), paths.voice_choice_file)
    context.log.info(f"raw_segments: {choice.describe()}")
    return choice


# ---------------------------------------------------------------------------------------------------------------
# raw_segments


class RawSegmentsConfig(dg.Config):
    """Validation, transcript cutting and style settings (defaults documented in docs/ingestion.md)."""

    min_words: int = _SEGMENTS.min_words
    max_words: int = _SEGMENTS.max_words
    max_chars: int = _SEGMENTS.max_chars
    max_confidence_given: float = _SEGMENTS.max_confidence_given
    required_fields: list[str] = list(_SEGMENTS.required_fields)
    target_words: int = _SEGMENTS.target_words
    min_tail_words: int = _SEGMENTS.min_tail_words
    max_sentence_words: int = _SEGMENTS.max_sentence_words
    transcript_source: str = _SEGMENTS.transcript_source
    expert_style_from: str = _SEGMENTS.expert_style_from
    min_style_confidence: float = _SEGMENTS.min_style_confidence
    style_encoder: str = "static"  # "static" (distilled from the embedding model, fast) or "sentence" (the model itself)
    voice_sources: list[str] = []
    voice_min_lead_ratio: float = VoiceRule.min_lead_ratio
    voice_min_segments: int = VoiceRule.min_segments
    use_file_cache: bool = True
    max_rejected_share: float = 0.2
    min_style_kappa: float = 0.2

    def settings(self) -> seg.SegmentSettings:
        return settings_from(self, seg.SegmentSettings)


RAW_SEGMENTS_CHECKS = _check_specs(
    "raw_segments",
    [
        ("rejected_share", "At most `max_rejected_share` of input rows are rejected; more usually means a format change, not bad rows.", False),
        ("style_agreement", "Given style labels and the embedding classifier agree beyond chance (Cohen's kappa >= `min_style_kappa`); per-style agreement and the confusion table are in the metadata.", False),
        ("given_confidence_is_probability", "Share of given `confidence` values outside [0, 1]: when any exist, the field is not a probability and must not be used as one (use style_confidence).", False),
    ],
)


@dg.asset(
    group_name=GROUP,
    kinds={"python", "parquet"},
    check_specs=RAW_SEGMENTS_CHECKS,
    metadata=_column_schema(seg.RAW_SEGMENT_COLUMNS),
    description=(
        "Every training_segments/*.json row and every segment cut from transcripts/*.txt, validated row by row "
        "(bad rows -> rejects/raw_segments.parquet with reasons) and style-scored by the embedding classifier."
    ),
)
def raw_segments(
    context: dg.AssetExecutionContext, config: RawSegmentsConfig, storage: PixelStorage, embedding_model: EmbeddingModel
) -> dg.MaterializeResult:
    paths, settings = storage.paths, config.settings()
    files, notes = seg.list_segment_inputs(paths.data_dir, settings, SEGMENTS_DIR, TRANSCRIPTS_DIR)
    for note in notes:
        context.log.warning(note)
    classifier = build_style_classifier(config.style_encoder, embedding_model.embedder(storage),
                                        embedding_model.static_embedder())
    cache = FileCache(paths.cache_dir / "ingest", "segments") if config.use_file_cache else None
    context.log.info(f"raw_segments: {len(files)} input files under {paths.data_dir}")
    results, cache_stats = seg.ingest_segment_files(files, settings, classifier, cache, context.log.info)
    _warn_unreadable(context, "raw_segments", results)
    rows, rejects = seg.combine_file_results(results)
    outputs = _write_outputs(paths, "raw_segments", rows, rejects)
    voice = _resolve_voice_sources(context, paths, rows, config)

    ingested = checks.Ingested("raw_segments", results, rows, rejects, len(files), notes)
    agreement = style_agreement(rows["style_given"], rows["style_predicted"])
    run_info = {
        "style_encoder": f"{config.style_encoder} ({classifier.embedder.cache_namespace})",
        "classifier_fingerprint": classifier.fingerprint,
        "file_cache": dict(cache_stats),
        "embedding_cache": dict(classifier.embedder.stats),
    }
    report = checks.raw_segments_report(
        ingested, agreement, voice, settings.expert_style_from, run_info, paths.voice_choice_file
    )
    outputs.update(paths.write_outputs("raw_segments", report=report))
    metadata = checks.raw_segments_metadata(report, rows, outputs)
    verdicts = checks.raw_segments_verdicts(
        ingested, raw_segments_schema_problems(rows), agreement, config.max_rejected_share, config.min_style_kappa
    )
    return materialize_result(metadata, verdicts)


# ---------------------------------------------------------------------------------------------------------------
# counseling_conversations and cot_conversations


class CounselingConversationsConfig(dg.Config):
    """Where counseling rows come from and how they are validated.

    counseling_hub_id: a Hugging Face dataset id (e.g. Amod/mental_health_counseling_conversations); empty = the
    env var PIXEL_COUNSELING_HUB_ID, and when that is empty too, local files only (the embedded default).
    """

    counseling_hub_id: str = ""
    counseling_hub_split: str = "train"
    min_chars: int = _CONVERSATIONS.min_chars
    max_chars: int = _CONVERSATIONS.max_chars
    quality_level: str = _CONVERSATIONS.quality_level


class CotConversationsConfig(dg.Config):
    min_chars: int = _CONVERSATIONS.min_chars
    max_chars: int = _CONVERSATIONS.max_chars
    quality_level: str = _CONVERSATIONS.quality_level


def _skipped_notes(context: dg.AssetExecutionContext, paths: PipelinePaths, asset: str, dataset: str) -> list[str]:
    """Entries of the input folder skipped at the data-directory boundary, each logged as a warning."""
    folder, extensions = (COUNSELING_DIR, conv.COUNSELING_EXTENSIONS) if dataset == DATASET_COUNSELING else (COT_DIR, conv.COT_EXTENSIONS)
    _, skipped = scan_input_folder(paths.input_dir(folder), paths.data_dir, extensions)
    notes = [f"skipped {e['path']}: {e['reason']}" for e in skipped]
    for note in notes:
        context.log.warning(f"{asset}: {note}")
    return notes


def _conversation_result(
    context: dg.AssetExecutionContext,
    paths: PipelinePaths,
    asset: str,
    dataset: str,
    results: list[FileResult],
    extra_report: dict[str, Any] | None = None,
    extra_verdicts: Sequence[Verdict] = (),
) -> dg.MaterializeResult:
    """Combine, write and report one conversation asset (shared by counseling and cot)."""
    _warn_unreadable(context, asset, results)
    notes = _skipped_notes(context, paths, asset, dataset)
    rows, rejects = conv.combine_conversation_results(results, dataset, asset)
    outputs = _write_outputs(paths, asset, rows, rejects)
    ingested = checks.Ingested(asset, results, rows, rejects, len(results), notes)
    report = checks.conversation_report(ingested, extra_report)
    outputs.update(paths.write_outputs(asset, report=report))
    verdicts = [*checks.common_verdicts(ingested, conversation_schema_problems(rows, dataset)), *extra_verdicts]
    return materialize_result(checks.conversation_metadata(report, rows, outputs), verdicts)


@dg.asset(
    group_name=GROUP,
    kinds={"python", "parquet"},
    check_specs=_check_specs(
        "counseling_conversations",
        [("hub_reachable", "When a hub id is configured, the rows came from the Hub; a fallback to local files is a warning with the reason.", False)],
    ),
    metadata=_column_schema(conv.CONVERSATION_COLUMNS),
    description=(
        "Counseling conversations (Context -> Response) in the standard conversation format, from the Hugging Face "
        "Hub when configured and reachable, else from counseling/*.{csv,json,jsonl,parquet}."
    ),
)
def counseling_conversations(context: dg.AssetExecutionContext, config: CounselingConversationsConfig, storage: PixelStorage) -> dg.MaterializeResult:
    paths = storage.paths
    settings = settings_from(config, conv.ConversationSettings)
    hub_id = config.counseling_hub_id or os.environ.get("PIXEL_COUNSELING_HUB_ID", "")
    results, origin = conv.load_counseling(
        paths.input_dir(COUNSELING_DIR), paths.data_dir, settings, hub_id, config.counseling_hub_split, context.log.warning
    )
    return _conversation_result(
        context, paths, "counseling_conversations", DATASET_COUNSELING, results,
        {"counseling_origin": origin}, [checks.hub_reachable_verdict(hub_id, origin)],
    )


@dg.asset(
    group_name=GROUP,
    kinds={"python", "parquet"},
    check_specs=_check_specs("cot_conversations"),
    metadata=_column_schema(conv.CONVERSATION_COLUMNS),
    description="Reasoning (chain-of-thought) conversations from cot/*.json|jsonl, roles normalised to client/therapist.",
)
def cot_conversations(context: dg.AssetExecutionContext, config: CotConversationsConfig, storage: PixelStorage) -> dg.MaterializeResult:
    paths = storage.paths
    settings = settings_from(config, conv.ConversationSettings)
    results = conv.load_cot(paths.input_dir(COT_DIR), paths.data_dir, settings)
    return _conversation_result(context, paths, "cot_conversations", DATASET_COT, results)


# ---------------------------------------------------------------------------------------------------------------
# audited_schema


class AuditedSchemaConfig(dg.Config):
    short_words: int = _AUDIT.short_words
    long_words: int = _AUDIT.long_words
    min_non_latin_chars: int = _AUDIT.min_non_latin_chars
    min_repeats: int = _AUDIT.min_repeats
    max_non_latin_share: float = _AUDIT.max_non_latin_share
    max_extreme_length_share: float = _AUDIT.max_extreme_length_share
    max_near_duplicate_share: float = _AUDIT.max_near_duplicate_share
    max_examples: int = _AUDIT.max_examples


def _read_rejects(paths: PipelinePaths, name: str) -> pd.DataFrame:
    file = paths.rejects(name)
    return read_parquet(file) if file.exists() else rejects_frame([])


def _input_file_counts(paths: PipelinePaths) -> dict[str, int]:
    """Files per input folder (0 for a missing folder), as the audit reports them."""
    return {
        name: (sum(1 for p in paths.input_dir(name).iterdir() if p.is_file()) if paths.input_dir(name).is_dir() else 0)
        for name in (SEGMENTS_DIR, TRANSCRIPTS_DIR, COUNSELING_DIR, COT_DIR)
    }


def _voice_sources(paths: PipelinePaths) -> tuple[str, ...]:
    return read_voice_choice(paths.voice_choice_file).sources if paths.voice_choice_file.exists() else ()


@dg.asset(
    group_name=GROUP,
    kinds={"python", "html"},
    deps=["raw_segments", "counseling_conversations", "cot_conversations"],
    check_specs=[
        dg.AssetCheckSpec(
            "anomalies",
            asset="audited_schema",
            description="Non-Latin script runs, extreme lengths and near-duplicate texts stay under their configured shares "
            "(warning: curation filters them, but a jump signals a broken source).",
        )
    ],
    description=(
        "Schema audit of every input: field types and null rates, per-style / per-source counts, length, confidence "
        "and quality distributions, and anomalies. reports/audited_schema/audit.{json,html}."
    ),
)
def audited_schema(context: dg.AssetExecutionContext, config: AuditedSchemaConfig, storage: PixelStorage) -> dg.MaterializeResult:
    paths = storage.paths
    settings = settings_from(config, audit_lib.AuditSettings)
    segments, counseling, cot = (paths.read_table(name) for name in INGESTED)
    segment_files, _ = scan_input_folder(paths.input_dir(SEGMENTS_DIR), paths.data_dir, (".json",))
    input_files = _input_file_counts(paths)
    report = audit_lib.build_audit(
        segments, _read_rejects(paths, "raw_segments"),
        counseling, _read_rejects(paths, "counseling_conversations"),
        cot, _read_rejects(paths, "cot_conversations"),
        segment_files, settings, input_files, _voice_sources(paths),
    )
    images = audit_lib.audit_plots(segments)
    out_dir = paths.report_dir("audited_schema")
    json_path = write_json(report, out_dir / "audit.json")
    html_path = write_text(audit_lib.render_html(report, images), out_dir / "audit.html")

    anomalies = report["segments"]["anomalies"]
    verdict = checks.anomalies_verdict(anomalies, checks.anomaly_shares(anomalies, settings))
    counts = {"segments": len(segments), "counseling": len(counseling), "cot": len(cot)}
    outputs = {"audit_json": path(json_path), "audit_html": path(html_path)}
    context.log.info(f"audited_schema: report at {html_path}")
    return materialize_result(checks.audited_schema_metadata(report, counts, outputs, images), [verdict])


defs = dg.Definitions(assets=[raw_segments, counseling_conversations, cot_conversations, audited_schema])
