"""End to end: a new transcript is processed alone, and the corpus-wide raw_segments that follows recomputes nothing."""

from __future__ import annotations

import os
import shutil
import time

import dagster as dg
import pandas as pd

from pixel_pipeline.defs.automation import (
    INPUT_FILE_SEGMENTS,
    data_chain_after_input_files,
    input_file_segments,
    new_input_files,
)
from pixel_pipeline.defs.ingestion import raw_segments
from pixel_pipeline.defs.resources import EmbeddingModel, PixelStorage
from pixel_pipeline_tests.conftest import SAMPLE_DATA_DIR

FIRST, NEW = "healing_rupture_and_repair.txt", "still_standing_ep102_sleep_in_recovery.txt"


def drop_transcript(paths, name: str) -> None:
    target = paths.data_dir / "transcripts" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SAMPLE_DATA_DIR / "transcripts" / name, target)
    old = time.time() - 3600  # settled: copied a while ago
    os.utime(target, (old, old))


def tick(instance, cursor):
    with dg.build_sensor_context(cursor=cursor, instance=instance, resources={"storage": PixelStorage()}) as context:
        result = new_input_files(context)
    for request in result.dynamic_partitions_requests:  # what the daemon does with them
        if isinstance(request, dg.AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
    return result


def materializations(instance, partition: str) -> int:
    records = instance.fetch_materializations(dg.AssetRecordsFilter(INPUT_FILE_SEGMENTS, asset_partitions=[partition]), limit=10)
    return len(records.records)


def metadata_of(result, node: str) -> dict:
    return {k: v.value for k, v in result.asset_materializations_for_node(node)[0].metadata.items()}


def test_a_new_transcript_is_processed_alone_and_the_corpus_refresh_reuses_every_other_file(tmp_paths, shared_embedding_cache):
    instance = dg.DagsterInstance.ephemeral()
    resources = {"storage": PixelStorage(), "embedding_model": EmbeddingModel(cache_dir=str(shared_embedding_cache))}
    drop_transcript(tmp_paths, FIRST)
    segments_file = tmp_paths.data_dir / "training_segments" / "practical_high_quality.json"
    segments_file.parent.mkdir()
    segments_file.write_text("[]", encoding="utf-8")  # an empty segments file: a partition of its own, no rows
    os.utime(segments_file, (time.time() - 3600,) * 2)

    first = tick(instance, None)
    assert len(first.run_requests) == 2
    for request in first.run_requests:
        assert dg.materialize([input_file_segments], partition_key=request.partition_key, instance=instance, resources=resources).success
    corpus = dg.materialize([raw_segments], instance=instance, resources=resources)
    assert metadata_of(corpus, "raw_segments")["file_cache"] == {"files": 2, "cache_hits": 2, "processed": 0}
    chain_context = dg.build_sensor_context(instance=instance)
    assert isinstance(data_chain_after_input_files(chain_context), dg.RunRequest)

    drop_transcript(tmp_paths, NEW)
    second = tick(instance, first.cursor)
    (request,) = second.run_requests
    assert request.partition_key.startswith(f"transcripts/{NEW}@")
    new_run = dg.materialize([input_file_segments], partition_key=request.partition_key, instance=instance, resources=resources)
    assert metadata_of(new_run, "input_file_segments")["file_cache"] == {"files": 1, "cache_hits": 0, "processed": 1}
    # The untouched partitions were materialized once, at the first tick, and never again.
    assert [materializations(instance, r.partition_key) for r in first.run_requests] == [1, 1]
    assert materializations(instance, request.partition_key) == 1

    refreshed = dg.materialize([raw_segments], instance=instance, resources=resources)
    meta = metadata_of(refreshed, "raw_segments")
    assert meta["file_cache"] == {"files": 3, "cache_hits": 3, "processed": 0}
    per_file = pd.concat(
        pd.read_parquet(p) for p in (tmp_paths.output_dir / "tables" / "input_file_segments").glob("*.parquet")
    )
    corpus_rows = pd.read_parquet(tmp_paths.table("raw_segments"))
    assert sorted(corpus_rows["segment_id"]) == sorted(per_file["segment_id"]) and len(corpus_rows) == meta["dagster/row_count"]
    follow = data_chain_after_input_files(dg.build_sensor_context(instance=instance, cursor=chain_context.cursor))
    assert isinstance(follow, dg.RunRequest)
