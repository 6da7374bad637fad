"""deduplicated_pairs: assemble (prompt, response) pairs from every dataset, dedup them, apply the balance policy.

Segment pairs: `curated_segments` (redacted text = response) joined with `generated_prompts` (prompt, alignment).
A curated segment without a prompt is accounted for: either the prompts stage rejected it (its reject row lives in
rejects/generated_prompts.parquet) or it is rejected here as `missing_prompt`. Conversation pairs come from
`curated_conversations`. Dedup runs over all responses together (a counseling answer copied into a transcript is
one answer), keeping the best member (quality + alignment, then the smaller id).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pixel_pipeline.core.records import DATASET_COT, DATASET_SEGMENTS, reject_row, rejects_frame
from pixel_pipeline.curation import balance, dedup, pii
from pixel_pipeline.curation.text import snippet

PAIR_COLUMNS = ["dataset", "segment_id", "record_id", "prompt", "response", "conversation", "style", "expert", "source",
                "file", "group_key", "quality", "alignment", "generator", "quality_classifier", "shaping", "crisis_flags",
                "pii_counts", "dup_cluster", "augmented"]


@dataclass(frozen=True)
class DedupSettings:
    near_threshold: float = 0.8
    semantic_threshold: float = 0.95
    semantic_dedup: bool = True
    num_perm: int = 128
    shingle_words: int = 3
    lsh_bands: int = 20
    lsh_rows: int = 6
    dedup_prompts: bool = False  # also cluster segment pairs whose generated prompts are exact / near duplicates
    balance_policy: str = "warn"
    target_expert_ratio: float = 3.0
    keep_crisis_lines: bool = True

    def near(self) -> dedup.NearDupSettings:
        return dedup.NearDupSettings(self.near_threshold, self.num_perm, self.shingle_words, self.lsh_bands, self.lsh_rows)


@dataclass
class PairsOutcome:
    pairs: pd.DataFrame
    rejects: pd.DataFrame
    report: dict


def _merge_counts(a: str | None, b: Counter) -> str:
    base = Counter(json.loads(a)) if isinstance(a, str) and a else Counter()
    base.update(b)
    return pii.counts_json(base)


def assemble(curated_segments: pd.DataFrame, generated_prompts: pd.DataFrame, curated_conversations: pd.DataFrame,
             prompt_rejected_ids: set[str], keep_crisis_lines: bool = True, stage: str = "deduplicated_pairs"
             ) -> tuple[pd.DataFrame, list[dict], dict]:
    """Candidate pairs (PAIR_COLUMNS minus dup_cluster) + reject rows for segments that have no prompt."""
    rejects: list[dict] = []
    gp = generated_prompts.copy()
    extra_prompt_rows = 0
    if len(gp):
        gp = gp.sort_values("alignment", ascending=False, kind="stable")
        extra_prompt_rows = int(gp.duplicated("segment_id").sum())
        gp = gp.drop_duplicates("segment_id")
    prompt_cols = ["segment_id", "prompt", "alignment", "generator"]
    seg = curated_segments.merge(gp.reindex(columns=prompt_cols) if len(gp) else pd.DataFrame(columns=prompt_cols),
                                 on="segment_id", how="left")
    has_prompt = seg["prompt"].notna()
    upstream = ~has_prompt & seg["segment_id"].isin(prompt_rejected_ids)
    missing = ~has_prompt & ~upstream
    for _, r in seg[missing].iterrows():
        rejects.append(reject_row(DATASET_SEGMENTS, r["segment_id"], stage,
                                  ["missing_prompt: curated segment has no row in generated_prompts nor in its rejects"],
                                  {"snippet": snippet(r["text"])}, r["source"], r["file"]))
    seg = seg[has_prompt].reset_index(drop=True)
    prompts, counts = pii.redact_many(seg["prompt"].astype(str), keep_crisis_lines)
    seg_pairs = pd.DataFrame({
        "dataset": DATASET_SEGMENTS,
        "segment_id": seg["segment_id"],
        "record_id": None,
        "prompt": prompts,
        "response": seg["text"],
        "conversation": None,
        "style": seg["style"],
        "expert": seg["expert"].astype("Int64"),
        "source": seg["source"],
        "file": seg["file"],
        "group_key": seg["file"],
        "quality": pd.to_numeric(seg["quality"], errors="coerce"),
        "alignment": pd.to_numeric(seg["alignment"], errors="coerce"),
        "generator": seg["generator"],  # where the question came from (talk, retrieval, concepts, concept_fallback)
        # curation's evidence, shown in the exports' metadata and the review sheet
        "quality_classifier": pd.to_numeric(seg.get("score_quality_classifier", np.nan), errors="coerce"),
        "shaping": seg.get("shaping", ""),
        "crisis_flags": seg["crisis_flags"],
        "pii_counts": [_merge_counts(a, b) for a, b in zip(seg["pii_counts"], counts)],
    })
    conv = curated_conversations
    conv_pairs = pd.DataFrame({
        "dataset": conv["dataset"],
        "segment_id": None,
        "record_id": conv["record_id"],
        "prompt": conv["prompt"],
        "response": conv["response"],
        "conversation": conv["conversation"] if "conversation" in conv else None,
        "style": None,
        "expert": pd.array([pd.NA] * len(conv), dtype="Int64"),
        "source": conv["source"],
        "file": conv["input_file"] if "input_file" in conv else None,
        "group_key": np.where(conv["dataset"] == DATASET_COT, conv["record_id"], conv.get("question_id", conv["record_id"])),
        "quality": np.nan,
        "alignment": np.nan,
        "generator": None,
        "quality_classifier": np.nan,
        "shaping": None,
        "crisis_flags": conv["crisis_flags"] if "crisis_flags" in conv else [[] for _ in range(len(conv))],
        "pii_counts": conv["pii_counts"] if "pii_counts" in conv else "{}",
    })
    frames = [f for f in (seg_pairs, conv_pairs) if len(f)]
    pairs = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=PAIR_COLUMNS[:-2])
    accounting = {
        "curated_segments_in": int(len(curated_segments)),
        "segments_with_prompt": int(has_prompt.sum()),
        "segments_rejected_by_prompts_stage": int(upstream.sum()),
        "segments_missing_prompt": int(missing.sum()),
        "generated_prompts_extra_rows_ignored": extra_prompt_rows,
        "curated_conversations_in": int(len(curated_conversations)),
    }
    return pairs, rejects, accounting


def member_score(pairs: pd.DataFrame) -> pd.Series:
    """Which member of a duplicate cluster to keep: quality + alignment (0.5 where unknown)."""
    return pairs["quality"].astype(float).fillna(0.5) + pairs["alignment"].astype(float).fillna(0.5)


def pair_ids(pairs: pd.DataFrame) -> list[str]:
    return [s if isinstance(s, str) else r for s, r in zip(pairs["segment_id"], pairs["record_id"])]


def deduplicate_pairs(
    curated_segments: pd.DataFrame,
    generated_prompts: pd.DataFrame,
    curated_conversations: pd.DataFrame,
    prompt_rejected_ids: set[str] = frozenset(),
    settings: DedupSettings = DedupSettings(),
    embed: Callable[[Sequence[str]], np.ndarray] | None = None,
    stage: str = "deduplicated_pairs",
) -> PairsOutcome:
    pairs, reject_rows, accounting = assemble(curated_segments, generated_prompts, curated_conversations,
                                              set(prompt_rejected_ids), settings.keep_crisis_lines, stage)
    n = len(pairs)
    responses = pairs["response"].fillna("").astype(str).tolist() if n else []
    edges = [dedup.exact_pairs(responses)]
    shingles = dedup.shingle_sets(responses, settings.shingle_words)
    near, lsh_stats = dedup.near_pairs(shingles, settings.near())
    edges.append(near)
    semantic_note = "off"
    if settings.semantic_dedup and embed is not None and n:
        vectors = np.asarray(embed(responses), dtype=np.float32)
        edges.append(dedup.semantic_pairs(vectors, settings.semantic_threshold))
        semantic_note = f"cosine >= {settings.semantic_threshold}"
    elif settings.semantic_dedup:
        semantic_note = "skipped: no embedding model"
    # prompts: exact / near duplicates among generated prompts (segments) - reported, clustered when dedup_prompts
    prompt_report = {}
    if n:
        seg_idx = np.flatnonzero((pairs["dataset"] == DATASET_SEGMENTS).to_numpy())
        seg_prompts = pairs["prompt"].iloc[seg_idx].fillna("").astype(str).tolist()
        pe = dedup.exact_pairs(seg_prompts)
        pn, _ = dedup.near_pairs(dedup.shingle_sets(seg_prompts, settings.shingle_words), settings.near())
        pedges = pd.concat([pe, pn], ignore_index=True)
        involved = set(pedges["i"]) | set(pedges["j"])
        prompt_report = {"segment_prompts": len(seg_prompts), "exact_duplicate_prompt_pairs": int(len(pe)),
                         "near_duplicate_prompt_pairs": int(len(pn)),
                         "prompts_with_a_duplicate": len(involved), "dedup_prompts": settings.dedup_prompts}
        if settings.dedup_prompts and len(pedges):
            pedges = pedges.assign(i=seg_idx[pedges["i"].to_numpy(int)], j=seg_idx[pedges["j"].to_numpy(int)],
                                   kind="prompt")
            edges.append(pedges)
    all_edges = pd.concat([e for e in edges if len(e)], ignore_index=True) if any(len(e) for e in edges) \
        else pd.DataFrame(columns=dedup.EDGE_COLUMNS)
    ids = pair_ids(pairs) if n else []
    scores = member_score(pairs) if n else pd.Series(dtype=float)
    clusters = dedup.resolve_clusters(n, all_edges, scores.to_numpy(), ids)
    pairs["dup_cluster"] = clusters["dup_cluster"].to_numpy() if n else []
    dropped = ~clusters["keep"].to_numpy() if n else np.zeros(0, bool)
    kind_counts = Counter()
    for i in np.flatnonzero(dropped):
        kept_i = int(clusters.at[i, "kept_index"])
        kind = clusters.at[i, "kind"] or "near"
        kind_counts[kind] += 1
        sim = clusters.at[i, "similarity"]
        r = pairs.iloc[i]
        reject_rows.append(reject_row(
            r["dataset"], ids[i], stage,
            [f"duplicate_{kind}: duplicate of {ids[kept_i]} (similarity {sim:.3f})"],
            {"dup_cluster": clusters.at[i, "dup_cluster"], "kept_id": ids[kept_i], "kind": kind,
             "similarity": None if pd.isna(sim) else float(sim), "member_score": float(scores.iat[i]),
             "kept_member_score": float(scores.iat[kept_i]), "snippet": snippet(r["response"])},
            r["source"], r["file"]))
    kept = pairs.loc[~dropped].reset_index(drop=True) if n else pairs.assign(dup_cluster=None)
    kept["augmented"] = False
    kept_scores = member_score(kept) if len(kept) else pd.Series(dtype=float)
    balanced, capped, balance_summary = balance.rebalance(kept, kept_scores, settings.balance_policy,
                                                          settings.target_expert_ratio)
    for _, r in capped.iterrows():
        reject_rows.append(reject_row(
            r["dataset"], r["segment_id"], stage,
            [f"expert_balance_cap: {r['style']} expert capped at {balance_summary.get('cap_per_expert')} pairs "
             f"(balance_policy=cap, target_expert_ratio={settings.target_expert_ratio})"],
            {"member_score": float(member_score(pd.DataFrame([r])).iat[0]), "style": r["style"]},
            r["source"], r["file"]))
    balanced = balanced.reindex(columns=PAIR_COLUMNS)
    balanced["expert"] = balanced["expert"].astype("Int64")
    rejects = rejects_frame(reject_rows)
    report = {
        "accounting": {**accounting, "pair_candidates": n, "kept": int((~balanced["augmented"].astype(bool)).sum()),
                       "augmented_copies": int(balanced["augmented"].astype(bool).sum()),
                       "rejected_duplicates": int(dropped.sum()), "rejected_expert_cap": int(len(capped)),
                       "rejected_missing_prompt": accounting["segments_missing_prompt"]},
        "duplicates_by_kind": dict(kind_counts),
        "clusters": int(pd.Series(clusters["dup_cluster"]).dropna().nunique()) if n else 0,
        "lsh": lsh_stats,
        "semantic": semantic_note,
        "prompts": prompt_report,
        "balance": balance_summary,
        "by_dataset": balanced.groupby("dataset").size().to_dict() if len(balanced) else {},
    }
    return PairsOutcome(balanced, rejects, report)
