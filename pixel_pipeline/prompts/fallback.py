"""The optional concept fallback (settings.concept_fallback): a general concept form for a segment no generator
found a question for."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from pixel_pipeline.core.records import reason_key
from pixel_pipeline.prompts.cache import CandidateCache, generate_cached
from pixel_pipeline.prompts.generators import FALLBACK, ConceptFallbackGenerator, SegmentInput
from pixel_pipeline.prompts.scoring import rule_violations
from pixel_pipeline.prompts.selection import NO_ACCEPTABLE_QUESTION, NO_VALID_PROMPT, expert_of
from pixel_pipeline.prompts.settings import PromptSettings
from pixel_pipeline.prompts.specificity import BM25Index
from pixel_pipeline.prompts.text import normalise_prompt

FALLBACK_REASONS = (NO_ACCEPTABLE_QUESTION, NO_VALID_PROMPT)


def fallback_rows(rejects: list[dict], inputs: list[SegmentInput], texts: list[str], segments: pd.DataFrame,
                  embedder, settings: PromptSettings, uses: Counter, bm25: BM25Index | None,
                  cache: CandidateCache | None = None) -> tuple[list[dict], list[dict], ConceptFallbackGenerator]:
    """Concept-form questions for the segments no generator found a question for (ConceptFallbackGenerator): each
    must pass the prompt rules and the alignment floor and be unused; the rest stay rejected with their reason."""
    gen = ConceptFallbackGenerator(settings.template_candidates, settings.seed)
    index = {inp.segment_id: i for i, inp in enumerate(inputs)}
    todo = [index[r["segment_id"]] for r in rejects if reason_key(r["reasons"][0]) in FALLBACK_REASONS]
    if not todo:
        return [], rejects, gen
    found, _ = generate_cached(gen, [inputs[i] for i in todo], cache)  # per segment, like the other generators
    proposed = [(i, c) for i, cands in zip(todo, found) for c in cands]
    flat = [p for p, broken in zip(proposed, rule_violations(proposed, texts, settings.rules)) if not broken]
    if not flat:
        return [], rejects, gen
    prompt_vecs = embedder.encode([c.prompt for _, c in flat])
    seg_vecs = embedder.encode([texts[i] for i, _ in flat])  # cached by the main scoring
    alignment = np.einsum("ij,ij->i", prompt_vecs, seg_vecs).astype(np.float64)
    bm25 = bm25 or BM25Index(texts)  # the main scoring's index when it built one
    ranks = bm25.ranks([c.prompt for _, c in flat], np.asarray([i for i, _ in flat], dtype=np.int64))
    best: dict[int, int] = {}
    for k in sorted(range(len(flat)), key=lambda k: -alignment[k]):
        i, c = flat[k]
        key = normalise_prompt(c.prompt)
        if i in best or alignment[k] < settings.alignment_floor or (settings.unique_prompts and uses[key]):
            continue
        best[i] = k
        uses[key] += 1
    rows = []
    for i, k in best.items():
        c = flat[k][1]
        rows.append({"segment_id": inputs[i].segment_id, "prompt": c.prompt, "generator": FALLBACK,
                     "alignment": round(float(alignment[k]), 4), "candidates": "[]", "key_concepts": list(c.key_concepts),
                     "style": inputs[i].style, "expert": expert_of(segments, i, inputs[i].style),
                     "bm25_rank": int(ranks[k])})
    answered = {inputs[i].segment_id for i in best}
    return rows, [r for r in rejects if r["segment_id"] not in answered], gen
