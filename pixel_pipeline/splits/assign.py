"""Grouped, stratified, stable train / validation / test assignment.

Why each rule exists:
- **Grouped**: rows that share a transcript (`file`), a counseling question (`group_key` = question_id), a
  near-duplicate cluster (`dup_cluster`), an exact (normalised) response or — for conversations — an exact
  (normalised) question are joined into one *split group* (union-find), and a split group lands in one split.
  A naive row-level split of a real corpus put every validation row's transcript into training as well.
- **Stable**: a split group's split is a deterministic function of its *anchor* (the lexicographically smallest
  `dataset:group_key` among its members) and the seed: `u = sha256(seed, anchor)` mapped to [0, 1), then
  `u < validation_ratio` -> validation, `< validation_ratio + test_ratio` -> test, else train. Adding data never
  changes `u` of an existing group. Two things could still move rows — a new row that bridges two existing groups,
  and the small-stratum floor below — so the previous assignment (`previous_assignments`, read from the last
  `splits` table when the seed and ratios are unchanged) is honoured first: existing groups keep their split.
- **Stratified**: hashing gives every stratum (each expert, each dataset, each stage) its share in expectation; a floor
  promotes, per stratum still without `min_validation_groups` validation groups, the new train groups with the
  smallest `u` (only when the stratum has at least two groups, so training keeps one).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from pixel_pipeline.core.records import (
    DATASET_COT,
    DATASET_COUNSELING,
    DATASET_SEGMENTS,
    STYLES,
    reject_row,
)

SPLITS = ("train", "validation", "test")
STAGE_COUNSELING, STAGE_REASONING, STAGE_VOICE = 1, 2, 3
STAGE_NAMES = {STAGE_COUNSELING: "stage1_counseling", STAGE_REASONING: "stage2_reasoning", STAGE_VOICE: "stage3_voice"}
REVIEWER_REJECTED = "reviewer_rejected"
REJECT_VERDICTS = frozenset({"reject", "rejected"})
_SPLIT_PRIORITY = {"validation": 0, "test": 1, "train": 2}  # ties in previous splits keep evaluation sets intact
_WS = re.compile(r"\s+")


# ---- small helpers ---------------------------------------------------------------------------------------------
def _present(value: Any) -> bool:
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
    return _WS.sub(" ", str(text)).strip().casefold() if _present(text) else ""


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


def stage_for(dataset: str, source: Any, voice_sources: Iterable[str]) -> int | None:
    """1 counseling, 2 reasoning, 3 the educator's voice; None for other channels' segments (experts only)."""
    if dataset == DATASET_COUNSELING:
        return STAGE_COUNSELING
    if dataset == DATASET_COT:
        return STAGE_REASONING
    if dataset == DATASET_SEGMENTS and _present(source) and str(source) in voice_sources:
        return STAGE_VOICE
    return None


def group_node(dataset: str, group_key: Any, fallback_id: Any) -> str:
    """`dataset:group_key`; a row without a group key is its own group (keyed by its id)."""
    key = group_key if _present(group_key) else f"id:{fallback_id}"
    return f"{dataset}:{key}"


def augmented_mask(df: pd.DataFrame) -> pd.Series:
    """Rows upsampled by curation's rebalance (`augmented` true): never counted, kept out of evaluation splits."""
    if "augmented" not in df.columns:
        return pd.Series(False, index=df.index)
    return df["augmented"].map(lambda v: bool(v) if _present(v) else False).astype(bool)


def pair_ids(df: pd.DataFrame) -> pd.Series:
    """The id of each row of a mixed table (segment_id for segments, record_id otherwise)."""
    seg = df["segment_id"] if "segment_id" in df.columns else pd.Series(None, index=df.index)
    rec = df["record_id"] if "record_id" in df.columns else pd.Series(None, index=df.index)
    return pd.Series(
        [s if d == DATASET_SEGMENTS else r for d, s, r in zip(df["dataset"].tolist(), seg.tolist(), rec.tolist())],
        index=df.index, dtype=object,
    )


def _col(df: pd.DataFrame, name: str) -> list[Any]:
    """A column as a plain Python list (iterating Arrow-backed columns element by element is slow)."""
    return df[name].tolist() if name in df.columns else [None] * len(df)


class _UnionFind:
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


# ---- reviewer verdicts -----------------------------------------------------------------------------------------
def reviewer_rejections(verdicts: pd.DataFrame | None) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(dataset, id) -> the reject verdicts for it. One reject from any reviewer excludes the pair (conservative)."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    if verdicts is None or verdicts.empty:
        return out
    missing = {"dataset", "verdict"} - set(verdicts.columns)
    if missing:
        raise ValueError(f"review_verdicts lacks columns {sorted(missing)}")
    ids = pair_ids(verdicts).tolist()
    datasets, verdict_values = _col(verdicts, "dataset"), _col(verdicts, "verdict")
    reviewers, notes = _col(verdicts, "reviewer"), _col(verdicts, "note")
    for dataset, item_id, verdict, reviewer, note in zip(datasets, ids, verdict_values, reviewers, notes):
        if _present(item_id) and normalise_text(verdict) in REJECT_VERDICTS:
            out[(str(dataset), str(item_id))].append(
                {"reviewer": reviewer if _present(reviewer) else None, "note": note if _present(note) else None}
            )
    return out


# ---- the assignment ----------------------------------------------------------------------------------------------
@dataclass
class SplitResult:
    splits: pd.DataFrame  # the `splits` table
    rejects: list[dict[str, Any]]  # reviewer-rejected pairs (core.records reject rows)
    report: dict[str, Any] = field(default_factory=dict)


def stratum_keys(dataset: str, style: Any, stage: int | None) -> list[str]:
    """Strata that each need validation rows: every dataset, every expert, every training stage."""
    keys = [f"dataset:{dataset}"]
    if dataset == DATASET_SEGMENTS and _present(style):
        keys.append(f"expert:{style}")
    if stage is not None:
        keys.append(f"stage:{STAGE_NAMES[stage]}")
    return keys


def assign_splits(
    pairs: pd.DataFrame,
    validation_ratio: float = 0.1,
    test_ratio: float = 0.0,
    seed: int = 42,
    min_validation_groups: int = 1,
    voice_sources: Sequence[str] = (),
    review_verdicts: pd.DataFrame | None = None,
    previous_assignments: Mapping[str, str] | None = None,
    stage_name: str = "splits",
) -> SplitResult:
    """Drop reviewer-rejected pairs, then give every remaining row a split, a stage and its split group."""
    if not 0 < validation_ratio < 1 or not 0 <= test_ratio < 1 or validation_ratio + test_ratio >= 1:
        raise ValueError(
            f"need 0 < validation_ratio, 0 <= test_ratio and validation_ratio + test_ratio < 1; "
            f"got {validation_ratio=} {test_ratio=}"
        )
    required = {"dataset", "segment_id", "record_id", "prompt", "response", "group_key"}
    missing = required - set(pairs.columns)
    if missing:
        raise ValueError(f"deduplicated_pairs lacks columns {sorted(missing)}")
    unknown = set(pairs["dataset"].dropna()) - {DATASET_SEGMENTS, DATASET_COUNSELING, DATASET_COT}
    if unknown or pairs["dataset"].isna().any():
        raise ValueError(f"unknown dataset values in deduplicated_pairs: {sorted(map(str, unknown)) or ['<null>']}")

    df = pairs.reset_index(drop=True).copy()
    df["pair_id"] = pair_ids(df)
    if df["pair_id"].map(lambda v: not _present(v)).any():
        bad = df.loc[df["pair_id"].map(lambda v: not _present(v)), "dataset"].value_counts().to_dict()
        raise ValueError(f"pairs without their dataset's id column: {bad}")
    aug = augmented_mask(df)

    # 1. reviewer verdicts
    rejections = reviewer_rejections(review_verdicts)
    known = set(zip(df["dataset"].astype(str), df["pair_id"].astype(str)))
    rejected_mask = pd.Series(
        [(d, i) in rejections for d, i in zip(df["dataset"], df["pair_id"])], index=df.index, dtype=bool
    )
    rejects = [
        reject_row(
            row["dataset"], row["pair_id"], stage_name, [REVIEWER_REJECTED],
            details={"verdicts": rejections[(row["dataset"], row["pair_id"])]},
            source=row.get("source") if _present(row.get("source")) else None,
            file=row.get("file") if _present(row.get("file")) else None,
        )
        for _, row in df[rejected_mask & ~aug].iterrows()
    ]
    kept = df[~rejected_mask].reset_index(drop=True)
    kept_aug = aug[~rejected_mask].reset_index(drop=True)

    # 2. split groups: union of group key, transcript, dup cluster, exact response, exact conversation question
    uf = _UnionFind()
    nodes = []
    datasets = _col(kept, "dataset")
    for dataset, group_key, item_id, file, cluster, prompt, response in zip(
        datasets, _col(kept, "group_key"), _col(kept, "pair_id"), _col(kept, "file"), _col(kept, "dup_cluster"),
        _col(kept, "prompt"), _col(kept, "response"),
    ):
        node = group_node(dataset, group_key, item_id)
        uf.find(node)
        links = []
        if dataset == DATASET_SEGMENTS and _present(file):
            links.append(f"file:{file}")
        if _present(cluster):
            links.append(f"cluster:{cluster}")
        response_key = text_key(response)
        if response_key:
            links.append(f"response:{response_key}")
        if dataset != DATASET_SEGMENTS:
            question_key = text_key(prompt)
            if question_key:
                links.append(f"question:{question_key}")
        for link in links:
            uf.union(node, link)
        nodes.append(node)
    kept["_group_node"] = nodes
    roots = [uf.find(n) for n in nodes]
    # anchor: the smallest group node in the component (link nodes such as "response:..." are not anchors)
    anchor_of_root: dict[str, str] = {}
    for root, node in zip(roots, nodes):
        if root not in anchor_of_root or node < anchor_of_root[root]:
            anchor_of_root[root] = node
    split_groups = [anchor_of_root[r] for r in roots]
    kept["split_group"] = split_groups

    # 3. splits per split group: previous assignment first, then the hash rule
    previous_assignments = dict(previous_assignments or {})
    nodes_of_group: dict[str, list[str]] = defaultdict(list)
    for group, node in zip(split_groups, nodes):
        nodes_of_group[group].append(node)
    split_of: dict[str, str] = {}
    source_of: dict[str, str] = {}
    moved_rows = 0
    for group in sorted(nodes_of_group):
        prev = Counter(previous_assignments[n] for n in nodes_of_group[group] if n in previous_assignments)
        if prev:
            best = sorted(prev.items(), key=lambda kv: (-kv[1], _SPLIT_PRIORITY.get(kv[0], 9)))[0][0]
            split_of[group] = best
            source_of[group] = "previous"
            moved_rows += sum(c for s, c in prev.items() if s != best)
        else:
            split_of[group] = split_for_unit(hash_unit(seed, group), validation_ratio, test_ratio)
            source_of[group] = "hash"

    # 4. stratum floor: each stratum gets validation groups even when small
    voice = frozenset(voice_sources)
    stages = [stage_for(d, s, voice) for d, s in zip(datasets, _col(kept, "source"))]
    strata_groups: dict[str, set[str]] = defaultdict(set)
    for dataset, style, stage, group in zip(datasets, _col(kept, "style"), stages, split_groups):
        for key in stratum_keys(dataset, style, stage):
            strata_groups[key].add(group)
    promoted: dict[str, list[str]] = {}
    unmet: dict[str, str] = {}
    for stratum in sorted(strata_groups):
        groups = strata_groups[stratum]
        have = sum(1 for g in groups if split_of[g] == "validation")
        need = min(min_validation_groups, len(groups) - 1) - have
        if need <= 0:
            if have < min_validation_groups:
                unmet[stratum] = f"only {len(groups)} split group(s); one stays in train"
            continue
        candidates = sorted(
            (g for g in groups if split_of[g] == "train" and source_of[g] == "hash"), key=lambda g: hash_unit(seed, g)
        )
        for g in candidates[:need]:
            split_of[g] = "validation"
            source_of[g] = "floor"
            promoted.setdefault(stratum, []).append(g)
        if len(candidates) < need:
            unmet[stratum] = "no new train group left to promote (earlier assignments are kept)"

    kept["split"] = kept["split_group"].map(split_of)
    kept["split_rule"] = kept["split_group"].map(source_of)
    kept["stage"] = pd.array(stages, dtype="Int64")
    kept["augmented"] = kept_aug.to_numpy()

    report = {
        "rows_in": int(len(df)),
        "rows_in_counted": int((~aug).sum()),
        "reviewer_rejected": int(len(rejects)),
        "reviewer_rejected_augmented_copies": int((rejected_mask & aug).sum()),
        "verdicts_for_unknown_pairs": int(sum(1 for k in rejections if k not in known)),
        "split_groups": int(len(split_of)),
        "split_groups_by_rule": dict(Counter(source_of.values())),
        "rows_moved_by_merges": int(moved_rows),
        "floor_promotions": promoted,
        "strata_without_validation_floor": unmet,
        "seed": seed,
        "validation_ratio": validation_ratio,
        "test_ratio": test_ratio,
    }
    table = kept.drop(columns=["pair_id"]).rename(columns={"_group_node": "group_node"})
    return SplitResult(splits=table, rejects=rejects, report=report)


def previous_assignments_from(table: pd.DataFrame | None) -> dict[str, str]:
    """group node -> split from an earlier `splits` table (the ledger that keeps assignments stable)."""
    if table is None or table.empty or not {"group_node", "split"} <= set(table.columns):
        return {}
    pairs = table[["group_node", "split"]].dropna().drop_duplicates()
    return dict(zip(pairs["group_node"].astype(str), pairs["split"].astype(str)))


# ---- checks over a splits table ----------------------------------------------------------------------------------
LEAKAGE_KEYS = ("group_key", "transcript", "dup_cluster", "question", "response")


def leakage_report(table: pd.DataFrame, max_examples: int = 10) -> dict[str, Any]:
    """For each grouping key, the keys found in more than one split (must all be zero)."""
    out: dict[str, Any] = {}
    if table.empty:
        return {k: {"leaking_keys": 0, "examples": []} for k in LEAKAGE_KEYS}
    datasets, splits = _col(table, "dataset"), _col(table, "split")
    keys = {
        "group_key": [
            group_node(d, g, i) for d, g, i in zip(datasets, _col(table, "group_key"), pair_ids(table).tolist())
        ],
        "transcript": [
            str(f) if d == DATASET_SEGMENTS and _present(f) else None for d, f in zip(datasets, _col(table, "file"))
        ],
        "dup_cluster": [str(c) if _present(c) else None for c in _col(table, "dup_cluster")],
        "question": [text_key(p) if d != DATASET_SEGMENTS else None for d, p in zip(datasets, _col(table, "prompt"))],
        "response": [text_key(r) for r in _col(table, "response")],
    }
    for name, values in keys.items():
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


def ratio_report(
    table: pd.DataFrame, validation_ratio: float, test_ratio: float, ratio_tolerance: float
) -> dict[str, Any]:
    """Row shares per split against the targets, with the tolerance widened to the sampling noise of a group split.

    Whole groups move together, so the achievable precision depends on how many groups there are and how unequal
    they are: the standard error of a group-level Bernoulli split is sqrt(p(1-p)/n_eff), n_eff = (sum s)^2 / sum s^2.
    """
    counted = table[~augmented_mask(table)] if not table.empty else table
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
    counted = table[~augmented_mask(table)] if not table.empty else table
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
