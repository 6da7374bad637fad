"""Enough data to train? Train / validation pairs per training stage and per expert, with the cause when short.

Checked on the exports (so a small corpus still gets its files) and before any training step (the check blocks the
training assets). The cause names where the rows went, from the same accounting as rejected.jsonl, e.g.
"stage2_reasoning: 1 train / 0 validation pairs (needs >= 10 / >= 1): cot: 300 rows in, 299 rejected (duplicate:
299, exact repeats of 1 conversation)".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pixel_pipeline.core.records import DATASET_COT, DATASET_COUNSELING, DATASET_SEGMENTS, reason_key
from pixel_pipeline.splits.assign import STAGE_COUNSELING, STAGE_NAMES, STAGE_REASONING, STAGE_VOICE

STAGE_DATASETS = {STAGE_NAMES[STAGE_COUNSELING]: DATASET_COUNSELING, STAGE_NAMES[STAGE_REASONING]: DATASET_COT,
                  STAGE_NAMES[STAGE_VOICE]: DATASET_SEGMENTS}
WHAT = {DATASET_COUNSELING: "conversation", DATASET_COT: "conversation", DATASET_SEGMENTS: "segment"}


@dataclass(frozen=True)
class SizeRule:
    """Fewest pairs a training stage / an expert needs in train and in validation (validation measures it)."""

    min_stage_train: int = 10
    min_stage_validation: int = 1
    min_expert_train: int = 10
    min_expert_validation: int = 1

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _pairs(n: int) -> str:
    return f"{n} pair" if n == 1 else f"{n} pairs"


def rejection_cause(lines: Sequence[Mapping[str, Any]], dataset: str, rows_in: int, sources: Sequence[str] | None = None) -> str:
    """`<dataset>: N rows in, M rejected (rule: n, ...)` over rejected.jsonl lines, optionally for some sources only;
    exact repeats say how many distinct records they repeat."""
    picked = [l for l in lines if l.get("dataset") == dataset and (sources is None or l.get("source") in sources)]
    rules = Counter(reason_key(r) for l in picked for r in l.get("reasons", [])[:1])
    parts = []
    for rule, n in rules.most_common(4):
        if rule == "duplicate":
            key = "segment_id" if dataset == DATASET_SEGMENTS else "record_id"
            distinct = len({l.get(key) for l in picked if str(l.get("reasons", [""])[0]).startswith("duplicate")})
            what = WHAT.get(dataset, "row") + ("" if distinct == 1 else "s")
            parts.append(f"{rule}: {n}, exact repeats of {distinct} {what}")
        else:
            parts.append(f"{rule}: {n}")
    who = f"{dataset} of {', '.join(sources)}" if sources is not None else dataset
    return f"{who}: {rows_in} rows in, {len(picked)} rejected" + (f" ({'; '.join(parts)})" if parts else "")


def size_problems(
    by_stage: Mapping[str, Mapping[str, int]],
    by_expert: Mapping[str, Mapping[str, int]],
    rule: SizeRule,
    causes: Mapping[str, str] | None = None,
) -> list[str]:
    """One message per stage or expert under its minimum (empty when every one has enough); `causes` maps a stage
    name or an expert style to the sentence that explains where its rows went."""
    causes = causes or {}
    problems = []
    checks = [(name, "", c, rule.min_stage_train, rule.min_stage_validation) for name, c in by_stage.items()]
    checks += [(style, "expert ", c, rule.min_expert_train, rule.min_expert_validation) for style, c in by_expert.items()]
    for name, kind, counts, min_train, min_val in checks:
        train, val = int(counts.get("train", 0)), int(counts.get("validation", 0))
        if train < min_train or val < min_val:
            why = f": {causes[name]}" if causes.get(name) else ""
            problems.append(f"{kind}{name}: {_pairs(train)} in train, {val} in validation (needs >= {min_train} / >= {min_val}){why}")
    return problems


def shortfall_causes(
    counts: Mapping[str, Any], rejected: Sequence[Mapping[str, Any]], accounting: Mapping[str, Mapping[str, Any]],
    voice_sources: Sequence[str],
) -> dict[str, str]:
    """Stage or expert -> where its rows went: the rejections of its dataset (stage 3: of the voice sources only)
    and, for an expert, its share of the exported segment pairs. `counts`: the exports' counts."""
    causes = {
        stage: rejection_cause(rejected, dataset, accounting.get(dataset, {}).get("rows_in", 0))
        for stage, dataset in STAGE_DATASETS.items() if dataset != DATASET_SEGMENTS
    }
    voice_rejected = sum(1 for line in rejected if line.get("dataset") == DATASET_SEGMENTS and line.get("source") in voice_sources)
    exported_voice = sum(n for src, n in counts["by_source"].items() if src in voice_sources)
    causes[STAGE_NAMES[STAGE_VOICE]] = (
        "no voice source (see raw_segments' voice_choice)" if not voice_sources else
        rejection_cause(rejected, DATASET_SEGMENTS, exported_voice + voice_rejected, list(voice_sources))
    )
    total_segments = sum(sum(c.values()) for c in counts["by_expert"].values())
    for style, c in counts["by_expert"].items():
        causes[style] = f"{sum(c.values())} of {total_segments} exported segment pairs have this style"
    return causes
