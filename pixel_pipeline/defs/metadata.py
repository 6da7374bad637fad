"""Plain metadata values and check verdicts (`core.verdicts`) turned into Dagster's types, for every domain."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import PurePath
from typing import Any

import dagster as dg

from pixel_pipeline.core.markdown import markdown_table
from pixel_pipeline.core.verdicts import WARN, Verdict, is_typed, plain

_TYPED = {
    "md": dg.MetadataValue.md,
    "path": dg.MetadataValue.path,
    "json": dg.MetadataValue.json,
    "text": dg.MetadataValue.text,
    "url": dg.MetadataValue.url,
    "int": dg.MetadataValue.int,
    "float": dg.MetadataValue.float,
    "bool": dg.MetadataValue.bool,
    "null": lambda _value: dg.MetadataValue.null(),
}


def md_table(data, columns=None, **kwargs) -> dg.MetadataValue:
    """A table shown as markdown in the UI (see core.markdown.markdown_table for the accepted shapes)."""
    return dg.MetadataValue.md(markdown_table(data, columns, **kwargs))


def json_metadata(value: Any) -> dg.MetadataValue:
    """JSON metadata from any value (numpy scalars, paths, sets ... become plain JSON)."""
    return dg.MetadataValue.json(plain(value))


def metadata_value(value: Any) -> Any:
    """A plain value as Dagster metadata: typed dicts by their type, paths as paths, scalars as they are, the rest as
    JSON."""
    if isinstance(value, dg.MetadataValue):
        return value
    if is_typed(value):
        return _TYPED[value["type"]](value["raw_value"])
    if isinstance(value, PurePath):  # a file the asset wrote: a path the UI can open, not a JSON string
        return dg.MetadataValue.path(str(value))
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item") and not hasattr(value, "__len__"):  # numpy scalar
        return value.item()
    return json_metadata(value)


def to_metadata(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: metadata_value(value) for key, value in values.items()}


def check_result(verdict: Verdict) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=verdict.check_name,
        passed=verdict.passed,
        severity=dg.AssetCheckSeverity.WARN if verdict.severity == WARN else dg.AssetCheckSeverity.ERROR,
        description=verdict.description or None,
        metadata=to_metadata(verdict.metadata),
    )


def materialize_result(metadata: Mapping[str, Any], verdicts: Iterable[Verdict] = ()) -> dg.MaterializeResult:
    """The asset's return value from plain metadata and verdicts."""
    return dg.MaterializeResult(metadata=to_metadata(metadata), check_results=[check_result(v) for v in verdicts])
