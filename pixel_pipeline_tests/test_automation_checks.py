"""The per-file asset's pure check and metadata builders, on tiny hand-made inputs (no sensor, no Dagster run)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pixel_pipeline.automation import checks
from pixel_pipeline.automation.per_file import kept_rows, changed_since_seen, per_file_table
from pixel_pipeline.core.ids import sha256_hex
from pixel_pipeline.core.verdicts import ERROR, WARN
from pixel_pipeline.ingest.cache import FileResult


def file_result(rows_in=3, n_rows=2, n_rejects=1, file_error=None) -> FileResult:
    rows = pd.DataFrame({"style": ["practical"] * n_rows, "word_count": [5] * n_rows})
    rejects = pd.DataFrame({"reasons": [["too_short: 2 words"]] * n_rejects})
    return FileResult("training_segments/a.json", rows, rejects, rows_in, file_error)


def test_row_accounting_passes_when_rows_in_equal_kept_plus_rejected():
    v = checks.row_accounting_verdict(rows_in=3, kept=2, rejected=1)
    assert v.passed and v.severity == ERROR and v.check_name == "row_accounting"
    assert v.metadata == {"rows_in": 3, "kept": 2, "rejected": 1}
    assert v.description == "rows in 3 = kept 2 + rejected 1"


def test_row_accounting_fails_when_a_row_is_lost():
    v = checks.row_accounting_verdict(rows_in=4, kept=2, rejected=1)
    assert not v.passed and v.description.endswith("does NOT hold")


def test_file_readable_warns_with_the_parse_error_and_passes_a_parsed_file():
    bad = checks.file_readable_verdict("a.json", "not valid JSON")
    assert not bad.passed and bad.severity == WARN and bad.description == "a.json: not valid JSON"
    good = checks.file_readable_verdict("a.json", None)
    assert good.passed and good.metadata == {"file_error": ""}


def test_input_file_verdicts_count_the_file_s_rows_and_rejects():
    accounting, readable = checks.input_file_verdicts("a.json", file_result(), kept=2)
    assert accounting.passed and readable.passed
    accounting, _ = checks.input_file_verdicts("a.json", file_result(rows_in=5), kept=2)
    assert not accounting.passed


def test_metadata_counts_styles_words_and_reject_reasons():
    result = file_result()
    meta = checks.input_file_metadata(Path("/d/a.json"), Path("/o/t.parquet"), result, result.rows,
                                      {"files": 1, "cache_hits": 0}, {"hits": 3})
    assert meta["dagster/row_count"] == meta["kept"] == 2 and meta["rejected"] == 1 and meta["rows_in"] == 3
    assert meta["input_file"] == {"type": "path", "raw_value": "/d/a.json"}
    assert meta["reject_reasons"]["raw_value"] == {"too_short": 1}
    assert meta["styles"]["raw_value"] == {"practical": 2} and meta["words"] == 10


def test_an_unreadable_file_gives_an_empty_table_and_no_style_counts():
    result = FileResult("transcripts/x.txt", None, pd.DataFrame({"reasons": [["file_unreadable: bad"]]}), 1, "bad")
    rows = kept_rows(result)
    assert len(rows) == 0 and "text" in rows.columns
    meta = checks.input_file_metadata(Path("/d/x.txt"), Path("/o/t.parquet"), result, rows, {}, {})
    assert meta["kept"] == 0 and "styles" not in meta and "words" not in meta


def test_per_file_tables_are_named_after_the_partition_key(tmp_path):
    assert per_file_table(tmp_path, "transcripts/a.txt@0123") == (
        tmp_path / "tables" / "input_file_segments" / "transcripts__a.txt@0123.parquet")


def test_a_file_changed_after_the_sensor_saw_it_is_reported():
    data = b"[]"
    digest = sha256_hex(data)[:16]
    assert changed_since_seen("a.json", data, digest) is None
    assert "changed since the sensor saw it" in changed_since_seen("a.json", b"[1]", digest)
