"""The `new_input_files` sensor, ticked with build_sensor_context: new, changed, deleted, half-written, non-UTF-8."""

from __future__ import annotations

import os
import time

import dagster as dg
import pytest

from pixel_pipeline.automation.scanning import decode_cursor
from pixel_pipeline.defs.automation import (
    INPUT_FILE_SEGMENTS,
    INPUT_FILES_PARTITIONS,
    PER_FILE_RUN_TAG,
    data_chain_after_input_files,
    defs as main_defs,
    incremental_defs,
    input_file_segments,
    new_input_files,
)
from pixel_pipeline.defs.resources import EmbeddingModel, PixelStorage

OLD = time.time() - 3600


def write(paths, name: str, content: bytes | str, mtime: float | None = OLD):
    path = paths.data_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def tick(cursor: str | None = None, instance=None) -> dg.SensorResult:
    with dg.build_sensor_context(cursor=cursor, instance=instance, resources={"storage": PixelStorage()}) as context:
        return new_input_files(context)


def added(result: dg.SensorResult) -> list[str]:
    return [k for r in result.dynamic_partitions_requests if isinstance(r, dg.AddDynamicPartitionsRequest) for k in r.partition_keys]


def deleted(result: dg.SensorResult) -> list[str]:
    return [k for r in result.dynamic_partitions_requests if isinstance(r, dg.DeleteDynamicPartitionsRequest) for k in r.partition_keys]


def test_new_files_get_one_partition_and_one_run_each(tmp_paths):
    write(tmp_paths, "transcripts/talk_a.txt", "We breathe in. We breathe out.")
    write(tmp_paths, "training_segments/practical_high_quality.json", "[]")
    result = tick()
    keys = [r.partition_key for r in result.run_requests]
    assert [k.split("@")[0] for k in keys] == ["training_segments/practical_high_quality.json", "transcripts/talk_a.txt"]
    assert added(result) == keys and deleted(result) == []
    assert all(r.run_key.startswith(r.partition_key) for r in result.run_requests)
    assert all(r.partition_key.rsplit("@", 1)[1] in r.run_key for r in result.run_requests)
    again = tick(result.cursor)
    assert again.run_requests == [] and again.skip_reason is not None and "0 new" in again.skip_reason.skip_message


def test_changed_file_runs_its_new_version_and_drops_the_old_partition(tmp_paths):
    write(tmp_paths, "transcripts/talk_a.txt", "First cut of the talk.")
    first = tick()
    old_key = first.run_requests[0].partition_key
    write(tmp_paths, "transcripts/talk_a.txt", "Second, corrected cut of the talk.", mtime=OLD + 100)
    second = tick(first.cursor)
    assert len(second.run_requests) == 1 and second.run_requests[0].partition_key != old_key
    assert added(second) == [second.run_requests[0].partition_key]
    assert deleted(second) == [old_key]


def test_deleted_file_removes_its_partition_and_records_an_observation(tmp_paths):
    gone = write(tmp_paths, "transcripts/talk_a.txt", "Soon deleted.")
    write(tmp_paths, "transcripts/talk_b.txt", "Stays.")
    first = tick()
    gone_key = next(r.partition_key for r in first.run_requests if "talk_a" in r.partition_key)
    gone.unlink()
    second = tick(first.cursor)
    assert second.run_requests == [] and deleted(second) == [gone_key]
    (observation,) = second.asset_events
    assert isinstance(observation, dg.AssetObservation) and observation.asset_key == INPUT_FILE_SEGMENTS
    assert observation.metadata["deleted_files"].value == ["transcripts/talk_a.txt"]
    assert "transcripts/talk_a.txt" not in decode_cursor(second.cursor)[0].files


def test_replacing_a_file_removes_the_per_file_table_of_its_old_version(tmp_paths):
    write(tmp_paths, "transcripts/talk_a.txt", "Old words.")
    first = tick()
    old_table = tmp_paths.output_dir / "tables" / "input_file_segments" / (first.run_requests[0].partition_key.replace("/", "__") + ".parquet")
    old_table.parent.mkdir(parents=True)
    old_table.write_bytes(b"stand-in for the old version's table")
    write(tmp_paths, "transcripts/talk_a.txt", "New words.", mtime=OLD + 5)
    tick(first.cursor)
    assert not old_table.exists()


def test_half_written_files_wait_growing_or_temporary(tmp_paths, monkeypatch):
    monkeypatch.setenv("PIXEL_SENSOR_SETTLE_SECONDS", "600")
    now = time.time()
    live = write(tmp_paths, "transcripts/live.txt", "[Music] so today", mtime=now)
    write(tmp_paths, "transcripts/upload.txt.part", "half an upload")
    write(tmp_paths, "transcripts/.draft.txt", "hidden draft")
    write(tmp_paths, "transcripts/notes.txt~", "editor backup")
    first = tick()
    assert first.run_requests == [] and added(first) == []
    with open(live, "a", encoding="utf-8") as fh:
        fh.write(" we talk about sleep")
    os.utime(live, (now + 1, now + 1))
    second = tick(first.cursor)
    assert second.run_requests == []  # grew since the last tick
    third = tick(second.cursor)  # unchanged for a whole tick: settled
    assert [r.partition_key.split("@")[0] for r in third.run_requests] == ["transcripts/live.txt"]


def test_non_utf8_file_gets_its_partition_and_its_run_rejects_it_with_the_reason(tmp_paths, shared_embedding_cache):
    write(tmp_paths, "transcripts/latin1.txt", "Today we talk about caf\xe9 conversations and na\xefve hope.".encode("latin-1"))
    result = tick()
    (request,) = result.run_requests
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(INPUT_FILES_PARTITIONS, added(result))
    run = dg.materialize(
        [input_file_segments],
        partition_key=request.partition_key,
        instance=instance,
        resources={"storage": PixelStorage(), "embedding_model": EmbeddingModel(cache_dir=str(shared_embedding_cache))},
    )
    checks = {e.check_name: e for e in run.get_asset_check_evaluations()}
    assert checks["row_accounting"].passed
    assert not checks["file_readable"].passed and "utf-8" in checks["file_readable"].description.lower()
    meta = run.asset_materializations_for_node("input_file_segments")[0].metadata
    assert meta["rows_in"].value == 1 and meta["rejected"].value == 1 and meta["kept"].value == 0


def test_resetting_the_cursor_requests_the_same_run_keys_so_nothing_runs_twice(tmp_paths):
    write(tmp_paths, "transcripts/talk_a.txt", "One.")
    write(tmp_paths, "transcripts/talk_b.txt", "Two.")
    first = tick()
    tick(first.cursor)
    after_reset = tick(None)
    assert [r.run_key for r in after_reset.run_requests] == [r.run_key for r in first.run_requests]


def test_unreadable_cursor_is_logged_and_treated_as_a_reset(tmp_paths):
    write(tmp_paths, "transcripts/talk_a.txt", "One.")
    assert len(tick("{not json").run_requests) == 1


def test_data_chain_follows_processed_or_deleted_files_once(tmp_paths):
    instance = dg.DagsterInstance.ephemeral()
    context = dg.build_sensor_context(instance=instance)
    assert isinstance(data_chain_after_input_files(context), dg.SkipReason)
    instance.add_dynamic_partitions(INPUT_FILES_PARTITIONS, ["transcripts/a.txt@0123456789abcdef"])
    instance.report_runless_asset_event(dg.AssetMaterialization(INPUT_FILE_SEGMENTS, partition="transcripts/a.txt@0123456789abcdef"))
    instance.report_runless_asset_event(dg.AssetObservation(INPUT_FILE_SEGMENTS, metadata={"deleted_files": ["transcripts/b.txt"]}))
    busy = dg.DagsterRun(job_name="__ASSET_JOB", run_id="per-file-run", status=dg.DagsterRunStatus.STARTED, tags={PER_FILE_RUN_TAG: "true"})
    instance.add_run(busy)
    waiting = data_chain_after_input_files(dg.build_sensor_context(instance=instance))
    assert isinstance(waiting, dg.SkipReason) and "still in progress" in waiting.skip_message
    instance.delete_run(busy.run_id)  # the per-file run finished
    context = dg.build_sensor_context(instance=instance)
    request = data_chain_after_input_files(context)
    assert isinstance(request, dg.RunRequest) and request.tags["pixel/input_file_events"] == "2"
    again = data_chain_after_input_files(dg.build_sensor_context(instance=instance, cursor=context.cursor))
    assert isinstance(again, dg.SkipReason)


def test_schedules_and_sensors_are_off_by_default_and_the_location_loads():
    repo = main_defs.get_repository_def()
    assert {s.name: s.default_status for s in repo.schedule_defs} == {
        "nightly_data_chain": dg.DefaultScheduleStatus.STOPPED,
        "weekly_training_refresh": dg.DefaultScheduleStatus.STOPPED,
    }
    incremental = incremental_defs.get_repository_def()
    assert all(s.default_status == dg.DefaultSensorStatus.STOPPED for s in [*repo.sensor_defs, *incremental.sensor_defs])
    assert incremental.asset_graph.get(INPUT_FILE_SEGMENTS).partitions_def.name == INPUT_FILES_PARTITIONS


@pytest.mark.parametrize("schedule_name, cron", [("nightly_data_chain", "0 2 * * *"), ("weekly_training_refresh", "0 4 * * 0")])
def test_schedules_request_their_job(schedule_name, cron):
    schedule = main_defs.get_repository_def().get_schedule_def(schedule_name)
    assert schedule.cron_schedule == cron
    assert schedule.job_name in {"data_chain", "training_refresh"}
