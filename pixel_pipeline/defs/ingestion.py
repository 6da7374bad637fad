"""Dagster layer of ingestion: raw_segments, counseling_conversations, cot_conversations, audited_schema.

The logic lives in pixel_pipeline.ingest (pure, file by file); these assets list the input files, call it, write
the tables and rejects atomically, and turn the results into metadata and checks. (No `from __future__ import
annotations` here: Dagster resolves the Config annotations at definition time.)
"""

import json
import os
from collections.abc import Sequence
from typing import Any

import dagster as dg
import pandas as pd

from pixel_pipeline.core.markdown import markdown_table
from pixel_pipeline.core.io import read_parquet, write_json, write_parquet, write_text
from pixel_pipeline.core.records import (
    DATASET_COT,
    DATASET_COUNSELING,
    STYLES,
    VoiceRule,
    VoiceSourceError,
    choose_voice_sources,
    read_voice_choice,
    rejects_frame,
)
from pixel_pipeline.core.settings import COT_DIR, COUNSELING_DIR, SEGMENTS_DIR, TRANSCRIPTS_DIR, PipelinePaths
from pixel_pipeline.defs.resources import EmbeddingModel, PixelStorage
from pixel_pipeline.ingest import audit as audit_lib
from pixel_pipeline.ingest import conversations as conv
from pixel_pipeline.ingest import segments as seg
from pixel_pipeline.ingest.cache import FileCache, FileResult
from pixel_pipeline.ingest.inputs import scan_input_folder
from pixel_pipeline.ingest.schema import conversation_schema_problems, raw_segments_schema_problems
from pixel_pipeline.ingest.style import build_style_classifier, confusion_markdown, style_agreement
from pixel_pipeline.ingest.text import count_invisible

GROUP = "ingestion"
WARN = dg.AssetCheckSeverity.WARN
ERROR = dg.AssetCheckSeverity.ERROR


# ---------------------------------------------------------------------------------------------------------------
# shared helpers


def _counts_md(counts: dict[str, int], key: str = "value") -> str:
    return markdown_table([{key: k, "count": v} for k, v in counts.items()], [key, "count"])


def _invalid_files(results: Sequence[FileResult]) -> list[dict[str, str]]:
    return [{"file": r.input_file, "reason": r.file_error} for r in results if r.file_error]


def _write_outputs(paths: PipelinePaths, name: str, rows: pd.DataFrame, rejects: pd.DataFrame) -> dict[str, Any]:
    table = write_parquet(rows, paths.table(name))
    rejects_path = write_parquet(rejects if len(rejects) else rejects_frame([]), paths.rejects(name))
    return {"table_path": dg.MetadataValue.path(str(table)), "rejects_path": dg.MetadataValue.path(str(rejects_path))}


def _column_schema(schema: dict[str, str]) -> dg.TableSchema:
    """The contract columns, shown in the UI's asset overview."""
    return dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in schema.items()])


def _common_checks(
    asset: str, results: Sequence[FileResult], rows: pd.DataFrame, rejects: pd.DataFrame, schema_problems: list[str], n_inputs: int
) -> list[dg.AssetCheckResult]:
    acc = seg.accounting(results, rows, rejects)
    invalid = _invalid_files(results)
    files_md = markdown_table(
        [{"file": k, **v} for k, v in acc["per_file"].items()][:50], ["file", "rows_in", "accepted", "quarantined"]
    )
    return [
        dg.AssetCheckResult(
            check_name="schema",
            passed=not schema_problems,
            severity=ERROR,
            metadata={"problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in schema_problems) or "_none_"), "rows": len(rows)},
            description="columns, dtypes, ids and value ranges match docs/CONTRACTS.md" if not schema_problems else schema_problems[0],
        ),
        dg.AssetCheckResult(
            check_name="record_accounting",
            passed=bool(acc["balanced"]),
            severity=ERROR,
            metadata={
                "rows_in": acc["rows_in"],
                "accepted": acc["accepted"],
                "quarantined": acc["quarantined"],
                "mismatched_files": dg.MetadataValue.json(acc["mismatched_files"]),
                "per_file": dg.MetadataValue.md(files_md),
            },
            description=f"rows in {acc['rows_in']} = accepted {acc['accepted']} + quarantined {acc['quarantined']}"
            + ("" if acc["balanced"] else f"; mismatch in {list(acc['mismatched_files']) + acc['unknown_files']}"),
        ),
        dg.AssetCheckResult(
            check_name="not_empty",
            passed=n_inputs == 0 or len(rows) > 0,
            severity=ERROR,
            metadata={"input_files": n_inputs, "rows": len(rows), "quarantined": len(rejects)},
            description=(
                "no input files: an empty table is expected" if n_inputs == 0 else
                f"{len(rows)} rows accepted from {n_inputs} input files" if len(rows) else
                f"{n_inputs} input files but they hold no rows" if acc["rows_in"] == 0 else
                f"{n_inputs} input files but every row was quarantined; see rejects/{asset}.parquet"
            ),
        ),
        dg.AssetCheckResult(
            check_name="invalid_files",
            passed=not invalid,
            severity=WARN,
            metadata={"invalid_files": dg.MetadataValue.md(markdown_table(invalid, ["file", "reason"])), "count": len(invalid)},
            description="every input file was readable" if not invalid else f"{len(invalid)} unreadable input files (each has one reject row): "
            + "; ".join(f"{i['file']}: {i['reason']}" for i in invalid[:3]),
        ),
    ]


def _check_specs(asset: str, extra: Sequence[tuple[str, str, bool]] = ()) -> list[dg.AssetCheckSpec]:
    base = [
        ("schema", f"{asset} has exactly the columns, dtypes, ids and value ranges of docs/CONTRACTS.md.", True),
        ("record_accounting", "Every input row is accepted or quarantined: rows in (counted while parsing) = rows accepted + rows quarantined, per input file.", True),
        ("not_empty", "When input files exist, at least one row is accepted (an empty table would starve every downstream asset).", False),
        ("invalid_files", "Every input file could be read; unreadable files are named with the reason (warning: the other files still load).", False),
    ]
    return [dg.AssetCheckSpec(name, asset=asset, description=desc, blocking=blocking) for name, desc, blocking in [*base, *extra]]


def _preview(df: pd.DataFrame, columns: Sequence[str], n: int = 5, width: int = 80) -> str:
    """The first rows as a markdown table, long strings cut to `width` characters."""
    if df.empty:
        return "_empty_"
    head = df[list(columns)].head(n).to_dict("records")
    cut = [{k: (str(v)[:width] + "…" if isinstance(v, str) and len(v) > width else v) for k, v in r.items()} for r in head]
    return markdown_table(cut, list(columns))


def _skipped_md(notes: Sequence[str]) -> str:
    """Entries skipped at the data-directory boundary (dangling links, directories, links outside), or _none_."""
    skipped = [n.removeprefix("skipped ") for n in notes if n.startswith("skipped ")]
    return "\n".join(f"- {n}" for n in skipped) or "_none_"


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

    min_words: int = 5
    max_words: int = 5000
    max_chars: int = 100_000
    max_confidence_given: float = 10.0
    required_fields: list[str] = ["text", "style"]
    target_words: int = 350
    min_tail_words: int = 100
    max_sentence_words: int = 80
    transcript_source: str = seg.UNKNOWN_SOURCE
    expert_style_from: str = "auto"
    min_style_confidence: float = 0.7
    style_encoder: str = "static"  # "static" (distilled from the embedding model, fast) or "sentence" (the model itself)
    voice_sources: list[str] = []
    voice_min_lead_ratio: float = VoiceRule.min_lead_ratio
    voice_min_segments: int = VoiceRule.min_segments
    use_file_cache: bool = True
    max_quarantine_share: float = 0.2
    min_style_kappa: float = 0.2

    def settings(self) -> seg.SegmentSettings:
        return seg.SegmentSettings(
            min_words=self.min_words,
            max_words=self.max_words,
            max_chars=self.max_chars,
            max_confidence_given=self.max_confidence_given,
            required_fields=tuple(self.required_fields),
            target_words=self.target_words,
            min_tail_words=self.min_tail_words,
            max_sentence_words=self.max_sentence_words,
            transcript_source=self.transcript_source,
            expert_style_from=self.expert_style_from,
            min_style_confidence=self.min_style_confidence,
        )


RAW_SEGMENTS_CHECKS = _check_specs(
    "raw_segments",
    [
        ("quarantine_share", "At most `max_quarantine_share` of input rows are quarantined; more usually means a format change, not bad rows.", False),
        ("style_agreement", "Given style labels and the embedding classifier agree beyond chance (Cohen's kappa >= `min_style_kappa`); per-style agreement and the confusion table are in the metadata.", False),
        ("given_confidence_is_probability", "Share of given `confidence` values outside [0, 1]: when any exist, the field is not a probability and must not be used as one (use style_confidence).", False),
    ],
)


@dg.asset(
    group_name=GROUP,
    kinds={"python", "parquet"},
    check_specs=RAW_SEGMENTS_CHECKS,
    description=(
        "Every training_segments/*.json row and every segment cut from transcripts/*.txt, validated row by row "
        "(bad rows -> rejects/raw_segments.parquet with reasons) and style-scored by the embedding classifier."
    ),
)
def raw_segments(
    context: dg.AssetExecutionContext, config: RawSegmentsConfig, storage: PixelStorage, embedding_model: EmbeddingModel
) -> dg.MaterializeResult:
    paths = storage.paths
    settings = config.settings()
    files, notes = seg.list_segment_inputs(paths.data_dir, settings, SEGMENTS_DIR, TRANSCRIPTS_DIR)
    for note in notes:
        context.log.warning(note)
    classifier = build_style_classifier(config.style_encoder, embedding_model.embedder(storage),
                                        embedding_model.static_embedder())
    cache = FileCache(paths.cache_dir / "ingest", "segments") if config.use_file_cache else None
    context.log.info(f"raw_segments: {len(files)} input files under {paths.data_dir}")
    results, cache_stats = seg.ingest_segment_files(files, settings, classifier, cache, context.log.info)
    for r in results:
        if r.file_error:
            context.log.warning(f"raw_segments: {r.input_file} skipped: {r.file_error}")
    rows, rejects = seg.combine_file_results(results)
    out_meta = _write_outputs(paths, "raw_segments", rows, rejects)
    voice = _resolve_voice_sources(context, paths, rows, config)

    agreement = style_agreement(rows["style_given"], rows["style_predicted"])
    acc = seg.accounting(results, rows, rejects)
    reasons = seg.reject_reason_counts(rejects)
    invalid = _invalid_files(results)
    conf = rows["confidence_given"].dropna()
    conf_outside = int(((conf < 0) | (conf > 1)).sum())
    quarantine_share = acc["quarantined"] / acc["rows_in"] if acc["rows_in"] else 0.0
    kappa = agreement.get("kappa")
    sanitised = sum(int(r.notes.get("file_paths_sanitised", 0)) for r in results)

    checks = _common_checks("raw_segments", results, rows, rejects, raw_segments_schema_problems(rows), len(files))
    checks += [
        dg.AssetCheckResult(
            check_name="quarantine_share",
            passed=quarantine_share <= config.max_quarantine_share,
            severity=WARN,
            metadata={"quarantine_share": round(quarantine_share, 4), "max_quarantine_share": config.max_quarantine_share, "reasons": dg.MetadataValue.md(_counts_md(reasons, "reason"))},
            description=f"{quarantine_share:.1%} of {acc['rows_in']} input rows quarantined (limit {config.max_quarantine_share:.0%})",
        ),
        dg.AssetCheckResult(
            check_name="style_agreement",
            passed=kappa is None or kappa >= config.min_style_kappa,
            severity=WARN,
            metadata={
                "labelled_rows": agreement["n_labelled"],
                "agreement": agreement.get("agreement"),
                "chance_agreement": agreement.get("chance_agreement"),
                "kappa": kappa,
                "min_style_kappa": config.min_style_kappa,
                "confusion": dg.MetadataValue.md(confusion_markdown(agreement)),
            },
            description="no labelled segments" if kappa is None else (
                f"given vs predicted style agree on {agreement['agreement']:.0%} (chance {agreement['chance_agreement']:.0%}, "
                f"kappa {kappa:.2f}, limit {config.min_style_kappa})"
            ),
        ),
        dg.AssetCheckResult(
            check_name="given_confidence_is_probability",
            passed=conf_outside == 0,
            severity=WARN,
            metadata={
                "outside_unit_interval": conf_outside,
                "share": round(conf_outside / len(conf), 4) if len(conf) else 0.0,
                "max_confidence_given": float(conf.max()) if len(conf) else None,
            },
            description=f"{conf_outside} of {len(conf)} given confidence values lie outside [0, 1]"
            + (": treat confidence_given as an unscaled score" if conf_outside else ""),
        ),
    ]
    by_origin = rows["origin"].value_counts().to_dict()
    per_style = [
        {"style": s, "given": int((rows["style_given"] == s).sum()), "predicted": int((rows["style_predicted"] == s).sum()), "expert style": int((rows["style"] == s).sum())}
        for s in STYLES
    ]
    metadata = {
        "dagster/row_count": len(rows),
        "dagster/column_schema": _column_schema(seg.RAW_SEGMENT_COLUMNS),
        **out_meta,
        "rows_in": acc["rows_in"],
        "accepted": acc["accepted"],
        "quarantined": acc["quarantined"],
        "input_files": len(files),
        "by_origin": dg.MetadataValue.json({str(k): int(v) for k, v in by_origin.items()}),
        "invalid_files": dg.MetadataValue.md(markdown_table(invalid, ["file", "reason"])),
        "reject_reasons": dg.MetadataValue.md(_counts_md(reasons, "reason")),
        "per_style": dg.MetadataValue.md(markdown_table(per_style, ["style", "given", "predicted", "expert style"])),
        "style_agreement": agreement.get("agreement"),
        "style_kappa": kappa,
        "style_confusion": dg.MetadataValue.md(confusion_markdown(agreement)),
        "style_per_label": dg.MetadataValue.json(agreement.get("per_style", {})),
        "expert_style_from": settings.expert_style_from,
        "style_from_prediction_share": round(float((rows["style"] == rows["style_predicted"]).mean()), 4) if len(rows) else None,
        "style_encoder": f"{config.style_encoder} ({classifier.embedder.cache_namespace})",
        "classifier_fingerprint": classifier.fingerprint,
        "file_cache": dg.MetadataValue.json(cache_stats),
        "embedding_cache": dg.MetadataValue.json(dict(classifier.embedder.stats)),
        "file_paths_sanitised": sanitised,
        "sources": int(rows["source"].nunique()),
        "voice_sources": dg.MetadataValue.json(list(voice.sources)),
        "voice_choice": voice.describe(),
        "voice_candidates": dg.MetadataValue.md(markdown_table(voice.candidates, ["source", "segments"])),
        "voice_share": round(float(rows["source"].isin(list(voice.sources)).mean()), 4) if len(rows) else None,
        "voice_choice_file": dg.MetadataValue.path(str(paths.voice_choice_file)),
        "texts_with_invisible_characters": int(rows["text"].map(count_invisible).gt(0).sum()) if len(rows) else 0,
        "skipped_inputs": dg.MetadataValue.md(_skipped_md(notes)),
        "preview": dg.MetadataValue.md(_preview(rows, ["segment_id", "origin", "source", "style_given", "style_predicted", "style_confidence", "word_count", "text"])),
    }
    if notes:
        metadata["notes"] = dg.MetadataValue.md("\n".join(f"- {n}" for n in notes))
    return dg.MaterializeResult(metadata=metadata, check_results=checks)


# ---------------------------------------------------------------------------------------------------------------
# counseling_conversations and cot_conversations


class CounselingConversationsConfig(dg.Config):
    """Where counseling rows come from and how they are validated.

    counseling_hub_id: a Hugging Face dataset id (e.g. Amod/mental_health_counseling_conversations); empty = the
    env var PIXEL_COUNSELING_HUB_ID, and when that is empty too, local files only (the embedded default).
    """

    counseling_hub_id: str = ""
    counseling_hub_split: str = "train"
    min_chars: int = 2
    max_chars: int = 50_000
    quality_level: str = "unrated"


class CotConversationsConfig(dg.Config):
    min_chars: int = 2
    max_chars: int = 50_000
    quality_level: str = "unrated"


def _conversation_result(
    context: dg.AssetExecutionContext,
    paths: PipelinePaths,
    asset: str,
    dataset: str,
    results: list[FileResult],
    n_inputs: int,
    extra_meta: dict[str, Any],
    extra_checks: list[dg.AssetCheckResult] = (),
) -> dg.MaterializeResult:
    for r in results:
        if r.file_error:
            context.log.warning(f"{asset}: {r.input_file} skipped: {r.file_error}")
    extensions = conv.COUNSELING_EXTENSIONS if dataset == DATASET_COUNSELING else conv.COT_EXTENSIONS
    _, skipped = scan_input_folder(paths.input_dir(COUNSELING_DIR if dataset == DATASET_COUNSELING else COT_DIR), paths.data_dir, extensions)
    notes = [f"skipped {e['path']}: {e['reason']}" for e in skipped]
    for note in notes:
        context.log.warning(f"{asset}: {note}")
    rows, rejects = conv.combine_conversation_results(results, dataset, asset)
    out_meta = _write_outputs(paths, asset, rows, rejects)
    acc = seg.accounting(results, rows, rejects)
    checks = _common_checks(asset, results, rows, rejects, conversation_schema_problems(rows, dataset), n_inputs) + list(extra_checks)
    metadata = {
        "dagster/row_count": len(rows),
        "dagster/column_schema": _column_schema(conv.CONVERSATION_COLUMNS),
        **out_meta,
        "rows_in": acc["rows_in"],
        "accepted": acc["accepted"],
        "quarantined": acc["quarantined"],
        "input_files": n_inputs,
        "invalid_files": dg.MetadataValue.md(markdown_table(_invalid_files(results), ["file", "reason"])),
        "reject_reasons": dg.MetadataValue.md(_counts_md(seg.reject_reason_counts(rejects), "reason")),
        "per_source": dg.MetadataValue.json({str(k): int(v) for k, v in rows["source"].value_counts().head(20).items()}),
        "repeated_questions": dg.MetadataValue.json(conv.repeated_questions(rows)),
        "n_turns": dg.MetadataValue.json({str(k): int(v) for k, v in rows["n_turns"].value_counts().sort_index().items()}),
        "preview": dg.MetadataValue.md(_preview(rows, ["record_id", "source", "n_turns", "prompt", "response"])),
        "skipped_inputs": dg.MetadataValue.md(_skipped_md(notes)),
        **extra_meta,
    }
    return dg.MaterializeResult(metadata=metadata, check_results=checks)


@dg.asset(
    group_name=GROUP,
    kinds={"python", "parquet"},
    check_specs=_check_specs(
        "counseling_conversations",
        [("hub_reachable", "When a hub id is configured, the rows came from the Hub; a fallback to local files is a warning with the reason.", False)],
    ),
    description=(
        "Counseling conversations (Context -> Response) in the standard conversation format, from the Hugging Face "
        "Hub when configured and reachable, else from counseling/*.{csv,json,jsonl,parquet}."
    ),
)
def counseling_conversations(context: dg.AssetExecutionContext, config: CounselingConversationsConfig, storage: PixelStorage) -> dg.MaterializeResult:
    paths = storage.paths
    settings = conv.ConversationSettings(min_chars=config.min_chars, max_chars=config.max_chars, quality_level=config.quality_level)
    hub_id = config.counseling_hub_id or os.environ.get("PIXEL_COUNSELING_HUB_ID", "")
    results, origin = conv.load_counseling(
        paths.input_dir(COUNSELING_DIR), paths.data_dir, settings, hub_id, config.counseling_hub_split, context.log.warning
    )
    from_hub = origin.startswith("hub ")
    hub_check = dg.AssetCheckResult(
        check_name="hub_reachable",
        passed=not hub_id or from_hub,
        severity=WARN,
        metadata={"counseling_origin": origin, "counseling_hub_id": hub_id or "(none)"},
        description=origin if hub_id else "no hub id configured: local files by design",
    )
    return _conversation_result(
        context, paths, "counseling_conversations", DATASET_COUNSELING, results, len(results),
        {"counseling_origin": origin}, [hub_check],
    )


@dg.asset(
    group_name=GROUP,
    kinds={"python", "parquet"},
    check_specs=_check_specs("cot_conversations"),
    description="Reasoning (chain-of-thought) conversations from cot/*.json|jsonl, roles normalised to client/therapist.",
)
def cot_conversations(context: dg.AssetExecutionContext, config: CotConversationsConfig, storage: PixelStorage) -> dg.MaterializeResult:
    paths = storage.paths
    settings = conv.ConversationSettings(min_chars=config.min_chars, max_chars=config.max_chars, quality_level=config.quality_level)
    results = conv.load_cot(paths.input_dir(COT_DIR), paths.data_dir, settings)
    return _conversation_result(context, paths, "cot_conversations", DATASET_COT, results, len(results), {})


# ---------------------------------------------------------------------------------------------------------------
# audited_schema


class AuditedSchemaConfig(dg.Config):
    short_words: int = 50
    long_words: int = 2000
    min_non_latin_chars: int = 3
    min_repeats: int = 5
    max_non_latin_share: float = 0.05
    max_extreme_length_share: float = 0.10
    max_near_duplicate_share: float = 0.05
    max_examples: int = 5


def _read_rejects(paths: PipelinePaths, name: str) -> pd.DataFrame:
    path = paths.rejects(name)
    return read_parquet(path) if path.exists() else rejects_frame([])


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
    settings = audit_lib.AuditSettings(**config.model_dump())
    segments = paths.read_table("raw_segments")
    counseling = paths.read_table("counseling_conversations")
    cot = paths.read_table("cot_conversations")
    seg_dir = paths.input_dir(SEGMENTS_DIR)
    segment_files, _ = scan_input_folder(seg_dir, paths.data_dir, (".json",))
    input_files = {
        name: (sum(1 for p in paths.input_dir(name).iterdir() if p.is_file()) if paths.input_dir(name).is_dir() else 0)
        for name in (SEGMENTS_DIR, TRANSCRIPTS_DIR, COUNSELING_DIR, COT_DIR)
    }
    report = audit_lib.build_audit(
        segments, _read_rejects(paths, "raw_segments"),
        counseling, _read_rejects(paths, "counseling_conversations"),
        cot, _read_rejects(paths, "cot_conversations"),
        segment_files, settings, input_files,
        read_voice_choice(paths.voice_choice_file).sources if paths.voice_choice_file.exists() else (),
    )
    images = audit_lib.audit_plots(segments)
    out_dir = paths.report_dir("audited_schema")
    json_path = write_json(report, out_dir / "audit.json")
    html_path = write_text(audit_lib.render_html(report, images), out_dir / "audit.html")

    anomalies = report["segments"]["anomalies"]
    shares = {
        "non_latin_script_runs": (anomalies["non_latin_script_runs"]["share"] or 0.0, settings.max_non_latin_share),
        "extreme_lengths": (anomalies["extreme_lengths"]["share"] or 0.0, settings.max_extreme_length_share),
        "near_duplicates": (anomalies["duplicate_texts"]["near_duplicate_share"] or 0.0, settings.max_near_duplicate_share),
    }
    over = {k: v for k, v in shares.items() if v[0] > v[1]}
    check = dg.AssetCheckResult(
        check_name="anomalies",
        passed=not over,
        severity=WARN,
        metadata={
            "shares": dg.MetadataValue.md(markdown_table([{"anomaly": k, "share": f"{s:.1%}", "limit": f"{lim:.0%}"} for k, (s, lim) in shares.items()], ["anomaly", "share", "limit"])),
            "anomalies": dg.MetadataValue.json(json.loads(json.dumps(anomalies, default=str))),
        },
        description="anomaly shares under their limits" if not over else "over the limit: " + ", ".join(f"{k} {s:.1%} > {lim:.0%}" for k, (s, lim) in over.items()),
    )
    rows_audited = len(segments) + len(counseling) + len(cot)
    seg_report = report["segments"]
    metadata: dict[str, Any] = {
        "dagster/row_count": rows_audited,
        "audit_json": dg.MetadataValue.path(str(json_path)),
        "audit_html": dg.MetadataValue.path(str(html_path)),
        "segments": len(segments),
        "counseling": len(counseling),
        "cot": len(cot),
        "input_files": dg.MetadataValue.json(input_files),
        "segment_fields": dg.MetadataValue.md(
            markdown_table(
                [{"field": f, "types": json.dumps(v["types"]), "missing_rate": v["missing_rate"], "null_rate": v["null_rate"]} for f, v in seg_report["raw_fields"]["fields"].items()],
                ["field", "types", "missing_rate", "null_rate"],
            )
        ),
        "per_source": dg.MetadataValue.md(_counts_md(dict(list(seg_report["per_source"].items())[:15]), "source")),
        "word_count_by_style": dg.MetadataValue.md(
            markdown_table([{"style": s, **d} for s, d in seg_report["word_count_by_style"].items()], ["style", "count", "min", "median", "mean", "p95", "max"])
        ),
        "confidence_given": dg.MetadataValue.json(seg_report["confidence_given"]),
        "quality": dg.MetadataValue.json(seg_report["quality"]),
        "anomalies": dg.MetadataValue.json(json.loads(json.dumps(anomalies, default=str))),
    }
    for title, md in images.items():
        metadata[title] = dg.MetadataValue.md(md)
    context.log.info(f"audited_schema: report at {html_path}")
    return dg.MaterializeResult(metadata=metadata, check_results=[check])


defs = dg.Definitions(assets=[raw_segments, counseling_conversations, cot_conversations, audited_schema])
