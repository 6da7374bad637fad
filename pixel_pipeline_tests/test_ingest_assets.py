"""The ingestion assets and their checks, materialized with Dagster over small fixture corpora (real MiniLM)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from pixel_pipeline.core.records import REJECT_COLUMNS
from pixel_pipeline.defs.ingestion import audited_schema, cot_conversations, counseling_conversations, raw_segments
from pixel_pipeline.defs.resources import EmbeddingModel, PixelStorage
from pixel_pipeline.ingest.conversations import CONVERSATION_COLUMNS
from pixel_pipeline.ingest.segments import RAW_SEGMENT_COLUMNS

FIXTURES = Path(__file__).parent / "fixtures" / "ingest"
ALL = [raw_segments, counseling_conversations, cot_conversations, audited_schema]


def materialize(paths, shared_embedding_cache, assets=ALL, run_config=None):
    return dg.materialize(
        assets,
        resources={"storage": PixelStorage(), "embedding_model": EmbeddingModel(cache_dir=str(shared_embedding_cache))},
        run_config=run_config,
        raise_on_error=False,
    )


def checks(result) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}


def metadata(result, asset: str) -> dict:
    (event,) = [m for m in result.get_asset_materialization_events() if m.asset_key.to_user_string() == asset]
    return {k: v.value for k, v in event.materialization.metadata.items()}


@pytest.fixture
def fixture_corpus(tmp_paths):
    shutil.copytree(FIXTURES, tmp_paths.data_dir, dirs_exist_ok=True)
    return tmp_paths


def test_fixture_corpus_materializes_with_every_check_green(fixture_corpus, shared_embedding_cache):
    paths = fixture_corpus
    result = materialize(paths, shared_embedding_cache)
    assert result.success
    found = checks(result)
    failed = {k: e.description for k, e in found.items() if not e.passed}
    # the only warning on this corpus: half of the given confidences are 7.4, i.e. not probabilities
    assert failed == {("raw_segments", "given_confidence_is_probability"): "4 of 8 given confidence values lie outside [0, 1]: treat confidence_given as an unscaled score"}
    assert found[("raw_segments", "row_accounting")].severity == dg.AssetCheckSeverity.ERROR

    segments = pd.read_parquet(paths.table("raw_segments"))
    assert list(segments.columns) == list(RAW_SEGMENT_COLUMNS)
    assert segments["origin"].value_counts().to_dict() == {"segments_file": 8, "transcript": 4}
    transcripts = segments[segments["origin"] == "transcript"]
    assert set(transcripts["source"]) == {"Healing Minds with Dr. Lena Hart", "Boundary Basics"}  # from sources.json
    assert transcripts["style_given"].isna().all() and (transcripts["style"] == transcripts["style_predicted"]).all()
    assert segments["style_confidence"].between(0, 1).all()

    meta = metadata(result, "raw_segments")
    assert meta["dagster/row_count"] == 12 and meta["rows_in"] == 12
    assert Path(meta["path"]).exists() and Path(meta["rejects_path"]).exists()
    assert meta["voice_choice"].startswith("voice sources ") and len(meta) <= 11
    report = json.loads(Path(meta["report_path"]).read_text())
    assert Path(meta["report_path"]) == paths.report_dir("raw_segments") / "summary.json"
    assert report["rows_in"] == 12 and report["by_origin"] == {"segments_file": 8, "transcript": 4}
    assert report["voice_choice"] == meta["voice_choice"] and report["file_cache"] == meta["file_cache"]
    assert sum(report["style_confusion"]["empathetic"].values()) > 0 and report["voice_choice_file"].endswith("voice_sources.json")
    assert "| **empathetic** |" in found[("raw_segments", "style_agreement")].metadata["confusion"].value
    assert raw_segments.specs_by_key[dg.AssetKey("raw_segments")].metadata["dagster/column_schema"].columns[0].name == "segment_id"

    counseling = pd.read_parquet(paths.table("counseling_conversations"))
    cot = pd.read_parquet(paths.table("cot_conversations"))
    assert list(counseling.columns) == list(cot.columns) == list(CONVERSATION_COLUMNS)
    counseling_meta = metadata(result, "counseling_conversations")
    assert counseling_meta["counseling_origin"] == "local files"
    assert json.loads(Path(counseling_meta["report_path"]).read_text())["per_source"]
    assert (len(counseling), len(cot)) == (5, 3)
    cot_rejects = pd.read_parquet(paths.rejects("cot_conversations"))
    assert list(cot_rejects.columns) == REJECT_COLUMNS and len(cot_rejects) == 2

    report_dir = paths.report_dir("audited_schema")
    audit = json.loads((report_dir / "audit.json").read_text())
    assert audit["segments"]["rows"] == 12 and audit["counseling"]["rejected"] == 2
    assert audit["segments"]["anomalies"]["confidence_outside_unit_interval"]["count"] == 4
    assert audit["segments"]["raw_fields"]["fields"]["confidence"]["types"] == {"number": 8}
    page = (report_dir / "audit.html").read_text()
    assert page.count("<img") >= 4 and "data:image/png;base64," in page and "http" not in page.split("<body>")[1][:2000]
    audit_meta = metadata(result, "audited_schema")
    assert audit_meta["dagster/row_count"] == 12 + 5 + 3 and Path(audit_meta["audit_json"]) == report_dir / "audit.json"
    assert audit_meta["segment_length_by_style"].startswith("![") and len(audit_meta) <= 10


def test_bad_input_battery_end_to_end(tmp_paths, shared_embedding_cache):
    folder = tmp_paths.data_dir / "training_segments"
    folder.mkdir()
    good_text = (FIXTURES / "training_segments" / "empathetic_high_quality.json").read_text(encoding="utf-8")
    (folder / "empathetic_high_quality.json").write_text(good_text, encoding="utf-8")
    good = json.loads(good_text)
    bad_rows = [
        {**good[0], "text": 123},
        {**good[0], "text": good[0]["text"] + " nan", "confidence": float("nan")},
        {**good[0], "text": good[0]["text"] + " negative", "confidence": -1},
        {**good[0], "text": good[0]["text"] + " huge", "confidence": 1e12},
        {"style": "empathetic", "confidence": 0.5},
        {**good[0], "text": ""},
        {**good[0], "text": "x" * 5_000_000},
        {**good[0], "text": good[0]["text"] + " path", "file": "../../etc/passwd"},
        good[1],  # exact duplicate of a row in empathetic_high_quality.json
    ]
    (folder / "practical_low_quality.json").write_text(json.dumps(bad_rows), encoding="utf-8")
    (folder / "broken.json").write_text("[{", encoding="utf-8")
    (folder / "object.json").write_text('{"text": "a dict"}', encoding="utf-8")
    (folder / "binary.json").write_bytes(b"\x00\xff\xfe garbage \x89PNG")

    voice = {"ops": {"raw_segments": {"config": {"voice_sources": [good[0]["source"]]}}}}  # too few rows to detect
    result = materialize(tmp_paths, shared_embedding_cache, [raw_segments], voice)
    assert result.success, "bad inputs never crash the run"
    found = checks(result)
    assert found[("raw_segments", "row_accounting")].passed
    assert found[("raw_segments", "schema")].passed
    invalid = found[("raw_segments", "invalid_files")]
    assert not invalid.passed and invalid.severity == dg.AssetCheckSeverity.WARN
    assert "2 unreadable input files" in invalid.description  # broken.json ("[{") is one broken item, not a lost file
    share = found[("raw_segments", "rejected_share")]
    assert not share.passed and share.severity == dg.AssetCheckSeverity.WARN

    rows = pd.read_parquet(tmp_paths.table("raw_segments"))
    rejects = pd.read_parquet(tmp_paths.rejects("raw_segments"))
    assert len(rows) == 2, "the two valid rows still load"
    assert len(rows) + len(rejects) == 2 + len(bad_rows) + 3
    rules = sorted(r.split(":")[0] for reasons in rejects["reasons"] for r in reasons)
    assert rules == sorted(
        ["wrong_type", "confidence_not_finite", "confidence_out_of_range", "confidence_out_of_range", "missing_field",
         "empty_text", "too_long", "unsafe_file_path", "duplicate", "invalid_json_item", "invalid_file", "invalid_file"]
    )
    meta = metadata(result, "raw_segments")
    invalid_files = json.loads(Path(meta["report_path"]).read_text())["invalid_files"]
    assert any(i["file"] == "training_segments/object.json" and "expected a JSON list" in i["reason"] for i in invalid_files)
    assert meta["rows_in"] == 14 and meta["rejected"] == 12


def test_empty_data_folder_gives_empty_tables_not_a_crash(tmp_paths, shared_embedding_cache):
    result = materialize(tmp_paths, shared_embedding_cache)
    assert result.success
    assert all(e.passed for k, e in checks(result).items() if k[1] in ("schema", "row_accounting", "not_empty"))
    assert pd.read_parquet(tmp_paths.table("raw_segments")).empty
    assert list(pd.read_parquet(tmp_paths.table("raw_segments")).columns) == list(RAW_SEGMENT_COLUMNS)
    assert json.loads((tmp_paths.report_dir("audited_schema") / "audit.json").read_text())["segments"]["rows"] == 0


def test_not_empty_fails_when_every_row_is_rejected(tmp_paths, shared_embedding_cache):
    (tmp_paths.data_dir / "cot").mkdir()
    (tmp_paths.data_dir / "cot" / "bad.json").write_text(json.dumps([{"conversation": [{"role": "user", "content": "hi?"}]}]), encoding="utf-8")
    result = materialize(tmp_paths, shared_embedding_cache, [cot_conversations])
    check = checks(result)[("cot_conversations", "not_empty")]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert "every row was rejected" in check.description


def test_settings_change_the_expert_style_and_the_hub_fallback_warns(fixture_corpus, shared_embedding_cache, monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("hub unreachable in tests")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    run_config = {
        "ops": {
            "raw_segments": {"config": {"expert_style_from": "given", "use_file_cache": False}},
            "counseling_conversations": {"config": {"counseling_hub_id": "Amod/mental_health_counseling_conversations"}},
        }
    }
    result = materialize(fixture_corpus, shared_embedding_cache, [raw_segments, counseling_conversations], run_config)
    assert result.success
    segments = pd.read_parquet(fixture_corpus.table("raw_segments"))
    labelled = segments["style_given"].notna()
    assert (segments.loc[labelled, "style"] == segments.loc[labelled, "style_given"]).all()
    hub = checks(result)[("counseling_conversations", "hub_reachable")]
    assert not hub.passed and hub.severity == dg.AssetCheckSeverity.WARN and "hub unreachable in tests" in hub.description
    assert len(pd.read_parquet(fixture_corpus.table("counseling_conversations"))) == 5, "local files were used instead"


def test_audited_schema_needs_its_upstream_tables(tmp_paths, shared_embedding_cache):
    result = materialize(tmp_paths, shared_embedding_cache, [audited_schema])
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "materialize `raw_segments` first" in failure.event_specific_data.error.to_string()
