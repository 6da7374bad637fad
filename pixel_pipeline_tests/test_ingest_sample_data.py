"""The embedded sample corpus (data/) ingests with exactly its planted invalid rows rejected.

The ground truth is pixel_pipeline_tests/fixtures/planted_defects_*.json, written with the sample data: rows
expected `rejected_at_ingestion` (and exact duplicates) must be in rejects/<asset>.parquet with a reason; every other planted
row (rejected later by curation, redacted, flagged, or kept) must reach the ingestion tables unchanged. The style
classifier plays no part here, so a hashing embedder stands in for MiniLM to keep this test fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from pixel_pipeline.defs.ingestion import cot_conversations, counseling_conversations, raw_segments
from pixel_pipeline.defs.resources import EmbeddingModel, PixelStorage
from pixel_pipeline_tests.conftest import SAMPLE_DATA_DIR
from pixel_pipeline_tests.test_ingest_segments import HashEmbedder

FIXTURES = Path(__file__).parent / "fixtures"
SEGMENT_DEFECTS = FIXTURES / "planted_defects_segments.json"
CONVERSATION_DEFECTS = FIXTURES / "planted_defects_conversations.json"

pytestmark = pytest.mark.skipif(
    not (SEGMENT_DEFECTS.exists() and CONVERSATION_DEFECTS.exists() and (SAMPLE_DATA_DIR / "training_segments").is_dir()),
    reason="sample corpus or its planted-defect fixtures are absent",
)


class HashEmbeddingModel(EmbeddingModel):
    def embedder(self, storage):
        embedder = HashEmbedder()
        embedder.model_name_or_path = "hash"
        embedder.stats = {}
        return embedder


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample_output")
    result = dg.materialize(
        [raw_segments, counseling_conversations, cot_conversations],
        resources={"storage": PixelStorage(data_dir=str(SAMPLE_DATA_DIR), output_dir=str(out)), "embedding_model": HashEmbeddingModel()},
        raise_on_error=False,
    )
    return result, out


def _table(out: Path, kind: str, name: str) -> pd.DataFrame:
    return pd.read_parquet(out / kind / f"{name}.parquet")


def _rejects_by_position(out: Path, asset: str) -> dict[tuple[str, int | None], list[str]]:
    rejects = _table(out, "rejects", asset)
    return {(json.loads(d)["input_file"], json.loads(d)["row_index"]): list(r) for d, r in zip(rejects["details"], rejects["reasons"])}


def test_sample_corpus_ingests_with_blocking_checks_green(ingested):
    result, _ = ingested
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    failed = {(e.asset_key.to_user_string(), e.check_name) for e in evaluations if not e.passed}
    for asset in ("raw_segments", "counseling_conversations", "cot_conversations"):
        for check in ("schema", "row_accounting", "not_empty", "invalid_files"):
            assert (asset, check) not in failed, (asset, check)


def test_planted_invalid_segment_rows_are_rejected_and_everything_else_is_kept(ingested):
    _, out = ingested
    planted = json.loads(SEGMENT_DEFECTS.read_text())
    rows = _table(out, "tables", "raw_segments")
    kept_positions = set(zip(rows["input_file"], rows["row_index"]))
    rejected = _rejects_by_position(out, "raw_segments")
    for defect in planted["defects"]:
        position = (defect["input_file"], defect["row_index"])
        exact_duplicate = defect["expected"] == f"duplicate_of:{defect['segment_id']}"
        if defect["expected"] == "rejected_at_ingestion" or exact_duplicate:
            assert position in rejected, defect
            assert not exact_duplicate or rejected[position][0].startswith("duplicate:"), rejected[position]
        else:
            assert position in kept_positions, f"{defect['defect']} must reach curation: {defect}"
            if defect["segment_id"]:
                assert defect["segment_id"] in set(rows["segment_id"]), "segment_id = content_id(text as read)"
    clean = set(planted.get("clean_segment_ids", [])) | set(planted.get("long_clean_segment_ids", []))
    assert clean <= set(rows["segment_id"]), clean - set(rows["segment_id"])
    n_rejected = sum(1 for d in planted["defects"] if d["expected"] == "rejected_at_ingestion" or d["expected"] == f"duplicate_of:{d['segment_id']}")
    assert len(rejected) == n_rejected, "nothing but the planted invalid rows is rejected"


def test_planted_invalid_conversations_are_rejected_and_everything_else_is_kept(ingested):
    _, out = ingested
    planted = json.loads(CONVERSATION_DEFECTS.read_text())
    tables = {name: _table(out, "tables", f"{name}_conversations") for name in ("counseling", "cot")}
    rejected = {name: _rejects_by_position(out, f"{name}_conversations") for name in ("counseling", "cot")}
    for defect in planted["defects"]:
        dataset = defect["dataset"]
        position = (defect["input_file"], defect["row_index"])
        exact_duplicate = defect["expected"] == f"duplicate_of:{defect['record_id']}"
        if defect["expected"] == "rejected_at_ingestion" or exact_duplicate:
            assert position in rejected[dataset], defect
        else:
            table = tables[dataset]
            assert position in set(zip(table["input_file"], table["row_index"])), defect
            assert defect["record_id"] in set(table["record_id"]), "record_id = record_id(normalised turns)"
    ids = set(tables["counseling"]["record_id"]) | set(tables["cot"]["record_id"])
    assert set(planted.get("clean_record_ids", [])) <= ids
