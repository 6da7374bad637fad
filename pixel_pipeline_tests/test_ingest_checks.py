"""Ingestion's check builders and metadata (pixel_pipeline.ingest.checks), called directly on tiny hand-made inputs."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pixel_pipeline.core.records import DATASET_SEGMENTS, VoiceChoice, reject_row, rejects_frame
from pixel_pipeline.core.verdicts import ERROR, WARN
from pixel_pipeline.ingest import checks
from pixel_pipeline.ingest.audit import AuditSettings
from pixel_pipeline.ingest.cache import FileResult
from pixel_pipeline.ingest.style import style_agreement


def segment_rows(input_file: str, n: int, **columns) -> pd.DataFrame:
    base = {
        "segment_id": [f"s{i}" for i in range(n)],
        "text": [f"text number {i}" for i in range(n)],
        "origin": ["segments_file"] * n,
        "input_file": [input_file] * n,
        "source": ["Chan"] * n,
        "style_given": ["empathetic"] * n,
        "style_predicted": ["empathetic"] * n,
        "style": ["empathetic"] * n,
        "style_confidence": [0.9] * n,
        "confidence_given": [0.5] * n,
        "word_count": [3] * n,
    }
    base.update(columns)
    return pd.DataFrame(base)


def rejects(*input_files: str) -> pd.DataFrame:
    return rejects_frame(
        [reject_row(DATASET_SEGMENTS, f"r{i}", "raw_segments", ["too_short: 1 word"], {"input_file": f}) for i, f in enumerate(input_files)]
    )


def ingested(results, rows, rejected, n_inputs=None, notes=()) -> checks.Ingested:
    return checks.Ingested("raw_segments", results, rows, rejected, len(results) if n_inputs is None else n_inputs, notes)


def balanced_segments() -> checks.Ingested:
    """a.json: 3 rows in, 2 accepted + 1 rejected; b.json unreadable (1 row in, 1 reject)."""
    results = [
        FileResult("training_segments/a.json", None, rejects_frame([]), rows_in=3),
        FileResult("training_segments/b.json", None, rejects_frame([]), rows_in=1, file_error="not valid JSON"),
    ]
    return ingested(results, segment_rows("training_segments/a.json", 2), rejects("training_segments/a.json", "training_segments/b.json"))


def by_name(verdicts) -> dict:
    return {v.check_name: v for v in verdicts}


# ---------------------------------------------------------------------------------------------------------------
# the four checks of every ingestion asset


def test_schema_check_passes_without_problems_and_fails_with_the_first_problem_as_description():
    ok = checks.schema_verdict([], 4)
    assert ok.passed and ok.severity == ERROR and ok.metadata["rows"] == 4
    bad = checks.schema_verdict(["column text is int64", "ids differ"], 4)
    assert not bad.passed and bad.description == "column text is int64" and "- ids differ" in bad.metadata["problems"]["raw_value"]


def test_row_accounting_passes_when_rows_in_equal_kept_plus_rejected_per_file():
    verdict = checks.row_accounting_verdict(balanced_segments().accounting)
    assert verdict.passed and verdict.severity == ERROR
    assert verdict.description == "rows in 4 = kept 2 + rejected 2"
    assert (verdict.metadata["rows_in"], verdict.metadata["kept"], verdict.metadata["rejected"]) == (4, 2, 2)


def test_row_accounting_fails_and_names_the_file_when_a_row_is_lost():
    results = [FileResult("training_segments/a.json", None, rejects_frame([]), rows_in=3)]
    lost = ingested(results, segment_rows("training_segments/a.json", 2), rejects())
    verdict = checks.row_accounting_verdict(lost.accounting)
    assert not verdict.passed and "mismatch in ['training_segments/a.json']" in verdict.description
    assert verdict.metadata["mismatched_files"]["raw_value"] == {"training_segments/a.json": {"rows_in": 3, "kept": 2, "rejected": 0}}


def test_row_accounting_fails_for_rows_from_a_file_that_was_never_read():
    results = [FileResult("training_segments/a.json", None, rejects_frame([]), rows_in=1)]
    stray = ingested(results, segment_rows("training_segments/a.json", 1), rejects("training_segments/ghost.json"))
    verdict = checks.row_accounting_verdict(stray.accounting)
    assert not verdict.passed and "training_segments/ghost.json" in verdict.description


def test_not_empty_passes_with_no_input_files_and_with_kept_rows():
    assert checks.not_empty_verdict("cot_conversations", 0, 0, 0, 0).passed
    verdict = checks.not_empty_verdict("cot_conversations", 2, 5, 1, 6)
    assert verdict.passed and verdict.description == "5 rows kept from 2 input files"


def test_not_empty_fails_when_every_row_was_rejected():
    verdict = checks.not_empty_verdict("cot_conversations", 1, 0, 3, 3)
    assert not verdict.passed and verdict.severity == ERROR
    assert "every row was rejected; see rejects/cot_conversations.parquet" in verdict.description
    assert verdict.metadata == {"input_files": 1, "rows": 0, "rejected": 3}


def test_not_empty_fails_when_the_input_files_hold_no_rows():
    verdict = checks.not_empty_verdict("raw_segments", 2, 0, 0, 0)
    assert not verdict.passed and verdict.description == "2 input files but they hold no rows"


def test_invalid_files_warns_and_names_each_unreadable_file_with_its_reason():
    assert checks.invalid_files_verdict([]).passed
    verdict = checks.invalid_files_verdict(balanced_segments().invalid_files)
    assert not verdict.passed and verdict.severity == WARN and verdict.metadata["count"] == 1
    assert verdict.description == "1 unreadable input files (each has one reject row): training_segments/b.json: not valid JSON"


def test_common_verdicts_are_the_four_checks_every_ingestion_asset_declares():
    verdicts = checks.common_verdicts(balanced_segments(), [])
    assert [v.check_name for v in verdicts] == ["schema", "row_accounting", "not_empty", "invalid_files"]
    assert [v.passed for v in verdicts] == [True, True, True, False]


# ---------------------------------------------------------------------------------------------------------------
# raw_segments


def test_rejected_share_passes_at_the_limit_and_warns_over_it():
    at_limit = checks.rejected_share_verdict(10, 2, {"too_short": 2}, 0.2)
    assert at_limit.passed and at_limit.check_name == "rejected_share"
    assert at_limit.metadata["rejected_share"] == 0.2 and at_limit.metadata["max_rejected_share"] == 0.2
    over = checks.rejected_share_verdict(10, 3, {"too_short": 3}, 0.2)
    assert not over.passed and over.severity == WARN and over.description == "30.0% of 10 input rows rejected (limit 20%)"


def test_rejected_share_of_no_input_rows_is_zero():
    assert checks.rejected_share_verdict(0, 0, {}, 0.0).metadata["rejected_share"] == 0.0


def test_style_agreement_passes_without_labelled_rows_and_warns_under_the_minimum_kappa():
    nothing = style_agreement(pd.Series([None, None], dtype="object"), pd.Series(["empathetic", "practical"]))
    assert checks.style_agreement_verdict(nothing, 0.2).description == "no labelled segments"
    given = pd.Series(["empathetic", "practical", "educational", "therapeutic"])
    agree = checks.style_agreement_verdict(style_agreement(given, given), 0.2)
    assert agree.passed and agree.metadata["kappa"] == pytest.approx(1.0)
    shuffled = pd.Series(["practical", "educational", "therapeutic", "empathetic"])
    disagree = checks.style_agreement_verdict(style_agreement(given, shuffled), 0.2)
    assert not disagree.passed and disagree.severity == WARN and "limit 0.2" in disagree.description


def test_given_confidence_check_warns_when_a_value_is_not_a_probability():
    ok = checks.given_confidence_verdict(pd.Series([0.1, None, 1.0]))
    assert ok.passed and ok.metadata["outside_unit_interval"] == 0
    bad = checks.given_confidence_verdict(pd.Series([0.5, 7.4, None]))
    assert not bad.passed and bad.severity == WARN
    assert bad.description == "1 of 2 given confidence values lie outside [0, 1]: treat confidence_given as an unscaled score"
    assert bad.metadata["max_confidence_given"] == 7.4 and bad.metadata["share"] == 0.5


def test_given_confidence_check_passes_without_given_values():
    verdict = checks.given_confidence_verdict(pd.Series([None], dtype="float64"))
    assert verdict.passed and verdict.metadata["max_confidence_given"] is None


def test_raw_segments_verdicts_are_the_declared_checks_in_order():
    data = balanced_segments()
    agreement = style_agreement(data.rows["style_given"], data.rows["style_predicted"])
    names = [v.check_name for v in checks.raw_segments_verdicts(data, [], agreement, 0.2, 0.2)]
    assert names == ["schema", "row_accounting", "not_empty", "invalid_files", "rejected_share", "style_agreement",
                     "given_confidence_is_probability"]


def segments_report(data: checks.Ingested, voice: VoiceChoice, run_info=None, choice_file=None) -> dict:
    agreement = style_agreement(data.rows["style_given"], data.rows["style_predicted"])
    return checks.raw_segments_report(data, agreement, voice, "auto", run_info or {}, choice_file)


RAW_SEGMENTS_HEADLINE = {"dagster/row_count", "path", "rejects_path", "report_path", "rows_in", "kept", "rejected",
                         "voice_choice", "file_cache", "reject_reasons", "preview"}


def test_raw_segments_metadata_is_the_headline_picked_from_the_report():
    data = balanced_segments()
    voice = VoiceChoice(("Chan",), "detected", {"Chan": 2}, 2, [{"source": "Chan", "segments": 2}])
    report = segments_report(data, voice, {"style_encoder": "static", "file_cache": {"files": 2, "cache_hits": 1}})
    outputs = {key: {"type": "path", "raw_value": f"/t/{key}"} for key in ("path", "rejects_path", "report_path")}
    meta = checks.raw_segments_metadata(report, data.rows, outputs)
    assert set(meta) == RAW_SEGMENTS_HEADLINE
    assert (meta["dagster/row_count"], meta["rows_in"], meta["kept"], meta["rejected"]) == (2, 4, 2, 2)
    assert meta["path"] == outputs["path"] and meta["report_path"] == outputs["report_path"]
    assert meta["voice_choice"] == voice.describe() and meta["file_cache"]["raw_value"] == {"files": 2, "cache_hits": 1}
    assert meta["reject_reasons"]["raw_value"].startswith("| reason | count |")
    assert "| segment_id |" in meta["preview"]["raw_value"]


def test_raw_segments_report_keeps_every_figure_the_metadata_leaves_out():
    data = balanced_segments()
    voice = VoiceChoice(("Chan",), "detected", {"Chan": 2}, 2, [{"source": "Chan", "segments": 2}])
    report = segments_report(data, voice, {"style_encoder": "static", "classifier_fingerprint": "f"})
    assert json.loads(json.dumps(report)) == report, "plain JSON"
    assert (report["rows_in"], report["kept"], report["rejected"], report["input_files"]) == (4, 2, 2, 2)
    assert report["invalid_files"] == [{"file": "training_segments/b.json", "reason": "not valid JSON"}]
    assert report["reject_reasons"] == {"too_short": 2} and report["by_origin"] == {"segments_file": 2}
    assert report["voice_share"] == 1.0 and report["voice_sources"] == ["Chan"] and report["sources"] == 1
    assert report["voice_candidates"] == [{"source": "Chan", "segments": 2}]
    assert report["style_kappa"] is not None and report["style_confusion"]["empathetic"]["empathetic"] == 2
    assert {"style": "empathetic", "given": 2, "predicted": 2, "expert style": 2} in report["per_style"]
    assert report["style_encoder"] == "static" and report["classifier_fingerprint"] == "f"
    assert report["expert_style_from"] == "auto" and report["style_from_prediction_share"] == 1.0
    assert (report["file_paths_sanitised"], report["texts_with_invisible_characters"]) == (0, 0)
    assert report["skipped_inputs"] == [] and report["notes"] == []


def test_raw_segments_report_names_where_the_voice_choice_was_written_when_given():
    data = balanced_segments()
    voice = VoiceChoice(("Chan",), "asset setting", {"Chan": 2}, 2)
    assert segments_report(data, voice, choice_file="/t/voice_choice.json")["voice_choice_file"] == "/t/voice_choice.json"
    assert "voice_choice_file" not in segments_report(data, voice)


def test_raw_segments_metadata_lists_notes_only_when_there_are_some():
    data = checks.Ingested("raw_segments", [], segment_rows("x", 0), rejects(), 0, ["skipped data/link: outside the data folder"])
    report = segments_report(data, VoiceChoice((), "none (no segments)", {}, 0))
    assert report["skipped_inputs"] == ["data/link: outside the data folder"] and report["voice_share"] is None
    meta = checks.raw_segments_metadata(report, data.rows, {})
    assert meta["notes"]["raw_value"] == "- skipped data/link: outside the data folder"
    assert meta["preview"]["raw_value"] == "_empty_" and "file_cache" not in meta
    assert "notes" not in checks.raw_segments_metadata(segments_report(balanced_segments(), VoiceChoice((), "x", {}, 0)), data.rows, {})


# ---------------------------------------------------------------------------------------------------------------
# conversations


def test_hub_reachable_passes_without_a_hub_id_and_warns_on_a_fallback_to_local_files():
    assert checks.hub_reachable_verdict("", "local files").description == "no hub id configured: local files by design"
    assert checks.hub_reachable_verdict("org/set", "hub org/set (train)").passed
    fallback = checks.hub_reachable_verdict("org/set", "local files (hub unreachable: timeout)")
    assert not fallback.passed and fallback.severity == WARN and fallback.metadata["counseling_hub_id"] == "org/set"


def conversations(notes=()) -> checks.Ingested:
    rows = pd.DataFrame({
        "record_id": ["r1", "r2", "r3"], "question_id": ["q1", "q1", "q2"], "source": ["hub", "hub", "csv"],
        "n_turns": [2, 2, 4], "prompt": ["p"] * 3, "response": ["a" * 200, "b", "c"], "input_file": ["counseling/c.csv"] * 3,
    })
    results = [FileResult("counseling/c.csv", None, rejects_frame([]), rows_in=3)]
    return checks.Ingested("counseling_conversations", results, rows, rejects_frame([]), 1, notes)


def test_conversation_report_counts_sources_turns_and_repeated_questions():
    report = checks.conversation_report(conversations(), {"counseling_origin": "local files"})
    assert json.loads(json.dumps(report)) == report, "plain JSON"
    assert report["per_source"] == {"hub": 2, "csv": 1} and report["n_turns"] == {"2": 2, "4": 1}
    assert report["repeated_questions"]["questions_with_several_answers"] == 1
    assert (report["rows_in"], report["rejected"], report["input_files"], report["skipped_inputs"]) == (3, 0, 1, [])
    assert report["invalid_files"] == [] and report["counseling_origin"] == "local files"


def test_conversation_metadata_is_the_headline_picked_from_the_report():
    data = conversations()
    outputs = {key: {"type": "path", "raw_value": f"/t/{key}"} for key in ("path", "rejects_path", "report_path")}
    counseling = checks.conversation_metadata(checks.conversation_report(data, {"counseling_origin": "local files"}), data.rows, outputs)
    assert set(counseling) == {"dagster/row_count", "path", "rejects_path", "report_path", "rows_in", "kept", "rejected",
                               "reject_reasons", "preview", "counseling_origin"}
    assert (counseling["dagster/row_count"], counseling["rows_in"], counseling["counseling_origin"]) == (3, 3, "local files")
    assert "a" * 80 + "…" in counseling["preview"]["raw_value"] and "a" * 81 not in counseling["preview"]["raw_value"]
    cot = checks.conversation_metadata(checks.conversation_report(data), data.rows, outputs)
    assert set(cot) == set(counseling) - {"counseling_origin"}
    skipped = conversations(["skipped cot/dir.json: not a file"])
    meta = checks.conversation_metadata(checks.conversation_report(skipped), skipped.rows, outputs)
    assert meta["notes"]["raw_value"] == "- skipped cot/dir.json: not a file"


# ---------------------------------------------------------------------------------------------------------------
# audited_schema


def anomalies(non_latin=0.0, extreme=0.0, near_dup=0.0) -> dict:
    return {
        "non_latin_script_runs": {"share": non_latin},
        "extreme_lengths": {"share": extreme},
        "duplicate_texts": {"near_duplicate_share": near_dup},
    }


def test_anomalies_pass_under_their_limits_and_a_missing_share_counts_as_zero():
    found = anomalies(non_latin=None, extreme=0.05)
    verdict = checks.anomalies_verdict(found, checks.anomaly_shares(found, AuditSettings()))
    assert verdict.passed and verdict.description == "anomaly shares under their limits"


def test_anomalies_warn_and_name_each_share_over_its_limit():
    found = anomalies(extreme=0.25, near_dup=0.5)
    verdict = checks.anomalies_verdict(found, checks.anomaly_shares(found, AuditSettings()))
    assert not verdict.passed and verdict.severity == WARN
    assert verdict.description == "over the limit: extreme_lengths 25.0% > 10%, near_duplicates 50.0% > 5%"


def test_audited_schema_metadata_counts_every_audited_row_and_shows_the_headline_plots():
    report = {"segments": {
        "raw_fields": {"fields": {"text": {"types": {"string": 3}, "missing_rate": 0.0, "null_rate": 0.0}}},
        "per_source": {"Chan": 3}, "word_count_by_style": {}, "confidence_given": {}, "quality": {},
        "anomalies": anomalies(),
    }}
    counts = {"segments": 3, "counseling": 2, "cot": 1}
    images = {title: f"![{title}](data:)" for title in [*checks.HEADLINE_PLOTS, "Quality"]}
    meta = checks.audited_schema_metadata(report, counts, {"audit_json": "j", "audit_html": "h"}, images)
    assert set(meta) == {"dagster/row_count", "audit_json", "audit_html", "segments", "counseling", "cot", "segment_fields",
                         *checks.HEADLINE_PLOTS.values()}
    assert meta["dagster/row_count"] == 6 and meta["segments"] == 3 and meta["audit_json"] == "j"
    title, key = next(iter(checks.HEADLINE_PLOTS.items()))
    assert meta[key] == {"type": "md", "raw_value": f"![{title}](data:)"}, "the other plots are in audit.html"
    assert '{"string": 3}' in meta["segment_fields"]["raw_value"]
    assert not set(checks.HEADLINE_PLOTS.values()) & set(checks.audited_schema_metadata(report, {"segments": 0}, {}, {}))
