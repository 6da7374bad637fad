"""Dedup (exact, near via MinHash+LSH, semantic), best-member choice, and the expert balance policies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from datasketch import MinHash

from pixel_pipeline.core.records import reason_key
from pixel_pipeline.curation import balance, dedup
from pixel_pipeline.curation.pairs import DedupSettings, deduplicate_pairs
from pixel_pipeline_tests.test_curation_samples import CLEAN, conversations_frame, segments_frame

TEXTS = list(CLEAN.values())


def light_edit(text: str) -> str:
    """Drop one sentence and change two words, as in the planted near-duplicates."""
    sentences = text.split(". ")
    del sentences[3]
    return ". ".join(sentences).replace(" really ", " truly ", 1).replace(" often ", " usually ", 1)


def test_exact_dedup_ignores_case_punctuation_and_spacing():
    edges = dedup.exact_pairs([TEXTS[0], TEXTS[0].upper().replace(",", "") + "  ", TEXTS[1]])
    assert edges[["i", "j", "kind"]].values.tolist() == [[0, 1, "exact"]]


def test_signatures_equal_datasketch_minhash_on_the_same_shingles():
    shingles = dedup.shingle_sets(TEXTS[:2])
    sig = dedup.minhash_signatures(shingles, num_perm=64, seed=3)
    for k in range(2):
        m = MinHash(num_perm=64, seed=3, scheme=dedup.MINHASH_SCHEME, hashfunc=int)
        m.update_batch(shingles[k].tolist())
        assert np.array_equal(m.hashvalues, sig[k])


def test_vectorised_lsh_finds_the_same_candidates_as_datasketch_minhashlsh():
    texts = TEXTS + [light_edit(t) for t in TEXTS[:3]]
    s = dedup.NearDupSettings()
    shingles = dedup.shingle_sets(texts)
    sig = dedup.minhash_signatures(shingles, s.num_perm, s.seed)
    ours = {tuple(p) for p in dedup.lsh_candidates(sig, s.lsh_bands, s.lsh_rows).tolist()}
    assert ours == dedup.datasketch_lsh_candidates(sig, s)
    assert {(0, 6), (1, 7), (2, 8)} <= ours


def test_near_duplicates_are_found_and_verified_by_exact_jaccard():
    texts = TEXTS + [light_edit(TEXTS[0])]
    edges, stats = dedup.near_pairs(dedup.shingle_sets(texts))
    assert edges[["i", "j"]].values.tolist() == [[0, len(TEXTS)]]
    assert 0.8 <= edges["similarity"].iat[0] < 1.0
    # a 40 % overlap (two cuts of one transcript) is not a near-duplicate
    words_a, words_b = TEXTS[1].split(), TEXTS[2].split()
    overlap = " ".join(words_a[-len(words_a) * 2 // 5:] + words_b[len(words_b) * 2 // 5:])
    edges, _ = dedup.near_pairs(dedup.shingle_sets([TEXTS[1], overlap]))
    assert edges.empty


def test_semantic_pairs_use_the_cosine_threshold():
    v = np.eye(4, dtype=np.float32)
    v[3] = (v[0] * 0.97 + v[1] * 0.243) / np.linalg.norm(v[0] * 0.97 + v[1] * 0.243)
    edges = dedup.semantic_pairs(v, 0.95, block=2)
    assert edges[["i", "j"]].values.tolist() == [[0, 3]]


def test_clusters_keep_the_best_member_and_record_it():
    edges = pd.DataFrame([(0, 1, "near", 0.9), (1, 2, "exact", 1.0)], columns=dedup.EDGE_COLUMNS)
    out = dedup.resolve_clusters(4, edges, member_score=[0.5, 0.9, 0.9, 0.1], ids=["d", "c", "b", "a"])
    assert out["keep"].tolist() == [False, False, True, True]  # tie 0.9: the smaller id "b" wins
    assert out["dup_cluster"].tolist()[:3] == ["dup-b"] * 3 and pd.isna(out["dup_cluster"].iat[3])
    assert out["kind"].tolist()[:3] == ["near", "exact", "exact"]


def _prompts_for(segs: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"segment_id": segs["segment_id"], "prompt": [f"What should I understand about topic {i}?"
                                                                      for i in range(len(segs))],
                         "alignment": 0.6, "generator": "template", "style": segs["style"], "expert": segs["expert"]})


def _curated(segs: pd.DataFrame) -> pd.DataFrame:
    return segs.assign(pii_counts="{}", crisis_flags=[[] for _ in range(len(segs))])


def test_deduplicate_pairs_drops_copies_keeps_the_better_one_and_accounts_for_all():
    segs = pd.concat([segments_frame({"orig": TEXTS[0]}, quality=0.9),
                      segments_frame({"copy": light_edit(TEXTS[0])}, quality=0.6),
                      segments_frame({k: v for k, v in list(CLEAN.items())[1:]})], ignore_index=True)
    segs = _curated(segs)
    prompts = _prompts_for(segs).iloc[:-1]  # the last segment has no prompt row ...
    rejected_upstream = {segs["segment_id"].iat[-2]}  # ... and one was rejected by the prompts stage
    prompts = prompts[~prompts["segment_id"].isin(rejected_upstream)]
    conv = conversations_frame([("How do I set limits?", TEXTS[5]), ("Same answer?", TEXTS[5])])
    conv = conv.assign(pii_counts="{}", crisis_flags=[[] for _ in range(len(conv))])
    out = deduplicate_pairs(_curated(segs), prompts, conv, rejected_upstream, DedupSettings(semantic_dedup=False))
    acc = out.report["accounting"]
    assert acc["curated_segments_in"] == acc["segments_with_prompt"] + 1 + 1
    assert acc["pair_candidates"] == acc["kept"] + acc["rejected_duplicates"]
    reasons = dict(zip(out.rejects["segment_id"].fillna(out.rejects["record_id"]), out.rejects["reasons"]))
    assert reasons[segs["segment_id"].iat[1]][0].startswith(f"duplicate_near: duplicate of {segs['segment_id'].iat[0]}")
    assert reason_key(reasons[segs["segment_id"].iat[-1]][0]) == "missing_prompt"
    assert any(reason_key(r[0]) == "duplicate_exact" for r in reasons.values())  # the two counseling answers are identical
    kept = out.pairs
    assert segs["segment_id"].iat[0] in set(kept["segment_id"]) and kept["dup_cluster"].notna().sum() == 2
    assert list(kept.columns) == ["dataset", "segment_id", "record_id", "prompt", "response", "conversation", "style",
                                  "expert", "source", "file", "group_key", "quality", "alignment", "generator", "quality_classifier",
                                  "shaping", "crisis_flags", "pii_counts", "dup_cluster", "augmented"]
    assert dedup.remaining_duplicate_rate(kept["response"].tolist())["rate"] == 0.0


def _pairs(counts: dict[str, int]) -> pd.DataFrame:
    rows = [{"dataset": "segments", "segment_id": f"{style}{i:03d}", "record_id": None, "style": style,
             "quality": i / 100, "alignment": 0.5, "source": "s", "file": "f"} for style, n in counts.items()
            for i in range(n)]
    return pd.DataFrame(rows)


def test_balance_warn_changes_nothing_cap_rejects_and_upsample_marks_copies():
    pairs = _pairs({"therapeutic": 30, "educational": 5, "empathetic": 10, "practical": 10})
    score = pairs["quality"] + pairs["alignment"]
    same, capped, summary = balance.rebalance(pairs, score, "warn")
    assert len(same) == len(pairs) and capped.empty
    out, capped, summary = balance.rebalance(pairs, score, "cap", target_expert_ratio=3.0)
    assert summary["after"]["therapeutic"] == 15 and len(capped) == 15
    assert capped["quality"].max() < out.loc[out["style"] == "therapeutic", "quality"].min()  # lowest-ranked go
    out, capped, summary = balance.rebalance(pairs, score, "upsample", target_expert_ratio=3.0)
    assert capped.empty and summary["after"]["educational"] == 10 and out["augmented"].sum() == 5
    assert set(out.loc[out["augmented"], "segment_id"]) <= set(pairs["segment_id"])
    with pytest.raises(ValueError):
        balance.rebalance(pairs, score, "shuffle")


def test_semantic_level_and_prompt_dedup_are_wired_into_the_pairs():
    segs = _curated(segments_frame({"a": TEXTS[0], "b": TEXTS[1], "c": TEXTS[2], "d": TEXTS[3]}))
    prompts = _prompts_for(segs)
    prompts.loc[3, "prompt"] = prompts.loc[2, "prompt"]  # c and d got the same generated prompt
    empty = conversations_frame([]).assign(pii_counts=None, crisis_flags=None)

    def embed(texts):  # a stand-in model: a and b mean the same thing, everything else is orthogonal
        vectors = np.eye(len(texts), dtype=np.float32)
        i, j = texts.index(TEXTS[0]), texts.index(TEXTS[1])
        vectors[j] = vectors[i]
        return vectors

    out = deduplicate_pairs(segs, prompts, empty, set(), DedupSettings(), embed=embed)
    reasons = [r[0] for r in out.rejects["reasons"]]
    assert len(reasons) == 1 and reason_key(reasons[0]) == "duplicate_semantic"
    assert out.report["prompts"]["exact_duplicate_prompt_pairs"] == 1  # reported, not dropped by default
    out = deduplicate_pairs(segs, prompts, empty, set(), DedupSettings(dedup_prompts=True), embed=embed)
    assert sorted(reason_key(r[0]) for r in out.rejects["reasons"]) == ["duplicate_prompt", "duplicate_semantic"]
