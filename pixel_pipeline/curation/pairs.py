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

Embed = Callable[[Sequence[str]], np.ndarray]

PAIR_COLUMNS = ["dataset", "segment_id", "record_id", "prompt", "response", "conversation", "style", "expert", "source",
                "file", "group_key", "quality", "alignment", "generator", "quality_classifier", "shaping", "crisis_flags",
                "pii_counts", "dup_cluster", "augmented"]


@dataclass(frozen=True)
class DedupSettings:
    # the near-duplicate knobs' defaults are dedup.NearDupSettings' own (read as class attributes: written once)
    near_threshold: float = dedup.NearDupSettings.near_threshold
    semantic_threshold: float = 0.95
    semantic_dedup: bool = True
    num_perm: int = dedup.NearDupSettings.num_perm
    shingle_words: int = dedup.NearDupSettings.shingle_words
    lsh_bands: int = dedup.NearDupSettings.lsh_bands
    lsh_rows: int = dedup.NearDupSettings.lsh_rows
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


def _best_prompts(generated_prompts: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """One prompt per segment (the best aligned) and how many extra rows were ignored."""
    if not len(generated_prompts):
        return generated_prompts.copy(), 0
    gp = generated_prompts.sort_values("alignment", ascending=False, kind="stable")
    return gp.drop_duplicates("segment_id"), int(gp.duplicated("segment_id").sum())


def _missing_prompt_rejects(segments: pd.DataFrame, stage: str) -> list[dict]:
    return [reject_row(DATASET_SEGMENTS, r["segment_id"], stage,
                       ["missing_prompt: curated segment has no row in generated_prompts nor in its rejects"],
                       {"snippet": snippet(r["text"])}, r["source"], r["file"])
            for _, r in segments.iterrows()]


def _segment_pairs(seg: pd.DataFrame, keep_crisis_lines: bool) -> pd.DataFrame:
    """Pairs from curated segments joined with their prompt (the prompt's PII redacted here)."""
    prompts, counts = pii.redact_many(seg["prompt"].astype(str), keep_crisis_lines)
    return pd.DataFrame({
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


def _conversation_pairs(conv: pd.DataFrame) -> pd.DataFrame:
    """Pairs from curated conversations; a counseling question groups its answers, a cot record stands alone."""
    return pd.DataFrame({
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


def assemble(curated_segments: pd.DataFrame, generated_prompts: pd.DataFrame, curated_conversations: pd.DataFrame,
             prompt_rejected_ids: set[str], keep_crisis_lines: bool = True, stage: str = "deduplicated_pairs"
             ) -> tuple[pd.DataFrame, list[dict], dict]:
    """Candidate pairs (PAIR_COLUMNS minus dup_cluster) + reject rows for segments that have no prompt."""
    gp, extra_prompt_rows = _best_prompts(generated_prompts)
    prompt_cols = ["segment_id", "prompt", "alignment", "generator"]
    seg = curated_segments.merge(gp.reindex(columns=prompt_cols) if len(gp) else pd.DataFrame(columns=prompt_cols),
                                 on="segment_id", how="left")
    has_prompt = seg["prompt"].notna()
    upstream = ~has_prompt & seg["segment_id"].isin(prompt_rejected_ids)
    missing = ~has_prompt & ~upstream
    rejects = _missing_prompt_rejects(seg[missing], stage)
    seg_pairs = _segment_pairs(seg[has_prompt].reset_index(drop=True), keep_crisis_lines)
    frames = [f for f in (seg_pairs, _conversation_pairs(curated_conversations)) if len(f)]
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


def _response_edges(responses: list[str], settings: DedupSettings, embed: Embed | None
                    ) -> tuple[list[pd.DataFrame], dict, str]:
    """Exact, near (MinHash + LSH) and, with an embedder, semantic duplicate edges among the responses."""
    edges = [dedup.exact_pairs(responses)]
    near, lsh_stats = dedup.near_pairs(dedup.shingle_sets(responses, settings.shingle_words), settings.near())
    edges.append(near)
    semantic_note = "off"
    if settings.semantic_dedup and embed is not None and responses:
        vectors = np.asarray(embed(responses), dtype=np.float32)
        edges.append(dedup.semantic_pairs(vectors, settings.semantic_threshold))
        semantic_note = f"cosine >= {settings.semantic_threshold}"
    elif settings.semantic_dedup:
        semantic_note = "skipped: no embedding model"
    return edges, lsh_stats, semantic_note


def _prompt_duplicates(pairs: pd.DataFrame, settings: DedupSettings) -> tuple[dict, list[pd.DataFrame]]:
    """Exact / near duplicates among the segment pairs' generated prompts: reported; edges only when dedup_prompts."""
    if not len(pairs):
        return {}, []
    seg_idx = np.flatnonzero((pairs["dataset"] == DATASET_SEGMENTS).to_numpy())
    seg_prompts = pairs["prompt"].iloc[seg_idx].fillna("").astype(str).tolist()
    pe = dedup.exact_pairs(seg_prompts)
    pn, _ = dedup.near_pairs(dedup.shingle_sets(seg_prompts, settings.shingle_words), settings.near())
    pedges = pd.concat([pe, pn], ignore_index=True)
    involved = set(pedges["i"]) | set(pedges["j"])
    report = {"segment_prompts": len(seg_prompts), "exact_duplicate_prompt_pairs": int(len(pe)),
              "near_duplicate_prompt_pairs": int(len(pn)),
              "prompts_with_a_duplicate": len(involved), "dedup_prompts": settings.dedup_prompts}
    if not (settings.dedup_prompts and len(pedges)):
        return report, []
    # prompt edges index the segment prompts: map them back to rows of `pairs`
    return report, [pedges.assign(i=seg_idx[pedges["i"].to_numpy(int)], j=seg_idx[pedges["j"].to_numpy(int)],
                                  kind="prompt")]


def _duplicate_rejects(pairs: pd.DataFrame, clusters: pd.DataFrame, dropped: np.ndarray, ids: list[str],
                       scores: pd.Series, stage: str) -> tuple[list[dict], Counter]:
    """A reject row per dropped duplicate, naming the kept member, and the count per duplicate kind."""
    rows, kind_counts = [], Counter()
    for i in np.flatnonzero(dropped):
        kept_i = int(clusters.at[i, "kept_index"])
        kind = clusters.at[i, "kind"] or "near"
        kind_counts[kind] += 1
        sim = clusters.at[i, "similarity"]
        r = pairs.iloc[i]
        rows.append(reject_row(
            r["dataset"], ids[i], stage,
            [f"duplicate_{kind}: duplicate of {ids[kept_i]} (similarity {sim:.3f})"],
            {"dup_cluster": clusters.at[i, "dup_cluster"], "kept_id": ids[kept_i], "kind": kind,
             "similarity": None if pd.isna(sim) else float(sim), "member_score": float(scores.iat[i]),
             "kept_member_score": float(scores.iat[kept_i]), "snippet": snippet(r["response"])},
            r["source"], r["file"]))
    return rows, kind_counts


def _apply_balance(kept: pd.DataFrame, settings: DedupSettings, stage: str
                   ) -> tuple[pd.DataFrame, pd.DataFrame, dict, list[dict]]:
    """The balance policy over the kept pairs: (pairs, capped rows, summary, a reject row per capped row)."""
    kept_scores = member_score(kept) if len(kept) else pd.Series(dtype=float)
    balanced, capped, summary = balance.rebalance(kept, kept_scores, settings.balance_policy,
                                                  settings.target_expert_ratio)
    rejects = [reject_row(
        r["dataset"], r["segment_id"], stage,
        [f"expert_balance_cap: {r['style']} expert capped at {summary.get('cap_per_expert')} pairs "
         f"(balance_policy=cap, target_expert_ratio={settings.target_expert_ratio})"],
        {"member_score": float(member_score(pd.DataFrame([r])).iat[0]), "style": r["style"]},
        r["source"], r["file"]) for _, r in capped.iterrows()]
    balanced = balanced.reindex(columns=PAIR_COLUMNS)
    balanced["expert"] = balanced["expert"].astype("Int64")
    return balanced, capped, summary, rejects


def deduplicate_pairs(
    curated_segments: pd.DataFrame,
    generated_prompts: pd.DataFrame,
    curated_conversations: pd.DataFrame,
    prompt_rejected_ids: set[str] = frozenset(),
    settings: DedupSettings = DedupSettings(),
    embed: Embed | None = None,
    stage: str = "deduplicated_pairs",
) -> PairsOutcome:
    pairs, reject_rows, accounting = assemble(curated_segments, generated_prompts, curated_conversations,
                                              set(prompt_rejected_ids), settings.keep_crisis_lines, stage)
    n = len(pairs)
    edges, lsh_stats, semantic_note = _response_edges(
        pairs["response"].fillna("").astype(str).tolist() if n else [], settings, embed)
    prompt_report, prompt_edges = _prompt_duplicates(pairs, settings)
    edges = [e for e in (*edges, *prompt_edges) if len(e)]
    all_edges = pd.concat(edges, ignore_index=True) if edges else pd.DataFrame(columns=dedup.EDGE_COLUMNS)
    ids = pair_ids(pairs) if n else []
    scores = member_score(pairs) if n else pd.Series(dtype=float)
    clusters = dedup.resolve_clusters(n, all_edges, scores.to_numpy(), ids)
    pairs["dup_cluster"] = clusters["dup_cluster"].to_numpy() if n else []
    dropped = ~clusters["keep"].to_numpy() if n else np.zeros(0, bool)
    duplicate_rejects, kind_counts = _duplicate_rejects(pairs, clusters, dropped, ids, scores, stage)
    kept = pairs.loc[~dropped].reset_index(drop=True) if n else pairs.assign(dup_cluster=None)
    kept["augmented"] = False
    balanced, capped, balance_summary, cap_rejects = _apply_balance(kept, settings, stage)
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
    return PairsOutcome(balanced, rejects_frame([*reject_rows, *duplicate_rejects, *cap_rejects]), report)
