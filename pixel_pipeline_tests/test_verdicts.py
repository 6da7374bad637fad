"""Check verdicts and metadata are plain data in the domains; defs/metadata.py turns them into Dagster's types."""

import dagster as dg
import numpy as np
import pytest

from pixel_pipeline.core import verdicts as v
from pixel_pipeline.defs.metadata import check_result, materialize_result


def test_verdict_rejects_unknown_severity():
    with pytest.raises(ValueError, match="severity"):
        v.Verdict("some_check", True, severity="INFO")


def test_verdict_becomes_asset_check_result_with_its_severity_and_typed_metadata():
    result = check_result(v.Verdict("sizes", np.bool_(False), "too few", {"rows": np.int64(3), "table": v.table([{"a": 1}])},
                                    severity=v.WARN))
    assert result.check_name == "sizes" and result.passed is False
    assert result.severity == dg.AssetCheckSeverity.WARN
    assert result.metadata["rows"].value == 3
    assert isinstance(result.metadata["table"], dg.MarkdownMetadataValue) and "| a |" in result.metadata["table"].value


def test_materialize_result_maps_plain_values_to_metadata_types():
    result = materialize_result({"path": v.path("/tmp/x.parquet"), "counts": {"a": {1, 2}}, "note": "text", "n": 4})
    assert isinstance(result.metadata["path"], dg.PathMetadataValue)
    assert result.metadata["counts"].value == {"a": [1, 2]}
    assert result.metadata["note"] == "text" and result.metadata["n"] == 4


def test_a_path_object_becomes_a_path_metadata_value_not_a_json_string(tmp_path):
    result = materialize_result({"path": tmp_path / "t.parquet"})
    assert isinstance(result.metadata["path"], dg.PathMetadataValue)
    assert result.metadata["path"].value == str(tmp_path / "t.parquet")


def test_write_outputs_writes_what_it_is_given_under_the_shared_metadata_keys(tmp_path):
    import pandas as pd

    from pixel_pipeline.core.records import rejects_frame
    from pixel_pipeline.core.settings import PipelinePaths

    paths = PipelinePaths(data_dir=tmp_path / "data", output_dir=tmp_path / "out")
    written = paths.write_outputs("some_asset", pd.DataFrame({"a": [1]}), rejects_frame([]), {"rows": 1})
    assert written == {"path": paths.table("some_asset"), "rejects_path": paths.rejects("some_asset"),
                       "report_path": paths.report_dir("some_asset") / "summary.json"}
    assert all(p.exists() for p in written.values())
    assert paths.write_outputs("some_asset", report={"rows": 2}, report_file="report.json") == {
        "report_path": paths.report_dir("some_asset") / "report.json"}
