"""The shared helpers every domain relies on: ids, atomic writes, settings resolution, markdown tables."""

from __future__ import annotations

import hashlib
import json
import os

import pandas as pd
import pytest

from pixel_pipeline.core import io
from pixel_pipeline.core.ids import content_id, record_id
from pixel_pipeline.core.markdown import markdown_table
from pixel_pipeline.core.records import (
    configured_voice_sources,
    reject_row,
    rejects_frame,
    row_id,
)
from pixel_pipeline.core.settings import PipelinePaths


def test_segment_id_is_the_first_16_hex_digits_of_sha256_of_the_text_as_read():
    text = "Shame says “I am bad”; guilt says “I did something bad”.\n"
    assert content_id(text) == hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    assert content_id(text) != content_id(text.strip())  # exactly as read: no normalisation


def test_record_id_depends_on_turns_not_on_metadata_or_key_order():
    turns = [{"role": "client", "content": "I can't sleep."}, {"role": "therapist", "content": "Tell me more."}]
    reordered = [{"content": t["content"], "role": t["role"]} for t in turns]
    assert record_id(turns) == record_id(reordered)
    assert record_id(turns) != record_id(turns[:1])
    assert len(record_id(turns)) == 16


def test_atomic_write_leaves_the_old_file_intact_when_the_writer_fails(tmp_path):
    target = tmp_path / "table.jsonl"
    io.write_jsonl([{"a": 1}], target)

    def broken_rows():
        yield {"a": 2}
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        io.write_jsonl(broken_rows(), target)
    assert io.read_jsonl(target) == [{"a": 1}]
    assert [p.name for p in tmp_path.iterdir()] == ["table.jsonl"]  # no temporary file left behind
    assert oct(os.stat(target).st_mode & 0o777) == oct(0o644)


def test_parquet_and_json_round_trip_numpy_values(tmp_path):
    import numpy as np

    df = pd.DataFrame({"segment_id": ["a", "b"], "score": [0.5, np.nan]})
    io.write_parquet(df, tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(io.read_parquet(tmp_path / "t.parquet"), df)
    io.write_json({"n": np.int64(3), "v": np.array([1.0, 2.0])}, tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text()) == {"n": 3, "v": [1.0, 2.0]}


def test_paths_follow_the_environment_at_call_time(tmp_path, monkeypatch):
    monkeypatch.setenv("PIXEL_DATA_DIR", str(tmp_path / "corpus"))
    monkeypatch.setenv("PIXEL_OUTPUT_DIR", str(tmp_path / "out"))
    paths = PipelinePaths.from_env()
    assert paths.data_dir == tmp_path / "corpus"
    assert paths.table("raw_segments") == tmp_path / "out" / "tables" / "raw_segments.parquet"
    assert paths.rejects("splits") == tmp_path / "out" / "rejects" / "splits.parquet"


def test_voice_sources_setting_then_environment_else_nothing_configured(monkeypatch):
    monkeypatch.delenv("PIXEL_VOICE_SOURCES", raising=False)
    assert configured_voice_sources() == ((), "")  # nothing configured: raw_segments detects the educator
    assert configured_voice_sources(["Other Channel"]) == (("Other Channel",), "asset setting")
    monkeypatch.setenv("PIXEL_VOICE_SOURCES", '["A | B", "C"]')
    assert configured_voice_sources() == (("A | B", "C"), "PIXEL_VOICE_SOURCES")
    monkeypatch.setenv("PIXEL_VOICE_SOURCES", "Just One Channel")
    assert configured_voice_sources() == (("Just One Channel",), "PIXEL_VOICE_SOURCES")
    monkeypatch.setenv("PIXEL_VOICE_SOURCES", '["", 3]')
    with pytest.raises(ValueError, match="PIXEL_VOICE_SOURCES"):
        configured_voice_sources()


def test_reject_rows_use_the_id_column_of_their_dataset():
    seg = reject_row("segments", "a" * 16, "curated_segments", ["language: es 0.98"], {"score": 0.02})
    conv = reject_row("counseling", "b" * 16, "curated_conversations", ["harmful"])
    frame = rejects_frame([seg, conv])
    assert frame["segment_id"].iloc[0] == "a" * 16 and pd.isna(frame["segment_id"].iloc[1])
    assert pd.isna(frame["record_id"].iloc[0]) and frame["record_id"].iloc[1] == "b" * 16
    assert [row_id(r) for r in frame.to_dict("records")] == ["a" * 16, "b" * 16]
    with pytest.raises(ValueError):
        reject_row("segments", "x", "stage", [])
    with pytest.raises(ValueError):
        reject_row("podcasts", "x", "stage", ["why"])


def test_markdown_table_escapes_pipes_and_accepts_every_shape():
    rows = [{"source": "Ask Dr. Okafor | Q&A", "kept": 3}]
    table = markdown_table(rows, ["source", "kept"])
    assert table.splitlines()[2] == "| Ask Dr. Okafor \\| Q&A | 3 |"
    assert markdown_table([("train", 10)], ["split", "rows"]).splitlines()[0] == "| split | rows |"
    assert markdown_table(pd.DataFrame({"n": [1]}, index=["x"]), index=True).splitlines()[0] == "| index | n |"
    assert markdown_table([]) == "_(none)_"


def test_embedders_with_different_max_seq_length_do_not_share_a_mutated_model():
    from pixel_pipeline.core.embeddings import PACKAGED_MODEL, Embedder

    short = Embedder(PACKAGED_MODEL, max_seq_length=32, precision="float32")
    default = Embedder(PACKAGED_MODEL, precision="float32")
    assert short.model is not default.model
    assert short.model.max_seq_length == 32
    assert default.model.max_seq_length == 256  # the model's own limit, untouched by the other embedder


def test_key_value_store_reads_many_keys_across_chunks_and_keeps_the_last_write(tmp_path):
    from pixel_pipeline.core.kvstore import SqliteKeyValueStore

    store = SqliteKeyValueStore(tmp_path / "cache.sqlite", "scores")
    store.put_many({f"k{i}": f"v{i}" for i in range(2000)})  # more keys than one SQLite IN (...) may bind
    store.put_many({"k1": "new"})
    found = SqliteKeyValueStore(tmp_path / "cache.sqlite", "scores").get_many(["k1", "k1999", "missing", "k1"])
    assert found == {"k1": "new", "k1999": "v1999"}
    assert store.count() == 2000
    with pytest.raises(ValueError):
        SqliteKeyValueStore(tmp_path / "cache.sqlite", "scores; DROP TABLE scores")
