"""Training plans over the exported pairs: staged (default), mixed (weighted sample) and curriculum.

Pools are the three stages: `counseling` (stage 1), `reasoning` (stage 2, CoT) and `voice` (stage 3, the
educator's own channel). Non-voice segments feed the style experts only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pixel_pipeline.splits.assign import STAGE_COUNSELING, STAGE_NAMES, STAGE_REASONING, STAGE_VOICE, hash_unit

POOL_STAGES = {"counseling": STAGE_COUNSELING, "reasoning": STAGE_REASONING, "voice": STAGE_VOICE}
DEFAULT_MIXED_WEIGHTS = {"counseling": 0.6, "reasoning": 0.2, "voice": 0.2}
CURRICULUM_ORDER = ("reasoning", "counseling", "voice")
# The seed's staged defaults, recorded in plans.json for trainers outside this project.
DEFAULT_STAGE_EPOCHS = (3, 2, 2)
DEFAULT_STAGE_LEARNING_RATES = (2e-4, 1e-4, 5e-5)
STOPPING_STRATEGIES = ("first_exhausted", "all_exhausted")


def stable_order(records: Sequence[Mapping[str, Any]], seed: int, salt: str = "") -> list[Mapping[str, Any]]:
    """A seeded shuffle that depends on each record's identity, not on its position (adding rows keeps order)."""

    def key(rec: Mapping[str, Any]) -> float:
        meta = rec["metadata"]
        ident = meta.get("segment_id") or meta.get("record_id") or ""
        user = next((m["content"] for m in rec["messages"] if m["role"] == "user"), "")
        return hash_unit(f"{seed}{salt}", f"{meta['dataset']}:{ident}:{user}")

    return sorted(records, key=key)


def pool_of(rec: Mapping[str, Any]) -> str | None:
    stage = rec["metadata"].get("stage")
    for pool, pool_stage in POOL_STAGES.items():
        if stage == pool_stage:
            return pool
    return None


def mixed_sample(
    train_records: Sequence[Mapping[str, Any]],
    mixed_weights: Mapping[str, float] = DEFAULT_MIXED_WEIGHTS,
    mixed_stopping_strategy: str = "first_exhausted",
    seed: int = 42,
) -> tuple[list[Mapping[str, Any]], dict[str, Any]]:
    """Weighted sample of the stage pools, named after `datasets.interleave_datasets` stopping strategies.

    first_exhausted: the largest set with the exact weights in which no row repeats (large pools are subsampled).
    all_exhausted: every row at least once; smaller pools are repeated up to their weight.
    Empty pools are dropped and the remaining weights renormalised (recorded in the returned summary).
    """
    if mixed_stopping_strategy not in STOPPING_STRATEGIES:
        raise ValueError(f"mixed_stopping_strategy must be one of {STOPPING_STRATEGIES}, got {mixed_stopping_strategy!r}")
    unknown = set(mixed_weights) - set(POOL_STAGES)
    if unknown or any(w < 0 for w in mixed_weights.values()):
        raise ValueError(f"mixed_weights keys must be {sorted(POOL_STAGES)} with weights >= 0; got {dict(mixed_weights)}")
    pools: dict[str, list[Mapping[str, Any]]] = {p: [] for p in POOL_STAGES}
    for rec in train_records:
        pool = pool_of(rec)
        if pool:
            pools[pool].append(rec)
    active = {p: float(w) for p, w in mixed_weights.items() if w > 0 and pools[p]}
    summary: dict[str, Any] = {
        "requested_weights": dict(mixed_weights),
        "stopping_strategy": mixed_stopping_strategy,
        "pool_sizes": {p: len(r) for p, r in pools.items()},
        "dropped_empty_pools": sorted(p for p, w in mixed_weights.items() if w > 0 and not pools[p]),
    }
    if not active:
        summary.update(effective_weights={}, counts={}, repeated_rows=0, rows=0)
        return [], summary
    total_weight = sum(active.values())
    weights = {p: w / total_weight for p, w in active.items()}
    ratios = [len(pools[p]) / w for p, w in weights.items()]
    size = min(ratios) if mixed_stopping_strategy == "first_exhausted" else max(ratios)
    rng = np.random.default_rng(seed)
    sample: list[Mapping[str, Any]] = []
    counts, repeated = {}, 0
    for pool, weight in weights.items():
        records = stable_order(pools[pool], seed, salt=f"mixed:{pool}")
        want = int(round(weight * size))
        full, rest = divmod(want, len(records))
        picked = records * full + [records[i] for i in sorted(rng.choice(len(records), size=rest, replace=False))]
        repeated += max(0, want - len(records))
        counts[pool] = want
        sample.extend(picked)
    order = rng.permutation(len(sample))
    sample = [sample[i] for i in order]
    summary.update(
        effective_weights={p: round(w, 4) for p, w in weights.items()},
        counts=counts,
        realised_shares={p: round(c / len(sample), 4) for p, c in counts.items()} if sample else {},
        repeated_rows=repeated,
        rows=len(sample),
    )
    return sample, summary


def curriculum_order(records: Sequence[Mapping[str, Any]], seed: int = 42) -> list[Mapping[str, Any]]:
    """reasoning -> counseling -> voice; each block in a seeded, identity-based order."""
    out: list[Mapping[str, Any]] = []
    for pool in CURRICULUM_ORDER:
        out.extend(stable_order([r for r in records if pool_of(r) == pool], seed, salt=f"curriculum:{pool}"))
    return out


def staged_plan(
    stage_epochs: Sequence[int] = DEFAULT_STAGE_EPOCHS,
    stage_learning_rates: Sequence[float] = DEFAULT_STAGE_LEARNING_RATES,
) -> list[dict[str, Any]]:
    if len(stage_epochs) != 3 or len(stage_learning_rates) != 3:
        raise ValueError("stage_epochs and stage_learning_rates need one value per stage (3)")
    return [
        {
            "stage": stage,
            "name": STAGE_NAMES[stage],
            "epochs": int(stage_epochs[i]),
            "learning_rate": float(stage_learning_rates[i]),
            "files": {"train": f"stages/{STAGE_NAMES[stage]}/train.jsonl",
                      "validation": f"stages/{STAGE_NAMES[stage]}/validation.jsonl"},
        }
        for i, stage in enumerate((STAGE_COUNSELING, STAGE_REASONING, STAGE_VOICE))
    ]
