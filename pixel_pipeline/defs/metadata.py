"""Metadata values shared by every domain's assets."""

from __future__ import annotations

import json
from typing import Any

import dagster as dg

from pixel_pipeline.core.markdown import markdown_table


def md_table(data, columns=None, **kwargs) -> dg.MetadataValue:
    """A table shown as markdown in the UI (see core.markdown.markdown_table for the accepted shapes)."""
    return dg.MetadataValue.md(markdown_table(data, columns, **kwargs))


def json_metadata(value: Any) -> dg.MetadataValue:
    """JSON metadata from any value (numpy scalars, paths, sets ... become plain JSON)."""
    return dg.MetadataValue.json(json.loads(json.dumps(value, default=str)))
