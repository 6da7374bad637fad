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

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from pixel_pipeline.core.records import (  # the stage names are re-exported: plans, sizes and tests read them here
    DATASET_COT,
    DATASET_COUNSELING,
    DATASET_SEGMENTS,
    STAGE_COUNSELING,
    STAGE_NAMES,
    STAGE_REASONING,
    STAGE_VOICE,
    reject_row,
)
from pixel_pipeline.splits.keys import (  # plans and exports import hash_unit, augmented_mask from here
    UnionFind,
    as_list,
    augmented_mask,
    group_node,
    hash_unit,
    normalise_text,
    pair_ids,
    present,
    split_for_unit,
    text_key,
)

SPLITS = ("train", "validation", "test")
REVIEWER_REJECTED = "reviewer_rejected"
REJECT_VERDICTS = frozenset({"reject", "rejected"})
_SPLIT_PRIORITY = {"validation": 0, "test": 1, "train": 2}  # ties in previous splits keep evaluation sets intact


# ---- stages and strata ------------------------------------------------------------------------------------------
def stage_for(dataset: str, source: Any, voice_sources: Iterable[str]) -> int | None:
    """1 counseling, 2 reasoning, 3 the educator's voice; None for other channels' segments (experts only)."""
    if dataset == DATASET_COUNSELING:
        return STAGE_COUNSELING
    if dataset == DATASET_COT:
        return STAGE_REASONING
    if dataset == DATASET_SEGMENTS and present(source) and str(source) in voice_sources:
        return STAGE_VOICE
    return None


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
    datasets, verdict_values = as_list(verdicts, "dataset"), as_list(verdicts, "verdict")
    reviewers, notes = as_list(verdicts, "reviewer"), as_list(verdicts, "note")
    for dataset, item_id, verdict, reviewer, note in zip(datasets, ids, verdict_values, reviewers, notes):
        if present(item_id) and normalise_text(verdict) in REJECT_VERDICTS:
            out[(str(dataset), str(item_id))].append(
                {"reviewer": reviewer if present(reviewer) else None, "note": note if present(note) else None}
            )
    return out


def _rejected_mask(df: pd.DataFrame, rejections: Mapping[tuple[str, str], Any]) -> pd.Series:
    return pd.Series([(d, i) in rejections for d, i in zip(df["dataset"], df["pair_id"])], index=df.index, dtype=bool)


def _reviewer_reject_rows(
    rejected: pd.DataFrame, rejections: Mapping[tuple[str, str], list[dict[str, Any]]], stage_name: str
) -> list[dict[str, Any]]:
    """One reject row per reviewer-rejected pair (augmented copies are not counted anywhere, so not here either)."""
    return [
        reject_row(
            row["dataset"], row["pair_id"], stage_name, [REVIEWER_REJECTED],
            details={"verdicts": rejections[(row["dataset"], row["pair_id"])]},
            source=row.get("source") if present(row.get("source")) else None,
            file=row.get("file") if present(row.get("file")) else None,
        )
        for _, row in rejected.iterrows()
    ]


def _unknown_verdicts(df: pd.DataFrame, rejections: Mapping[tuple[str, str], Any]) -> int:
    """Reject verdicts naming a pair that is not in the table (a stale or mistyped id)."""
    known = set(zip(df["dataset"].astype(str), df["pair_id"].astype(str)))
    return int(sum(1 for k in rejections if k not in known))


# ---- the assignment ----------------------------------------------------------------------------------------------
@dataclass
class SplitResult:
    splits: pd.DataFrame  # the `splits` table
    rejects: list[dict[str, Any]]  # reviewer-rejected pairs (core.records reject rows)
    report: dict[str, Any] = field(default_factory=dict)


def stratum_keys(dataset: str, style: Any, stage: int | None) -> list[str]:
    """Strata that each need validation rows: every dataset, every expert, every training stage."""
    keys = [f"dataset:{dataset}"]
    if dataset == DATASET_SEGMENTS and present(style):
        keys.append(f"expert:{style}")
    if stage is not None:
        keys.append(f"stage:{STAGE_NAMES[stage]}")
    return keys


@dataclass(frozen=True)
class SplitSettings:
    """assign_splits' knobs and their one default: its keyword defaults and the `splits` Config read them here
    (call it with `**dataclasses.asdict(settings)`)."""

    validation_ratio: float = 0.1
    test_ratio: float = 0.0
    seed: int = 42  # of the group hash: changing it reshuffles every group
    min_validation_groups: int = 1  # floor of validation split groups per stratum


def assign_splits(
    pairs: pd.DataFrame,
    validation_ratio: float = SplitSettings.validation_ratio,
    test_ratio: float = SplitSettings.test_ratio,
    seed: int = SplitSettings.seed,
    min_validation_groups: int = SplitSettings.min_validation_groups,
    voice_sources: Sequence[str] = (),
    review_verdicts: pd.DataFrame | None = None,
    previous_assignments: Mapping[str, str] | None = None,
    stage_name: str = "splits",
) -> SplitResult:
    """Drop reviewer-rejected pairs, then give every remaining row a split, a stage and its split group."""
    _check_ratios(validation_ratio, test_ratio)
    df = _pairs_with_ids(pairs)
    aug = augmented_mask(df)

    # 1. reviewer verdicts
    rejections = reviewer_rejections(review_verdicts)
    rejected_mask = _rejected_mask(df, rejections)
    rejects = _reviewer_reject_rows(df[rejected_mask & ~aug], rejections, stage_name)
    kept = df[~rejected_mask].reset_index(drop=True)

    # 2. split groups, 3. their splits (previous assignment first, then the hash rule), 4. the stratum floor
    nodes, split_groups = group_rows(kept)
    split_of, source_of, moved_rows = assign_groups(
        nodes, split_groups, previous_assignments or {}, seed, validation_ratio, test_ratio
    )
    stages = [stage_for(d, s, frozenset(voice_sources)) for d, s in zip(as_list(kept, "dataset"), as_list(kept, "source"))]
    strata = strata_groups(as_list(kept, "dataset"), as_list(kept, "style"), stages, split_groups)
    promoted, unmet = promote_validation_floor(strata, split_of, source_of, min_validation_groups, seed)

    table = _splits_table(kept, nodes, split_groups, split_of, source_of, stages, aug[~rejected_mask])
    report = {
        "rows_in": int(len(df)),
        "rows_in_counted": int((~aug).sum()),
        "reviewer_rejected": int(len(rejects)),
        "reviewer_rejected_augmented_copies": int((rejected_mask & aug).sum()),
        "verdicts_for_unknown_pairs": _unknown_verdicts(df, rejections),
        "split_groups": int(len(split_of)),
        "split_groups_by_rule": dict(Counter(source_of.values())),
        "rows_moved_by_merges": int(moved_rows),
        "floor_promotions": promoted,
        "strata_without_validation_floor": unmet,
        "seed": seed,
        "validation_ratio": validation_ratio,
        "test_ratio": test_ratio,
    }
    return SplitResult(splits=table, rejects=rejects, report=report)


def _check_ratios(validation_ratio: float, test_ratio: float) -> None:
    if not 0 < validation_ratio < 1 or not 0 <= test_ratio < 1 or validation_ratio + test_ratio >= 1:
        raise ValueError(
            f"need 0 < validation_ratio, 0 <= test_ratio and validation_ratio + test_ratio < 1; "
            f"got {validation_ratio=} {test_ratio=}"
        )


def _pairs_with_ids(pairs: pd.DataFrame) -> pd.DataFrame:
    """A copy of the pairs with a `pair_id` column; a clear error for missing columns, datasets or ids."""
    required = {"dataset", "segment_id", "record_id", "prompt", "response", "group_key"}
    missing = required - set(pairs.columns)
    if missing:
        raise ValueError(f"deduplicated_pairs lacks columns {sorted(missing)}")
    unknown = set(pairs["dataset"].dropna()) - {DATASET_SEGMENTS, DATASET_COUNSELING, DATASET_COT}
    if unknown or pairs["dataset"].isna().any():
        raise ValueError(f"unknown dataset values in deduplicated_pairs: {sorted(map(str, unknown)) or ['<null>']}")
    df = pairs.reset_index(drop=True).copy()
    df["pair_id"] = pair_ids(df)
    without_id = df["pair_id"].map(lambda v: not present(v))
    if without_id.any():
        raise ValueError(f"pairs without their dataset's id column: {df.loc[without_id, 'dataset'].value_counts().to_dict()}")
    return df


def _group_links(dataset: str, file: Any, cluster: Any, prompt: Any, response: Any) -> list[str]:
    """The keys that join a row to others: transcript, dup cluster, exact response, exact conversation question."""
    links = []
    if dataset == DATASET_SEGMENTS and present(file):
        links.append(f"file:{file}")
    if present(cluster):
        links.append(f"cluster:{cluster}")
    response_key = text_key(response)
    if response_key:
        links.append(f"response:{response_key}")
    if dataset != DATASET_SEGMENTS:
        question_key = text_key(prompt)
        if question_key:
            links.append(f"question:{question_key}")
    return links


def group_rows(kept: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(group node, split group) per row: the union of group key, transcript, dup cluster, exact response and exact
    conversation question; a split group is named by its anchor, the smallest group node in it."""
    uf = UnionFind()
    nodes = []
    for dataset, group_key, item_id, file, cluster, prompt, response in zip(
        as_list(kept, "dataset"), as_list(kept, "group_key"), as_list(kept, "pair_id"), as_list(kept, "file"),
        as_list(kept, "dup_cluster"), as_list(kept, "prompt"), as_list(kept, "response"),
    ):
        node = group_node(dataset, group_key, item_id)
        uf.find(node)
        for link in _group_links(dataset, file, cluster, prompt, response):
            uf.union(node, link)
        nodes.append(node)
    roots = [uf.find(n) for n in nodes]
    # anchor: the smallest group node in the component (link nodes such as "response:..." are not anchors)
    anchor_of_root: dict[str, str] = {}
    for root, node in zip(roots, nodes):
        if root not in anchor_of_root or node < anchor_of_root[root]:
            anchor_of_root[root] = node
    return nodes, [anchor_of_root[r] for r in roots]


def assign_groups(
    nodes: Sequence[str], split_groups: Sequence[str], previous_assignments: Mapping[str, str], seed: int,
    validation_ratio: float, test_ratio: float,
) -> tuple[dict[str, str], dict[str, str], int]:
    """(split per group, rule per group: previous or hash, rows moved by merges): a group keeps the split most of its
    nodes had before (ties keep evaluation sets intact); a new group takes its hash's split."""
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
    return split_of, source_of, moved_rows


def strata_groups(
    datasets: Sequence[str], styles: Sequence[Any], stages: Sequence[int | None], split_groups: Sequence[str]
) -> dict[str, set[str]]:
    """stratum -> its split groups (a group is in every stratum of any of its rows)."""
    out: dict[str, set[str]] = defaultdict(set)
    for dataset, style, stage, group in zip(datasets, styles, stages, split_groups):
        for key in stratum_keys(dataset, style, stage):
            out[key].add(group)
    return out


def promote_validation_floor(
    strata: Mapping[str, set[str]], split_of: dict[str, str], source_of: dict[str, str], min_validation_groups: int,
    seed: int,
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Give each stratum `min_validation_groups` validation groups, even when small, by promoting its new train
    groups with the smallest hash (updates `split_of` / `source_of`). Returns (promoted per stratum, unmet strata
    with why): a stratum keeps one group in train, and earlier assignments are never moved."""
    promoted: dict[str, list[str]] = {}
    unmet: dict[str, str] = {}
    for stratum in sorted(strata):
        groups = strata[stratum]
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
    return promoted, unmet


def _splits_table(
    kept: pd.DataFrame, nodes: Sequence[str], split_groups: Sequence[str], split_of: Mapping[str, str],
    source_of: Mapping[str, str], stages: Sequence[int | None], kept_aug: pd.Series,
) -> pd.DataFrame:
    """The kept pairs with group node, split group, split, the rule that chose it, stage and augmented flag."""
    table = kept.copy()
    table["_group_node"] = list(nodes)
    table["split_group"] = list(split_groups)
    table["split"] = table["split_group"].map(split_of)
    table["split_rule"] = table["split_group"].map(source_of)
    table["stage"] = pd.array(list(stages), dtype="Int64")
    table["augmented"] = kept_aug.to_numpy()
    return table.drop(columns=["pair_id"]).rename(columns={"_group_node": "group_node"})


def previous_assignments_from(table: pd.DataFrame | None) -> dict[str, str]:
    """group node -> split from an earlier `splits` table (the ledger that keeps assignments stable)."""
    if table is None or table.empty or not {"group_node", "split"} <= set(table.columns):
        return {}
    pairs = table[["group_node", "split"]].dropna().drop_duplicates()
    return dict(zip(pairs["group_node"].astype(str), pairs["split"].astype(str)))
