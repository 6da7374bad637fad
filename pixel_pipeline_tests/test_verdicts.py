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
