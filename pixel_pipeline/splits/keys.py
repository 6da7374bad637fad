"""Row keys of the split assignment: normalised text keys, group nodes, the seeded hash, pair ids, masks.

Shared by the assignment (splits.assign) and the reports over its table (splits.reports), so both read a row the same
way: a leak the report finds is a key the assignment would have joined.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any

import pandas as pd

from pixel_pipeline.core.records import DATASET_SEGMENTS

_WS = re.compile(r"\s+")


def present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    try:
        if pd.isna(value) is True:
            return False
    except (TypeError, ValueError):
        pass
    return str(value) != ""


def normalise_text(text: Any) -> str:
    """Case- and whitespace-insensitive form used to join exact repeats of a question or a response."""
    return _WS.sub(" ", str(text)).strip().casefold() if present(text) else ""


def text_key(text: Any) -> str | None:
    norm = normalise_text(text)
    return hashlib.sha256(norm.encode("utf-8")).hexdigest()[:16] if norm else None


def hash_unit(seed: int | str, key: str) -> float:
    """Uniform number in [0, 1) from (seed, key): the same on every machine and run."""
    digest = hashlib.sha256(f"{seed}\x00{key}".encode()).hexdigest()
    return int(digest[:15], 16) / float(16**15)


def split_for_unit(u: float, validation_ratio: float, test_ratio: float) -> str:
    if u < validation_ratio:
        return "validation"
    if u < validation_ratio + test_ratio:
        return "test"
    return "train"


def group_node(dataset: str, group_key: Any, fallback_id: Any) -> str:
    """`dataset:group_key`; a row without a group key is its own group (keyed by its id)."""
    key = group_key if present(group_key) else f"id:{fallback_id}"
    return f"{dataset}:{key}"


def augmented_mask(df: pd.DataFrame) -> pd.Series:
    """Rows upsampled by curation's rebalance (`augmented` true): never counted, kept out of evaluation splits."""
    if "augmented" not in df.columns:
        return pd.Series(False, index=df.index)
    return df["augmented"].map(lambda v: bool(v) if present(v) else False).astype(bool)


def pair_ids(df: pd.DataFrame) -> pd.Series:
    """The id of each row of a mixed table (segment_id for segments, record_id otherwise)."""
    seg = df["segment_id"] if "segment_id" in df.columns else pd.Series(None, index=df.index)
    rec = df["record_id"] if "record_id" in df.columns else pd.Series(None, index=df.index)
    return pd.Series(
        [s if d == DATASET_SEGMENTS else r for d, s, r in zip(df["dataset"].tolist(), seg.tolist(), rec.tolist())],
        index=df.index, dtype=object,
    )


def as_list(df: pd.DataFrame, name: str) -> list[Any]:
    """A column as a plain Python list (iterating Arrow-backed columns element by element is slow)."""
    return df[name].tolist() if name in df.columns else [None] * len(df)


class UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        """Iterative with path compression: a long chain of joined groups cannot hit the recursion limit."""
        root = self.parent.setdefault(x, x)
        while self.parent[root] != root:
            root = self.parent[root]
        while x != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            # keep the smaller key as root: deterministic regardless of row order
            if rb < ra:
                ra, rb = rb, ra
            self.parent[rb] = ra
