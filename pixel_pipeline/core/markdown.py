"""Markdown tables for asset metadata, reports and dataset cards (no `tabulate` dependency)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd


def markdown_table(
    data: pd.DataFrame | Iterable[Mapping[str, Any]] | Iterable[Sequence[Any]],
    columns: Sequence[str] | None = None,
    *,
    index: bool = False,
    empty: str = "_(none)_",
) -> str:
    """A GitHub markdown table from a DataFrame, dicts (`columns` picks and orders keys) or row sequences (`columns`
    is the header). Pipes and newlines inside cells are escaped so a stray `|` cannot break the table."""
    if isinstance(data, pd.DataFrame):
        frame = data.reset_index() if index else data
        if columns is not None:
            frame = frame.reindex(columns=list(columns))
    else:
        rows = list(data)
        if rows and not isinstance(rows[0], Mapping):
            frame = pd.DataFrame(rows, columns=list(columns) if columns is not None else None)
        else:
            frame = pd.DataFrame(rows)
            if columns is not None:
                frame = frame.reindex(columns=list(columns))
    if frame.empty:
        return empty
    header = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")
