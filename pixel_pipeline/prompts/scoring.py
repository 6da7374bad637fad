"""Every candidate of a run, flat: de-duplicated per segment, checked against the prompt rules and scored.

Alignment is the embedding cosine with the whole segment and with its opening (plus a cross-encoder when one is
configured); specificity is the BM25 rank of the candidate's own segment among all segments.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pixel_pipeline.prompts.generators import Candidate
from pixel_pipeline.prompts.rules import PromptRules
from pixel_pipeline.prompts.settings import PromptSettings
from pixel_pipeline.prompts.specificity import BM25Index
from pixel_pipeline.prompts.text import normalise_prompt

OPENING_NOT_ABOUT_IT = "opening_not_about_it"

# (stage, done, total) -> None; the Dagster layer logs it.
StageProgress = Callable[[str, int, int], None]


@dataclass
class CandidatePool:
    """Candidate k is `flat[k]` = (segment index, candidate); the arrays hold its scores, `violations[k]` its
    broken rules (empty: valid)."""

    flat: list[tuple[int, Candidate]]
    violations: list[list[str]]
    prompts: list[str]
    alignment: np.ndarray
    opening: np.ndarray
    ranks: np.ndarray
    cross: np.ndarray | None
    score: np.ndarray
    bm25: BM25Index | None


def flatten_candidates(per_segment: list[list[Candidate]]) -> list[tuple[int, Candidate]]:
    """(segment index, candidate) pairs, each prompt once per segment (case and punctuation ignored)."""
    flat: list[tuple[int, Candidate]] = []
    for i, cands in enumerate(per_segment):
        seen = set()
        for c in cands:
            key = normalise_prompt(c.prompt)
            if key and key not in seen:
                seen.add(key)
                flat.append((i, c))
    return flat


def rule_violations(flat: list[tuple[int, Candidate]], texts: list[str], rules: PromptRules) -> list[list[str]]:
    """The prompt rules each candidate breaks (its segment's n-grams computed once per segment)."""
    violations: list[list[str]] = []
    response_ngrams: dict[int, set] = {}
    for i, c in flat:
        if i not in response_ngrams:
            response_ngrams[i] = rules.response_ngrams(texts[i])
        violations.append(rules.violations(c.prompt, response_ngrams=response_ngrams[i]))
    return violations


def count_rule_failures(flat: list[tuple[int, Candidate]], violations: list[list[str]]) -> dict[str, Counter]:
    """Broken rules per generator."""
    rule_failures: dict[str, Counter] = defaultdict(Counter)
    for (_, c), v in zip(flat, violations):
        for name in v:
            rule_failures[c.generator][name] += 1
    return rule_failures


def response_opening(text: str, n_words: int) -> str:
    return " ".join(str(text).split()[:n_words])


def cross_encoder_scores(model_name_or_path: str, pairs: list[tuple[str, str]]) -> np.ndarray:
    """Relevance in [0, 1] from a sentence-transformers CrossEncoder (sigmoid of a single logit)."""
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(model_name_or_path, trust_remote_code=False)
    scores = np.asarray(model.predict(pairs, batch_size=32, show_progress_bar=False), dtype=np.float64)
    if scores.ndim > 1:  # a multi-label head: use the last label ("relevant")
        scores = scores[:, -1]
    if scores.size and (scores.min() < 0 or scores.max() > 1):
        scores = 1 / (1 + np.exp(-scores))
    return scores


def alignment_scores(prompts: list[str], seg_idx: np.ndarray, texts: list[str], embedder, opening_words: int,
                     progress: StageProgress | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Cosine of each prompt with its whole segment and with the segment's opening."""
    seg_vecs = embedder.encode(texts)
    prompt_vecs = embedder.encode(prompts, progress=(lambda d, t: progress("alignment", d, t)) if progress else None)
    alignment = np.einsum("ij,ij->i", prompt_vecs, seg_vecs[seg_idx]).astype(np.float64)
    # The opening answers first: a question the first sentences are not about reads as unanswered.
    with_candidates = sorted(set(seg_idx.tolist()))
    opening_vecs = embedder.encode([response_opening(texts[i], opening_words) for i in with_candidates])
    row = {i: n for n, i in enumerate(with_candidates)}
    opening = np.einsum("ij,ij->i", prompt_vecs, opening_vecs[[row[i] for i in seg_idx]]).astype(np.float64)
    return alignment, opening


def score_candidates(flat: list[tuple[int, Candidate]], violations: list[list[str]], texts: list[str], embedder,
                     settings: PromptSettings, progress: StageProgress | None = None) -> CandidatePool:
    """Score = mean relevance (segment, opening[, cross-encoder]) + specificity_weight / BM25 rank."""
    prompts = [c.prompt for _, c in flat]
    seg_idx = np.asarray([i for i, _ in flat], dtype=np.int64)
    if flat:
        alignment, opening = alignment_scores(prompts, seg_idx, texts, embedder, settings.opening_words, progress)
        bm25 = BM25Index(texts)
        ranks = bm25.ranks(prompts, seg_idx)
    else:
        bm25 = None
        alignment, ranks, opening = np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0)
    cross = None
    if settings.cross_encoder_model and flat:
        cross = cross_encoder_scores(settings.cross_encoder_model, [(p, texts[i]) for p, i in zip(prompts, seg_idx)])
    relevance = (alignment + opening) / 2 if cross is None else (alignment + opening + cross) / 3
    score = relevance + settings.specificity_weight / np.maximum(ranks, 1)
    return CandidatePool(flat, violations, prompts, alignment, opening, ranks, cross, score, bm25)


def gate_on_opening(pool: CandidatePool, rule_failures: dict[str, Counter], opening_floor: float) -> None:
    """A candidate the segment's opening is not about breaks a rule too (counted per generator)."""
    for k, (_, c) in enumerate(pool.flat):
        if pool.opening[k] < opening_floor:
            pool.violations[k].append(OPENING_NOT_ABOUT_IT)
            rule_failures[c.generator][OPENING_NOT_ABOUT_IT] += 1
