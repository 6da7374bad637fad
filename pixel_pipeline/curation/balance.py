"""Expert balance: the four styles feed four experts (therapeutic 0, educational 1, empathetic 2, practical 3).

Policies (`balance_policy`):
- "warn" (default): nothing changes; counts and shares are reported and a warning check flags imbalance.
- "cap": experts larger than `target_expert_ratio` x the smallest are cut to that size; the lowest-ranked rows
  (quality + alignment) become rejects with reason `expert_balance_cap`.
- "upsample": experts smaller than the largest / `target_expert_ratio` are topped up with copies of their own
  rows (best first, round-robin), each marked `augmented = True` and carrying the original's id.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pixel_pipeline.core.records import DATASET_SEGMENTS, STYLES

BALANCE_POLICIES = ("warn", "cap", "upsample")


def expert_counts(pairs: pd.DataFrame) -> pd.DataFrame:
    """Count and share per expert over the segment pairs (augmented copies counted separately)."""
    seg = pairs[pairs["dataset"] == DATASET_SEGMENTS]
    counts = seg["style"].value_counts().reindex(list(STYLES), fill_value=0)
    aug = seg.loc[seg.get("augmented", pd.Series(False, index=seg.index)).astype(bool), "style"].value_counts()
    total = int(counts.sum())
    return pd.DataFrame({
        "expert": range(len(STYLES)),
        "style": list(STYLES),
        "count": counts.to_numpy(),
        "augmented": aug.reindex(list(STYLES), fill_value=0).to_numpy(),
        "share": (counts / total).round(4).to_numpy() if total else np.zeros(len(STYLES)),
    })


def rebalance(pairs: pd.DataFrame, member_score: pd.Series, balance_policy: str = "warn",
              target_expert_ratio: float = 3.0) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(pairs after the policy, capped rows, summary). Only segment pairs are touched."""
    if balance_policy not in BALANCE_POLICIES:
        raise ValueError(f"balance_policy must be one of {BALANCE_POLICIES}, got {balance_policy!r}")
    if target_expert_ratio < 1:
        raise ValueError("target_expert_ratio must be >= 1")
    pairs = pairs.copy()
    if "augmented" not in pairs:
        pairs["augmented"] = False
    before = expert_counts(pairs)
    present = before[before["count"] > 0]
    summary = {"balance_policy": balance_policy, "target_expert_ratio": target_expert_ratio,
               "before": before[["style", "count"]].set_index("style")["count"].to_dict(), "capped": 0, "upsampled": 0}
    capped = pairs.iloc[0:0]
    if balance_policy == "warn" or len(present) < 2:
        summary["after"] = summary["before"]
        return pairs, capped, summary
    smallest, largest = int(present["count"].min()), int(present["count"].max())
    seg_mask = pairs["dataset"] == DATASET_SEGMENTS
    if balance_policy == "cap":
        limit = int(np.floor(target_expert_ratio * smallest))
        drop_idx = []
        for style in STYLES:
            rows = pairs.index[seg_mask & (pairs["style"] == style)]
            if len(rows) > limit:
                ranked = member_score.loc[rows].sort_values(ascending=False, kind="stable")
                drop_idx.extend(ranked.index[limit:])
        capped = pairs.loc[drop_idx]
        pairs = pairs.drop(index=drop_idx)
        summary.update(capped=len(drop_idx), cap_per_expert=limit)
    else:
        floor = int(np.ceil(largest / target_expert_ratio))
        extra = []
        for style in STYLES:
            rows = pairs.index[seg_mask & (pairs["style"] == style)]
            if 0 < len(rows) < floor:
                ranked = member_score.loc[rows].sort_values(ascending=False, kind="stable").index
                need = floor - len(rows)
                picks = [ranked[k % len(ranked)] for k in range(need)]
                copies = pairs.loc[picks].copy()
                copies["augmented"] = True
                extra.append(copies)
        if extra:
            added = pd.concat(extra)
            pairs = pd.concat([pairs, added])
            summary.update(upsampled=len(added), upsample_floor=floor)
    summary["after"] = expert_counts(pairs)[["style", "count"]].set_index("style")["count"].to_dict()
    return pairs.reset_index(drop=True), capped, summary
