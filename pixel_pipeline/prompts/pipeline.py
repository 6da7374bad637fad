"""Generate, score and select one client question per segment (instruction backtranslation, Li et al. 2023).

All generators propose candidates; every candidate is checked against the prompt rules, scored for alignment with
its segment (embedding cosine, plus a cross-encoder when configured) and for specificity (BM25 rank of its own
segment among all segments), and one winner per segment is chosen greedily with a penalty on prompts already used,
so a popular real question cannot answer hundreds of segments. Segments whose best candidate stays under the
alignment floor, or that have no candidate passing the rules, are rejected with the reason and the scores.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pixel_pipeline.core.records import DATASET_SEGMENTS, EXPERT_INDEX, reason_key, reject_row
from pixel_pipeline.prompts.cache import CandidateCache, generate_cached
from pixel_pipeline.prompts.generators import (
    CONCEPTS,
    FALLBACK,
    GENERATOR_NAMES,
    GENERATOR_PRIORITY,
    LLM,
    RETRIEVAL,
    TALK,
    Candidate,
    ConceptFallbackGenerator,
    ConceptTemplateGenerator,
    GeneratorUnavailable,
    LLMBacktranslationGenerator,
    RetrievalGenerator,
    SegmentInput,
    TalkQuestionGenerator,
)
from pixel_pipeline.prompts.rules import PromptRules
from pixel_pipeline.prompts.specificity import BM25Index
from pixel_pipeline.prompts.talk_questions import TalkQuestionRules
from pixel_pipeline.prompts.text import normalise_prompt

log = logging.getLogger(__name__)

STAGE = "generated_prompts"
OUTPUT_COLUMNS = ["segment_id", "prompt", "generator", "alignment", "candidates", "key_concepts", "style", "expert", "bm25_rank"]
ALIGNMENT_BELOW_FLOOR = "alignment_below_floor"
NO_VALID_PROMPT = "no_valid_prompt"
NO_ACCEPTABLE_QUESTION = "no_acceptable_question"
PROMPT_ALREADY_USED = "prompt_already_used"
OPENING_NOT_ABOUT_IT = "opening_not_about_it"

# (stage, done, total) -> None; the Dagster layer logs it.
StageProgress = Callable[[str, int, int], None]


@dataclass
class PromptSettings:
    """Every knob of prompt generation; the Dagster Config of `generated_prompts` uses the same field names."""

    generators: list[str] = field(default_factory=lambda: list(GENERATOR_NAMES))
    alignment_floor: float = 0.3
    reuse_penalty: float = 0.15
    unique_prompts: bool = True  # a question answers one segment only: a segment whose questions are all taken is rejected
    specificity_weight: float = 0.15
    runner_ups: int = 5
    seed: int = 13
    # talk
    talk_min_words_after: int = 80
    talk_max_words_before: int = 200
    # retrieval
    retrieval_top_k: int = 8
    retrieval_min_similarity: float = 0.6
    retrieval_datasets: list[str] = field(default_factory=lambda: ["counseling"])
    # concepts
    concept_min_mentions: int = 3
    concept_general_forms: bool = True
    template_candidates: int = 6
    # llm
    llm_model: str = ""
    llm_batch_size: int = 8
    llm_max_new_tokens: int = 64
    llm_candidates: int = 2
    llm_temperature: float = 0.8
    llm_device: str = ""
    # scoring
    opening_words: int = 60  # the response's opening: what a reader checks first for the answer
    opening_floor: float = 0.62  # minimum cosine of a question with the opening (below: opening_not_about_it)
    # True: a segment left without a question gets its most named field concept in a general form (generator
    # concept_fallback, not held to the opening floor). Off by default: read on the real development corpus, about a
    # quarter of those questions are answered by their response (docs/prompts.md), so such segments are rejected
    concept_fallback: bool = False
    cross_encoder_model: str = ""
    # rules
    min_words: int = 6
    max_words: int = 60
    copied_ngram_words: int = 6

    @property
    def rules(self) -> PromptRules:
        return PromptRules(min_words=self.min_words, max_words=self.max_words, copied_ngram_words=self.copied_ngram_words)


@dataclass
class PromptRun:
    table: pd.DataFrame
    rejects: list[dict]
    skipped: dict[str, str]
    cache_stats: dict[str, dict[str, int]]
    seconds: dict[str, float]
    candidates_per_generator: dict[str, int]
    valid_candidates_per_generator: dict[str, int]
    rule_failures: dict[str, dict[str, int]]
    rows_in: int
    generator_stats: dict[str, dict[str, int]] = field(default_factory=dict)  # screens, slot drops (uncached segments)
    concept_slot_violations: int = 0  # written concept prompts whose slot the tagger does not read as a noun phrase


def client_questions(conversations: pd.DataFrame | None, datasets: Sequence[str]) -> pd.DataFrame:
    """Distinct client questions (`prompt`, `question_id`) of the chosen datasets of curated_conversations."""
    if conversations is None or conversations.empty or "prompt" not in conversations:
        return pd.DataFrame({"prompt": pd.Series(dtype=str), "question_id": pd.Series(dtype=str)})
    df = conversations
    if "dataset" in df and datasets:
        df = df[df["dataset"].isin(list(datasets))]
    df = df[df["prompt"].fillna("").astype(str).str.strip() != ""]
    if "question_id" not in df:
        from pixel_pipeline.core.ids import content_id

        df = df.assign(question_id=df["prompt"].map(content_id))
    return df.drop_duplicates("question_id")[["prompt", "question_id"]].reset_index(drop=True)


def build_generators(settings: PromptSettings, embedder, questions: pd.DataFrame) -> tuple[list, dict[str, str]]:
    generators, skipped = [], {}
    for name in settings.generators:
        try:
            if name == TALK:
                generators.append(
                    TalkQuestionGenerator(
                        TalkQuestionRules(
                            min_words_after=settings.talk_min_words_after,
                            max_words_before=settings.talk_max_words_before,
                        )
                    )
                )
            elif name == RETRIEVAL:
                generators.append(
                    RetrievalGenerator(
                        questions["prompt"].tolist(),
                        embedder,
                        top_k=settings.retrieval_top_k,
                        question_ids=questions["question_id"].tolist(),
                        min_similarity=settings.retrieval_min_similarity,
                    )
                )
            elif name == CONCEPTS:
                generators.append(
                    ConceptTemplateGenerator(
                        min_mentions=settings.concept_min_mentions,
                        template_candidates=settings.template_candidates,
                        seed=settings.seed,
                        general_forms=settings.concept_general_forms,
                    )
                )
            elif name == LLM:
                generators.append(
                    LLMBacktranslationGenerator(
                        llm_model=settings.llm_model,
                        llm_batch_size=settings.llm_batch_size,
                        llm_max_new_tokens=settings.llm_max_new_tokens,
                        llm_candidates=settings.llm_candidates,
                        llm_temperature=settings.llm_temperature,
                        llm_device=settings.llm_device,
                        seed=settings.seed,
                    )
                )
            else:
                raise ValueError(f"unknown generator {name!r}; expected some of {GENERATOR_NAMES}")
        except GeneratorUnavailable as exc:
            skipped[name] = str(exc)
    return generators, skipped


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


def generate_prompts(
    segments: pd.DataFrame,
    conversations: pd.DataFrame | None,
    embedder,
    settings: PromptSettings | None = None,
    cache_dir: str | Path | None = None,
    progress: StageProgress | None = None,
) -> PromptRun:
    """One client question per segment, or a reject row saying why there is none."""
    settings = settings or PromptSettings()
    rules = settings.rules
    seconds: dict[str, float] = {}
    segments = segments.reset_index(drop=True)
    texts = segments["text"].fillna("").astype(str).tolist()
    styles = [s if isinstance(s, str) and s else None for s in (segments["style"] if "style" in segments else [None] * len(segments))]
    inputs = [SegmentInput(str(sid), t, s) for sid, t, s in zip(segments["segment_id"], texts, styles)]
    questions = client_questions(conversations, settings.retrieval_datasets)
    cache = CandidateCache(Path(cache_dir) / "prompt_candidates.sqlite") if cache_dir else None
    generators, skipped = build_generators(settings, embedder, questions)

    per_segment: list[list[Candidate]] = [[] for _ in inputs]
    cache_stats: dict[str, dict[str, int]] = {}
    if inputs:
        for gen in generators:
            t0 = time.perf_counter()
            report = (lambda done, total, _n=gen.name: progress(_n, done, total)) if progress else None
            try:
                found, stats = generate_cached(gen, inputs, cache, report)
            except GeneratorUnavailable as exc:
                skipped[gen.name] = str(exc)
                continue
            cache_stats[gen.name] = stats
            seconds[gen.name] = round(time.perf_counter() - t0, 2)
            for i, cands in enumerate(found):
                per_segment[i].extend(cands)

    # ---- flatten, de-duplicate within a segment, apply the rules
    t0 = time.perf_counter()
    flat: list[tuple[int, Candidate]] = []
    for i, cands in enumerate(per_segment):
        seen = set()
        for c in cands:
            key = normalise_prompt(c.prompt)
            if key and key not in seen:
                seen.add(key)
                flat.append((i, c))
    violations: list[list[str]] = []
    response_ngrams: dict[int, set] = {}
    for i, c in flat:
        if i not in response_ngrams:
            response_ngrams[i] = rules.response_ngrams(texts[i])
        violations.append(rules.violations(c.prompt, response_ngrams=response_ngrams[i]))
    rule_failures: dict[str, Counter] = defaultdict(Counter)
    for (_, c), v in zip(flat, violations):
        for name in v:
            rule_failures[c.generator][name] += 1

    # ---- alignment (+ cross-encoder) and specificity of every candidate
    prompts = [c.prompt for _, c in flat]
    seg_idx = np.asarray([i for i, _ in flat], dtype=np.int64)
    if flat:
        seg_vecs = embedder.encode(texts)
        prompt_vecs = embedder.encode(prompts, progress=(lambda d, t: progress("alignment", d, t)) if progress else None)
        alignment = np.einsum("ij,ij->i", prompt_vecs, seg_vecs[seg_idx]).astype(np.float64)
        bm25 = BM25Index(texts)
        ranks = bm25.ranks(prompts, seg_idx)
        # The opening answers first: a question the first sentences are not about reads as unanswered.
        with_candidates = sorted(set(seg_idx.tolist()))
        opening_vecs = embedder.encode([response_opening(texts[i], settings.opening_words) for i in with_candidates])
        row = {i: n for n, i in enumerate(with_candidates)}
        opening = np.einsum("ij,ij->i", prompt_vecs, opening_vecs[[row[i] for i in seg_idx]]).astype(np.float64)
    else:
        bm25 = None
        alignment, ranks, opening = np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0)
    for k, (_, c) in enumerate(flat):
        if opening[k] < settings.opening_floor:
            violations[k].append(OPENING_NOT_ABOUT_IT)
            rule_failures[c.generator][OPENING_NOT_ABOUT_IT] += 1
    cross = None
    if settings.cross_encoder_model and flat:
        cross = cross_encoder_scores(settings.cross_encoder_model, [(p, texts[i]) for p, i in zip(prompts, seg_idx)])
    relevance = (alignment + opening) / 2 if cross is None else (alignment + opening + cross) / 3
    score = relevance + settings.specificity_weight / np.maximum(ranks, 1)
    seconds["scoring"] = round(time.perf_counter() - t0, 2)

    # ---- greedy selection with a penalty on prompts already used
    by_segment: dict[int, list[int]] = defaultdict(list)
    for k, (i, _) in enumerate(flat):
        by_segment[i].append(k)
    valid = np.asarray([not v for v in violations], dtype=bool)

    priority = np.asarray([GENERATOR_PRIORITY.get(c.generator, 0) for _, c in flat], dtype=np.int64)

    def best_score(i: int) -> float:
        ks = [k for k in by_segment.get(i, []) if valid[k]]
        return max((score[k] for k in ks), default=-1.0)

    order = sorted(range(len(inputs)), key=lambda i: (-best_score(i), inputs[i].segment_id))
    uses: Counter = Counter()
    rows, rejects = [], []
    for i in order:
        ks = by_segment.get(i, [])
        ok = [k for k in ks if valid[k]]
        adjusted = {k: score[k] - settings.reuse_penalty * uses[normalise_prompt(prompts[k])] for k in ok}
        ranked = sorted(ok, key=lambda k: (-priority[k], -adjusted[k]))
        above = [k for k in ranked if alignment[k] >= settings.alignment_floor]
        taken = bool(above) and settings.unique_prompts and all(uses[normalise_prompt(prompts[k])] for k in above)
        if settings.unique_prompts:
            above = [k for k in above if not uses[normalise_prompt(prompts[k])]]
        seg = segments.iloc[i]

        def describe(k: int) -> dict:
            d = {
                "prompt": prompts[k],
                "generator": flat[k][1].generator,
                "alignment": round(float(alignment[k]), 4),
                "opening": round(float(opening[k]), 4),
                "bm25_rank": int(ranks[k]),
                "score": round(float(adjusted.get(k, score[k])), 4),
            }
            if cross is not None:
                d["cross_score"] = round(float(cross[k]), 4)
            if violations[k]:
                d["violations"] = violations[k]
            return d

        if not above:
            if taken:
                reason = f"{PROMPT_ALREADY_USED}: every acceptable question of this segment already answers another segment"
                details = {"best": describe(ranked[0])}
            elif ranked:
                reason = f"{ALIGNMENT_BELOW_FLOOR}: best alignment {alignment[ranked[0]]:.3f} < {settings.alignment_floor}"
                details = {"best": describe(ranked[0]), "alignment_floor": settings.alignment_floor}
            elif not ks:
                reason = (
                    f"{NO_ACCEPTABLE_QUESTION}: the segment poses no usable question of its own, no client question "
                    "matches it strongly, and it names no field concept often enough to be about it"
                )
                details = {"generators": [g.name for g in generators], "skipped": skipped}
            else:
                reason = f"{NO_VALID_PROMPT}: {len(ks)} candidates, none passed the prompt rules"
                failed = Counter(v for k in ks for v in violations[k])
                details = {"rule_failures": dict(failed), "examples": [describe(k) for k in ks[:3]], "skipped": skipped}
            rejects.append(
                reject_row(
                    DATASET_SEGMENTS,
                    inputs[i].segment_id,
                    STAGE,
                    [reason],
                    details,
                    source=_opt(seg.get("source")),
                    file=_opt(seg.get("file")),
                )
            )
            continue
        win = above[0]
        uses[normalise_prompt(prompts[win])] += 1
        winner = flat[win][1]
        concepts = winner.key_concepts or _segment_concepts([flat[k][1] for k in ks])
        style = inputs[i].style
        expert = seg.get("expert") if "expert" in segments else EXPERT_INDEX.get(style)
        rows.append(
            {
                "segment_id": inputs[i].segment_id,
                "prompt": winner.prompt,
                "generator": winner.generator,
                "alignment": round(float(alignment[win]), 4),
                "candidates": json.dumps([describe(k) for k in ranked if k != win][: settings.runner_ups], ensure_ascii=False),
                "key_concepts": list(concepts),
                "style": style,
                "expert": None if expert is None or pd.isna(expert) else int(expert),
                "bm25_rank": int(ranks[win]),
            }
        )
    if settings.concept_fallback:
        found, rejects, stats = _fallback_rows(rejects, inputs, texts, segments, embedder, settings, uses, bm25, cache)
        rows.extend(found)
        generators = [*generators, stats]
    table = pd.DataFrame(rows, columns=OUTPUT_COLUMNS)
    if not table.empty:  # input order, not selection order
        position = {sid: n for n, sid in enumerate(segments["segment_id"].astype(str))}
        table = table.sort_values("segment_id", key=lambda s: s.map(position), kind="stable").reset_index(drop=True)
    table["alignment"] = table["alignment"].astype("float64")
    table["expert"] = table["expert"].astype("Int64")
    table["bm25_rank"] = table["bm25_rank"].astype("int64")
    return PromptRun(
        generator_stats={g.name: dict(getattr(g, "stats", {})) for g in generators},
        concept_slot_violations=count_slot_violations(table),
        table=table,
        rejects=rejects,
        skipped=skipped,
        cache_stats=cache_stats,
        seconds=seconds,
        candidates_per_generator=dict(Counter(c.generator for _, c in flat)),
        valid_candidates_per_generator=dict(Counter(c.generator for (_, c), v in zip(flat, violations) if not v)),
        rule_failures={g: dict(c) for g, c in rule_failures.items()},
        rows_in=len(inputs),
    )


FALLBACK_REASONS = (NO_ACCEPTABLE_QUESTION, NO_VALID_PROMPT)


def _fallback_rows(rejects: list[dict], inputs: list[SegmentInput], texts: list[str], segments: pd.DataFrame,
                   embedder, settings: PromptSettings, uses: Counter, bm25: BM25Index | None,
                   cache: CandidateCache | None = None) -> tuple[list[dict], list[dict], "ConceptFallbackGenerator"]:
    """Concept-form questions for the segments no generator found a question for (ConceptFallbackGenerator): each
    must pass the prompt rules and the alignment floor and be unused; the rest stay rejected with their reason."""
    gen = ConceptFallbackGenerator(settings.template_candidates, settings.seed)
    index = {inp.segment_id: i for i, inp in enumerate(inputs)}
    todo = [index[r["segment_id"]] for r in rejects if reason_key(r["reasons"][0]) in FALLBACK_REASONS]
    if not todo:
        return [], rejects, gen
    found, _ = generate_cached(gen, [inputs[i] for i in todo], cache)  # per segment, like the other generators
    rules = settings.rules
    flat = [(i, c) for i, cands in zip(todo, found) for c in cands
            if not rules.violations(c.prompt, response=texts[i])]
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
        seg, c = segments.iloc[i], flat[k][1]
        expert = seg.get("expert") if "expert" in segments else EXPERT_INDEX.get(inputs[i].style)
        rows.append({"segment_id": inputs[i].segment_id, "prompt": c.prompt, "generator": FALLBACK,
                     "alignment": round(float(alignment[k]), 4), "candidates": "[]", "key_concepts": list(c.key_concepts),
                     "style": inputs[i].style, "expert": None if expert is None or pd.isna(expert) else int(expert),
                     "bm25_rank": int(ranks[k])})
    answered = {inputs[i].segment_id for i in best}
    return rows, [r for r in rejects if r["segment_id"] not in answered], gen


def count_slot_violations(table: pd.DataFrame) -> int:
    """Concept-form prompts of `table` whose concept, tagged in the written prompt, is a verb, adjective or name."""
    from pixel_pipeline.prompts.concepts import _read_vocabulary
    from pixel_pipeline.core.tagger import slot_problem, slot_tags, tag
    from pixel_pipeline.prompts.templates import in_client_voice

    rows = table[table["generator"] == CONCEPTS] if len(table) else table
    if rows.empty:
        return 0
    vocabulary = _read_vocabulary()
    spans = []
    for prompt, concepts in zip(rows["prompt"], rows["key_concepts"]):
        term = list(concepts)[0]
        asked = in_client_voice(vocabulary[term][1] or term) if term in vocabulary else term
        start = prompt.lower().find(asked.lower())
        spans.append((start, start + len(asked)) if start >= 0 else None)
    tagged = tag(rows["prompt"].tolist())
    return sum(1 for span, tokens in zip(spans, tagged) if span is None or slot_problem(slot_tags(tokens, *span)))


def _segment_concepts(cands: Sequence[Candidate]) -> list[str]:
    """The segment's concepts (from its template candidates, most relevant first) for non-template winners."""
    seen: dict[str, None] = {}
    for c in cands:
        for k in c.key_concepts:
            seen.setdefault(k, None)
    return list(seen)


def _opt(value) -> str | None:
    return None if value is None or (isinstance(value, float) and value != value) else str(value)
