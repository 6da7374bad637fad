"""Asset-check verdicts and metadata values as plain data.

Domain modules build them without importing Dagster, tests call those builders directly, and the Dagster layer
turns them into `AssetCheckResult`s and `MetadataValue`s (`defs/metadata.py`). Typed values use Dagster Pipes'
own wire shape (`{"type": ..., "raw_value": ...}`), so the trainer sends the same values through Pipes unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pixel_pipeline.core.markdown import markdown_table

ERROR, WARN = "ERROR", "WARN"


@dataclass(frozen=True)
class Verdict:
    """One asset check's outcome: a failed ERROR check fails the check (and blocks, where the spec says so)."""

    check_name: str
    passed: bool
    description: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    severity: str = ERROR

    def __post_init__(self) -> None:
        if self.severity not in (ERROR, WARN):
            raise ValueError(f"severity must be {ERROR!r} or {WARN!r}, got {self.severity!r}")
        object.__setattr__(self, "passed", bool(self.passed))


def plain(value: Any) -> Any:
    """JSON-safe copy of any value (numpy scalars, paths, sets ... become plain JSON)."""
    return json.loads(json.dumps(value, default=_default))


def _default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy / torch scalar
        return value.item()
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value, key=str) if isinstance(value, (set, frozenset)) else list(value)
    return str(value)


def md(text: str) -> dict[str, Any]:
    return {"type": "md", "raw_value": str(text)}


def path(value: str | Path) -> dict[str, Any]:
    return {"type": "path", "raw_value": str(value)}


def json_value(value: Any) -> dict[str, Any]:
    return {"type": "json", "raw_value": plain(value)}


def table(data, columns=None, **kwargs) -> dict[str, Any]:
    """A table shown as markdown (see core.markdown.markdown_table for the accepted shapes)."""
    return md(markdown_table(data, columns, **kwargs))


TYPED_KINDS = ("md", "path", "json", "text", "url", "int", "float", "bool", "null")


def is_typed(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) == {"type", "raw_value"} and value["type"] in TYPED_KINDS
