"""One question per segment, chosen greedily from the scored candidates, or a reject row saying why there is none.

Segments whose best valid candidate scores highest choose first; each takes its highest-priority candidate (the
talk's and real questions over concept forms) that meets the alignment floor and, by default, answers no other
segment yet. Each earlier use of a prompt costs `reuse_penalty`, so a popular real question cannot answer hundreds
of segments.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np
import pandas as pd

from pixel_pipeline.core.records import DATASET_SEGMENTS, EXPERT_INDEX, reject_row
from pixel_pipeline.prompts.generators import GENERATOR_PRIORITY, Candidate, SegmentInput
from pixel_pipeline.prompts.scoring import CandidatePool
from pixel_pipeline.prompts.settings import PromptSettings
from pixel_pipeline.prompts.text import normalise_prompt

STAGE = "generated_prompts"
ALIGNMENT_BELOW_FLOOR = "alignment_below_floor"
NO_VALID_PROMPT = "no_valid_prompt"
NO_ACCEPTABLE_QUESTION = "no_acceptable_question"
PROMPT_ALREADY_USED = "prompt_already_used"
OPENING_LEANS = "opening_leans"


def select_prompts(pool: CandidatePool, inputs: list[SegmentInput], segments: pd.DataFrame, settings: PromptSettings,
                   generator_names: list[str], skipped: dict[str, str]) -> tuple[list[dict], list[dict], Counter]:
    """Output rows, reject rows, and how often each (normalised) prompt was used."""
    by_segment = candidates_by_segment(pool)
    valid = np.asarray([not v for v in pool.violations], dtype=bool)
    uses: Counter = Counter()
    rows, rejects = [], []
    for i in selection_order(pool, by_segment, valid, inputs):
        ks = by_segment.get(i, [])
        ranked, adjusted = rank_candidates(pool, [k for k in ks if valid[k]], uses, settings.reuse_penalty)
        above, taken = acceptable(pool, ranked, uses, settings)
        if not above:
            reason, details = reject_reason(pool, ks, ranked, adjusted, taken, settings, generator_names, skipped)
            rejects.append(segment_reject(inputs[i], segments.iloc[i], reason, details))
            continue
        win = above[0]
        uses[normalise_prompt(pool.prompts[win])] += 1
        expert = expert_of(segments, i, inputs[i].style)
        rows.append(prompt_row(pool, win, ks, ranked, adjusted, inputs[i], expert, settings.runner_ups))
    return rows, rejects, uses


def candidates_by_segment(pool: CandidatePool) -> dict[int, list[int]]:
    by_segment: dict[int, list[int]] = defaultdict(list)
    for k, (i, _) in enumerate(pool.flat):
        by_segment[i].append(k)
    return by_segment


def selection_order(pool: CandidatePool, by_segment: dict[int, list[int]], valid: np.ndarray,
                    inputs: list[SegmentInput]) -> list[int]:
    """Segments by their best valid score, highest first (ties by segment id)."""

    def best_score(i: int) -> float:
        ks = [k for k in by_segment.get(i, []) if valid[k]]
        return max((pool.score[k] for k in ks), default=-1.0)

    return sorted(range(len(inputs)), key=lambda i: (-best_score(i), inputs[i].segment_id))


def rank_candidates(pool: CandidatePool, ok: list[int], uses: Counter, reuse_penalty: float) -> tuple[list[int], dict]:
    """Valid candidates by generator priority, then by score less the reuse penalty (returned as `adjusted`)."""
    priority = {k: GENERATOR_PRIORITY.get(pool.flat[k][1].generator, 0) for k in ok}
    adjusted = {k: pool.score[k] - reuse_penalty * uses[normalise_prompt(pool.prompts[k])] for k in ok}
    return sorted(ok, key=lambda k: (-priority[k], -adjusted[k])), adjusted


def acceptable(pool: CandidatePool, ranked: list[int], uses: Counter, settings: PromptSettings) -> tuple[list[int], bool]:
    """The ranked candidates meeting the alignment floor (and unused, with unique_prompts), and whether all of
    those that met the floor were taken by other segments."""
    above = [k for k in ranked if pool.alignment[k] >= settings.alignment_floor]
    taken = bool(above) and settings.unique_prompts and all(uses[normalise_prompt(pool.prompts[k])] for k in above)
    if settings.unique_prompts:
        above = [k for k in above if not uses[normalise_prompt(pool.prompts[k])]]
    return above, taken


def describe(pool: CandidatePool, k: int, adjusted: dict) -> dict:
    """A candidate's scores, as written in runner-ups and reject details."""
    d = {
        "prompt": pool.prompts[k],
        "generator": pool.flat[k][1].generator,
        "alignment": round(float(pool.alignment[k]), 4),
        "opening": round(float(pool.opening[k]), 4),
        "bm25_rank": int(pool.ranks[k]),
        "score": round(float(adjusted.get(k, pool.score[k])), 4),
    }
    if pool.cross is not None:
        d["cross_score"] = round(float(pool.cross[k]), 4)
    if pool.violations[k]:
        d["violations"] = pool.violations[k]
    return d


def reject_reason(pool: CandidatePool, ks: list[int], ranked: list[int], adjusted: dict, taken: bool,
                  settings: PromptSettings, generator_names: list[str], skipped: dict[str, str]) -> tuple[str, dict]:
    """Why a segment has no question (`<rule>: <why>`), and the scores behind it."""
    if taken:
        reason = f"{PROMPT_ALREADY_USED}: every acceptable question of this segment already answers another segment"
        return reason, {"best": describe(pool, ranked[0], adjusted)}
    if ranked:
        reason = f"{ALIGNMENT_BELOW_FLOOR}: best alignment {pool.alignment[ranked[0]]:.3f} < {settings.alignment_floor}"
        return reason, {"best": describe(pool, ranked[0], adjusted), "alignment_floor": settings.alignment_floor}
    if not ks:
        reason = (
            f"{NO_ACCEPTABLE_QUESTION}: the segment poses no usable question of its own, no client question "
            "matches it strongly, and it names no field concept often enough to be about it"
        )
        return reason, {"generators": generator_names, "skipped": skipped}
    reason = f"{NO_VALID_PROMPT}: {len(ks)} candidates, none passed the prompt rules"
    failed = Counter(v for k in ks for v in pool.violations[k])
    return reason, {"rule_failures": dict(failed), "examples": [describe(pool, k, adjusted) for k in ks[:3]], "skipped": skipped}


def leaning_openings(segments: pd.DataFrame, inputs: list[SegmentInput],
                     cache_path: str | os.PathLike | None = None) -> tuple[list[int], list[dict]]:
    """The rows whose response opens as an answer, and a reject row for each of the others (what its first sentence
    leans on): a question would make a pair that teaches a model to start mid-thought."""
    from pixel_pipeline.curation.openings import first_sentence, opening_problems

    keep, rejects = [], []
    for i, problem in enumerate(opening_problems([inp.text for inp in inputs], cache_path)):
        if problem is None:
            keep.append(i)
            continue
        reason = f"{OPENING_LEANS}: the response's first sentence does not open an answer ({problem})"
        rejects.append(segment_reject(inputs[i], segments.iloc[i], reason, {"first_sentence": first_sentence(inputs[i].text)}))
    return keep, rejects


def segment_reject(inp: SegmentInput, seg: pd.Series, reason: str, details: dict) -> dict:
    return reject_row(DATASET_SEGMENTS, inp.segment_id, STAGE, [reason], details,
                      source=_opt(seg.get("source")), file=_opt(seg.get("file")))


def prompt_row(pool: CandidatePool, win: int, ks: list[int], ranked: list[int], adjusted: dict, inp: SegmentInput,
               expert: int | None, runner_ups: int) -> dict:
    """The output row of a segment's winning candidate, with its runner-ups' scores."""
    winner = pool.flat[win][1]
    concepts = winner.key_concepts or _segment_concepts([pool.flat[k][1] for k in ks])
    return {
        "segment_id": inp.segment_id,
        "prompt": winner.prompt,
        "generator": winner.generator,
        "alignment": round(float(pool.alignment[win]), 4),
        "candidates": json.dumps([describe(pool, k, adjusted) for k in ranked if k != win][:runner_ups], ensure_ascii=False),
        "key_concepts": list(concepts),
        "style": inp.style,
        "expert": expert,
        "bm25_rank": int(pool.ranks[win]),
    }


def expert_of(segments: pd.DataFrame, i: int, style: str | None) -> int | None:
    """The segment's expert column, else the expert of its style."""
    expert = segments.iloc[i].get("expert") if "expert" in segments else EXPERT_INDEX.get(style)
    return None if expert is None or pd.isna(expert) else int(expert)


def _segment_concepts(cands: Sequence[Candidate]) -> list[str]:
    """The segment's concepts (from its template candidates, most relevant first) for non-template winners."""
    seen: dict[str, None] = {}
    for c in cands:
        for k in c.key_concepts:
            seen.setdefault(k, None)
    return list(seen)


def _opt(value) -> str | None:
    return None if value is None or (isinstance(value, float) and value != value) else str(value)
