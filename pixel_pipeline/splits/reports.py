"""What a `splits` table looks like from outside: leakage across splits, row shares against the targets, and
validation coverage per expert, dataset and stage. The `splits` asset's checks read these reports."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import pandas as pd

from pixel_pipeline.core.records import DATASET_SEGMENTS, STYLES
from pixel_pipeline.splits.assign import SPLITS, STAGE_NAMES
from pixel_pipeline.splits.keys import as_list, augmented_mask, group_node, pair_ids, present, text_key

LEAKAGE_KEYS = ("group_key", "transcript", "dup_cluster", "question", "response")


def counted_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows that count: upsampled (augmented) copies repeat their original and are left out."""
    return table[~augmented_mask(table)] if not table.empty else table


def split_reports(
    table: pd.DataFrame, validation_ratio: float, test_ratio: float, ratio_tolerance: float
) -> dict[str, Any]:
    """The three reports the `splits` asset writes to summary.json and checks: leakage, ratios, coverage."""
    return {
        "leakage": leakage_report(table),
        "ratios": ratio_report(table, validation_ratio, test_ratio, ratio_tolerance),
        "coverage": validation_coverage(table),
    }


def leakage_report(table: pd.DataFrame, max_examples: int = 10) -> dict[str, Any]:
    """For each grouping key, the keys found in more than one split (must all be zero)."""
    out: dict[str, Any] = {}
    if table.empty:
        return {k: {"leaking_keys": 0, "examples": []} for k in LEAKAGE_KEYS}
    splits = as_list(table, "split")
    for name, values in _leakage_keys(table).items():
        splits_by_key: dict[str, set[str]] = defaultdict(set)
        for key, split in zip(values, splits):
            if key is not None:
                splits_by_key[key].add(split)
        leaking = sorted(k for k, s in splits_by_key.items() if len(s) > 1)
        out[name] = {
            "leaking_keys": len(leaking),
            "examples": [{"key": k, "splits": sorted(splits_by_key[k])} for k in leaking[:max_examples]],
        }
    return out


def _leakage_keys(table: pd.DataFrame) -> dict[str, list[str | None]]:
    """Each row's key under every grouping rule (None where the rule does not apply to the row)."""
    datasets = as_list(table, "dataset")
    return {
        "group_key": [
            group_node(d, g, i) for d, g, i in zip(datasets, as_list(table, "group_key"), pair_ids(table).tolist())
        ],
        "transcript": [
            str(f) if d == DATASET_SEGMENTS and present(f) else None for d, f in zip(datasets, as_list(table, "file"))
        ],
        "dup_cluster": [str(c) if present(c) else None for c in as_list(table, "dup_cluster")],
        "question": [text_key(p) if d != DATASET_SEGMENTS else None for d, p in zip(datasets, as_list(table, "prompt"))],
        "response": [text_key(r) for r in as_list(table, "response")],
    }


def ratio_report(
    table: pd.DataFrame, validation_ratio: float, test_ratio: float, ratio_tolerance: float
) -> dict[str, Any]:
    """Row shares per split against the targets, with the tolerance widened to the sampling noise of a group split.

    Whole groups move together, so the achievable precision depends on how many groups there are and how unequal
    they are: the standard error of a group-level Bernoulli split is sqrt(p(1-p)/n_eff), n_eff = (sum s)^2 / sum s^2.
    """
    counted = counted_rows(table)
    total = len(counted)
    sizes = counted.groupby("split_group").size() if total else pd.Series(dtype=float)
    n_eff = float(sizes.sum() ** 2 / (sizes**2).sum()) if total else 0.0
    targets = {"validation": validation_ratio, "test": test_ratio, "train": 1 - validation_ratio - test_ratio}
    rows = {}
    ok = True
    for split, target in targets.items():
        share = float((counted["split"] == split).sum() / total) if total else 0.0
        noise = 3 * math.sqrt(target * (1 - target) / n_eff) if n_eff else 1.0
        tolerance = max(ratio_tolerance, noise)
        within = abs(share - target) <= tolerance
        ok &= within
        rows[split] = {"target": target, "share": round(share, 4), "tolerance": round(tolerance, 4), "within": within}
    return {"passed": bool(ok), "effective_groups": round(n_eff, 1), "splits": rows, "rows": total}


def validation_coverage(table: pd.DataFrame) -> dict[str, Any]:
    """Validation rows per expert (style) and per dataset; an expert with train rows but none here is missing."""
    counted = counted_rows(table)
    seg = counted[counted["dataset"] == DATASET_SEGMENTS] if not counted.empty else counted
    experts = {}
    for style in STYLES:
        rows = seg[seg["style"] == style] if not seg.empty else seg
        experts[style] = {
            "train": int((rows["split"] == "train").sum()) if not rows.empty else 0,
            "validation": int((rows["split"] == "validation").sum()) if not rows.empty else 0,
        }
    datasets = {}
    for dataset, rows in (counted.groupby("dataset") if not counted.empty else []):
        datasets[str(dataset)] = {s: int((rows["split"] == s).sum()) for s in SPLITS}
    stages = {}
    for stage, name in STAGE_NAMES.items():
        rows = counted[counted["stage"] == stage] if not counted.empty else counted
        stages[name] = {s: int((rows["split"] == s).sum()) if not rows.empty else 0 for s in SPLITS}
    missing = [s for s, c in experts.items() if c["validation"] == 0]
    return {"experts": experts, "datasets": datasets, "stages": stages, "experts_missing_in_validation": missing}
