"""Input-folder scanning and the sensor cursor (pure: no Dagster)."""

from __future__ import annotations

import os
import time

import pytest

from pixel_pipeline.automation.scanning import (
    Cursor,
    decode_cursor,
    is_temporary_name,
    parse_partition_key,
    partition_key,
    plan_tick,
)

OLD = time.time() - 3600


def write(data_dir, name: str, content: bytes | str, mtime: float | None = OLD):
    path = data_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


@pytest.mark.parametrize(
    "name",
    [".talk.txt", "talk.txt.part", "talk.txt.tmp", "talk.txt~", ".talk.txt.swp", "~$talk.txt", "talk.json.crdownload", "#talk.txt#", "talk.txt.partial"],
)
def test_temporary_and_hidden_names_are_not_inputs(name):
    assert is_temporary_name(name)
    assert is_temporary_name(f"transcripts/{name}")


@pytest.mark.parametrize("name", ["talk.txt", "empathetic_high_quality.json", "part_2.txt", "ep.102.txt", "#12 sleep.txt"])
def test_ordinary_names_are_inputs(name):
    assert not is_temporary_name(name)


def test_partition_key_is_name_plus_content_hash_and_round_trips():
    key = partition_key("transcripts/talk one.txt", "ab" * 32)
    assert key == "transcripts/talk one.txt@" + "ab" * 8
    assert parse_partition_key(key) == ("transcripts/talk one.txt", "ab" * 8)
    assert parse_partition_key("transcripts/a@b.txt@" + "0" * 16) == ("transcripts/a@b.txt", "0" * 16)
    with pytest.raises(ValueError, match="partition key"):
        parse_partition_key("transcripts/talk.txt")


def test_first_tick_sees_settled_files_of_both_folders_and_ignores_other_patterns(tmp_path):
    write(tmp_path, "transcripts/a.txt", "hello there")
    write(tmp_path, "training_segments/empathetic_high_quality.json", "[]")
    write(tmp_path, "transcripts/sources.json", "{}")  # not a transcript
    write(tmp_path, "counseling/c.csv", "Context,Response")  # not watched
    plan = plan_tick(tmp_path, Cursor())
    assert [s.name for s in plan.to_run] == ["training_segments/empathetic_high_quality.json", "transcripts/a.txt"]
    assert all(s.utf8_valid for s in plan.to_run)
    assert plan.deleted == [] and plan.pending == []


def test_unchanged_files_are_not_reread_and_a_touch_without_new_bytes_is_not_a_change(tmp_path):
    path = write(tmp_path, "transcripts/a.txt", "same words")
    first = plan_tick(tmp_path, Cursor())
    second = plan_tick(tmp_path, decode_cursor(first.cursor.encode())[0])  # as the sensor stores it between ticks
    assert second.to_run == [] and [s.name for s in second.unchanged] == ["transcripts/a.txt"]
    assert second.unchanged[0].utf8_valid is None  # came from the cursor: the bytes were not read again
    os.utime(path, (OLD + 10, OLD + 10))
    touched = plan_tick(tmp_path, second.cursor)
    assert touched.to_run == [] and touched.changed == []
    assert touched.cursor.files["transcripts/a.txt"].mtime_ns != first.cursor.files["transcripts/a.txt"].mtime_ns


def test_changed_file_gets_a_new_key_and_its_old_key_becomes_stale(tmp_path):
    write(tmp_path, "transcripts/a.txt", "version one")
    first = plan_tick(tmp_path, Cursor())
    old_key = first.to_run[0].partition_key
    write(tmp_path, "transcripts/a.txt", "version two", mtime=OLD + 60)
    second = plan_tick(tmp_path, first.cursor)
    assert len(second.changed) == 1 and second.new == []
    assert second.to_run[0].partition_key != old_key
    assert second.stale_partition_keys == [old_key]


def test_deleted_file_is_reported_once_and_leaves_the_cursor(tmp_path):
    path = write(tmp_path, "transcripts/a.txt", "soon gone")
    write(tmp_path, "transcripts/b.txt", "stays")
    first = plan_tick(tmp_path, Cursor())
    path.unlink()
    second = plan_tick(tmp_path, first.cursor)
    assert [s.name for s in second.deleted] == ["transcripts/a.txt"]
    assert second.stale_partition_keys == [first.cursor.files["transcripts/a.txt"].partition_key]
    assert "transcripts/a.txt" not in second.cursor.files
    assert plan_tick(tmp_path, second.cursor).deleted == []


def test_a_fresh_file_waits_one_tick_and_a_growing_file_waits_until_it_stops(tmp_path):
    now = time.time()
    path = write(tmp_path, "transcripts/live.txt", "first caption line\n", mtime=now)
    first = plan_tick(tmp_path, Cursor(), now=now, settle_seconds=60)
    assert first.pending == ["transcripts/live.txt"] and first.to_run == []
    with open(path, "a", encoding="utf-8") as fh:  # still being written between ticks
        fh.write("second caption line\n")
    os.utime(path, (now + 5, now + 5))
    second = plan_tick(tmp_path, first.cursor, now=now + 5, settle_seconds=60)
    assert second.pending == ["transcripts/live.txt"] and second.to_run == []
    third = plan_tick(tmp_path, second.cursor, now=now + 10, settle_seconds=60)  # same size and mtime as last tick
    assert [s.name for s in third.to_run] == ["transcripts/live.txt"] and third.pending == []


def test_a_file_being_rewritten_keeps_its_last_settled_version_until_the_new_one_settles(tmp_path):
    now = time.time()
    write(tmp_path, "transcripts/a.txt", "settled version")
    first = plan_tick(tmp_path, Cursor(), now=now)
    write(tmp_path, "transcripts/a.txt", "half of the new vers", mtime=now)
    second = plan_tick(tmp_path, first.cursor, now=now, settle_seconds=60)
    assert second.pending == ["transcripts/a.txt"] and second.deleted == [] and second.changed == []
    assert second.cursor.files["transcripts/a.txt"] == first.cursor.files["transcripts/a.txt"]


def test_temporary_names_are_ignored_until_renamed(tmp_path):
    part = write(tmp_path, "transcripts/talk.txt.part", "downloading")
    write(tmp_path, "transcripts/.talk.txt", "hidden")
    plan = plan_tick(tmp_path, Cursor())
    assert plan.to_run == [] and sorted(plan.ignored) == ["transcripts/.talk.txt", "transcripts/talk.txt.part"]
    part.rename(tmp_path / "transcripts/talk.txt")
    assert [s.name for s in plan_tick(tmp_path, plan.cursor).to_run] == ["transcripts/talk.txt"]


def test_non_utf8_file_is_still_handed_on_and_flagged(tmp_path):
    write(tmp_path, "transcripts/latin1.txt", "caf\xe9 na\xefve".encode("latin-1"))
    write(tmp_path, "transcripts/split.txt", "ok " * 10 + "\u00e9")  # multi-byte char: valid
    plan = plan_tick(tmp_path, Cursor())
    flags = {s.name: s.utf8_valid for s in plan.to_run}
    assert flags == {"transcripts/latin1.txt": False, "transcripts/split.txt": True}


def test_cursor_round_trips_and_garbage_starts_afresh_with_a_reason(tmp_path):
    write(tmp_path, "transcripts/a.txt", "x")
    now = time.time()
    write(tmp_path, "transcripts/b.txt", "y", mtime=now)
    plan = plan_tick(tmp_path, Cursor(), now=now)
    cursor, problem = decode_cursor(plan.cursor.encode())
    assert problem is None and cursor.files == {n: s.__class__(n, s.sha256, s.size, s.mtime_ns) for n, s in plan.cursor.files.items()}
    assert cursor.pending == plan.cursor.pending
    for bad in ["not json", '{"version": 99}', '{"version": 1, "files": {"a": [1]}}', "[]"]:
        cursor, problem = decode_cursor(bad)
        assert cursor.files == {} and problem
    assert decode_cursor(None) == (Cursor(), None)


def test_a_missing_data_folder_is_an_empty_tick(tmp_path):
    plan = plan_tick(tmp_path / "nope", Cursor())
    assert plan.to_run == [] and plan.summary().startswith("0 new")
