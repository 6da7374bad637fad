"""Whether the last `splits` table's assignments are kept: only when the seed and ratios are the ones it was made
with. A changed seed or ratio is a deliberate reshuffle, so the old table is then ignored."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pixel_pipeline.core.io import read_parquet
from pixel_pipeline.splits.assign import previous_assignments_from

SPLIT_CONFIG_FILE = "split_config.json"  # the seed and ratios the last splits table was made with
NO_PREVIOUS = "none (first run or keep_previous_assignments off)"
SETTINGS_CHANGED = "ignored: seed or ratios changed since the previous splits table"


def split_params(seed: int, validation_ratio: float, test_ratio: float) -> dict[str, Any]:
    """The settings that decide every hash split: a previous table is only reused under the same ones."""
    return {"seed": seed, "validation_ratio": validation_ratio, "test_ratio": test_ratio}


def reuse_decision(keep_previous: bool, saved_params: Mapping[str, Any] | None, params: Mapping[str, Any]) -> str | None:
    """None when the previous assignments are kept, else the note saying why not (`saved_params`: None when there
    is no previous table or no record of its settings)."""
    if not keep_previous or saved_params is None:
        return NO_PREVIOUS
    if dict(saved_params) != dict(params):
        return SETTINGS_CHANGED
    return None


def kept_note(previous: Mapping[str, str]) -> str:
    return f"{len(previous)} groups kept from the previous splits table"


def read_previous_assignments(
    keep_previous: bool, splits_table: Path, config_file: Path, params: Mapping[str, Any]
) -> tuple[dict[str, str], str]:
    """(group node -> split to keep, note for the metadata); the previous table is read only when it is reused."""
    saved = None
    if keep_previous and splits_table.exists() and config_file.exists():
        saved = json.loads(config_file.read_text())
    why_not = reuse_decision(keep_previous, saved, params)
    if why_not is not None:
        return {}, why_not
    previous = previous_assignments_from(read_parquet(splits_table, columns=["group_node", "split"]))
    return previous, kept_note(previous)
