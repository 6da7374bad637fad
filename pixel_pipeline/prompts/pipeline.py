"""Generate, score and select one client question per segment (instruction backtranslation, Li et al. 2023).

All generators propose candidates; every candidate is checked against the prompt rules, scored for alignment with
its segment (embedding cosine, plus a cross-encoder when configured) and for specificity (BM25 rank of its own
segment among all segments), and one winner per segment is chosen greedily with a penalty on prompts already used,
so a popular real question cannot answer hundreds of segments. Segments whose best candidate stays under the
alignment floor, or that have no candidate passing the rules, are rejected with the reason and the scores.

The steps live in their own modules: settings (PromptSettings), scoring (rules and scores of every candidate),
selection (the greedy choice and the reject reasons) and fallback (the optional concept fallback); their public
names are re-exported here.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pixel_pipeline.prompts.cache import CandidateCache, generate_cached
from pixel_pipeline.prompts.fallback import FALLBACK_REASONS, fallback_rows
from pixel_pipeline.prompts.generators import (
    CONCEPTS,
    GENERATOR_NAMES,
    LLM,
    RETRIEVAL,
    TALK,
    TITLE,
    Candidate,
    ConceptTemplateGenerator,
    GeneratorUnavailable,
    LLMBacktranslationGenerator,
    RetrievalGenerator,
    SegmentInput,
    TalkQuestionGenerator,
    TitleQuestionGenerator,
)
from pixel_pipeline.prompts.scoring import (
    OPENING_NOT_ABOUT_IT,
    StageProgress,
    count_rule_failures,
    cross_encoder_scores,
    flatten_candidates,
    gate_on_opening,
    response_opening,
    rule_violations,
    score_candidates,
)
from pixel_pipeline.prompts.selection import (
    ALIGNMENT_BELOW_FLOOR,
    NO_ACCEPTABLE_QUESTION,
    NO_VALID_PROMPT,
    OPENING_LEANS,
    PROMPT_ALREADY_USED,
    STAGE,
    leaning_openings,
    select_prompts,
)
from pixel_pipeline.prompts.settings import PromptSettings
from pixel_pipeline.prompts.talk_questions import TalkQuestionRules

__all__ = [
    "ALIGNMENT_BELOW_FLOOR", "FALLBACK_REASONS", "NO_ACCEPTABLE_QUESTION", "NO_VALID_PROMPT", "OPENING_LEANS",
    "OPENING_NOT_ABOUT_IT",
    "OUTPUT_COLUMNS", "PROMPT_ALREADY_USED", "STAGE", "PromptRun", "PromptSettings", "StageProgress",
    "build_generators", "client_questions", "count_slot_violations", "cross_encoder_scores", "generate_prompts",
    "response_opening",
]

log = logging.getLogger(__name__)

OUTPUT_COLUMNS = ["segment_id", "prompt", "generator", "alignment", "candidates", "key_concepts", "style", "expert", "bm25_rank"]


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
    segments = segments.reset_index(drop=True)
    rows_in = len(segments)
    texts, inputs = segment_inputs(segments)
    cache_path = Path(cache_dir) / "prompt_candidates.sqlite" if cache_dir else None
    leaning: list[dict] = []
    t0 = time.perf_counter()
    if settings.reject_leaning_openings:
        keep, leaning = leaning_openings(segments, inputs, cache_path)
        segments = segments.iloc[keep].reset_index(drop=True)
        texts, inputs = [texts[i] for i in keep], [inputs[i] for i in keep]
    opening_seconds = round(time.perf_counter() - t0, 2)
    cache = CandidateCache(cache_path) if cache_path else None
    generators, skipped = build_generators(settings, embedder, client_questions(conversations, settings.retrieval_datasets),
                                           files_by_source(segments))
    per_segment, cache_stats, seconds = run_generators(generators, inputs, cache, skipped, progress)
    seconds["leaning_openings"] = opening_seconds

    t0 = time.perf_counter()
    flat = flatten_candidates(per_segment)
    violations = rule_violations(flat, texts, settings.rules)
    rule_failures = count_rule_failures(flat, violations)
    pool = score_candidates(flat, violations, texts, embedder, settings, progress)
    gate_on_opening(pool, rule_failures, settings.opening_floor)  # adds to `violations` and `rule_failures`
    seconds["scoring"] = round(time.perf_counter() - t0, 2)

    rows, rejects, uses = select_prompts(pool, inputs, segments, settings, [g.name for g in generators], skipped)
    if settings.concept_fallback:
        found, rejects, fallback = fallback_rows(rejects, inputs, texts, segments, embedder, settings, uses, pool.bm25, cache)
        rows.extend(found)
        generators = [*generators, fallback]
    rejects = leaning + rejects
    table = output_table(rows, segments)
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
        rows_in=rows_in,
    )


def _strings(segments: pd.DataFrame, column: str) -> list[str | None]:
    values = segments[column] if column in segments else [None] * len(segments)
    return [v if isinstance(v, str) and v else None for v in values]


def segment_inputs(segments: pd.DataFrame) -> tuple[list[str], list[SegmentInput]]:
    """The segments' texts, and what the generators read of each segment (id, text, style, transcript file)."""
    texts = segments["text"].fillna("").astype(str).tolist()
    rows = zip(segments["segment_id"], texts, _strings(segments, "style"), _strings(segments, "file"))
    return texts, [SegmentInput(str(sid), t, s, f) for sid, t, s, f in rows]


def files_by_source(segments: pd.DataFrame) -> dict[str, list[str]]:
    """The transcript files of each channel (the title generator learns a channel's tail words from all of them)."""
    out: dict[str, list[str]] = {}
    for source, file in zip(_strings(segments, "source"), _strings(segments, "file")):
        if file:
            out.setdefault(source or "", []).append(file)
    return out


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


def build_generators(settings: PromptSettings, embedder, questions: pd.DataFrame,
                     files: dict[str, list[str]] | None = None) -> tuple[list, dict[str, str]]:
    """The configured generators; one whose model or data is missing is skipped with the reason."""
    generators, skipped = [], {}
    for name in settings.generators:
        try:
            if name == TITLE:
                generators.append(TitleQuestionGenerator(files or {}))
            elif name == TALK:
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


def run_generators(generators: list, inputs: list[SegmentInput], cache: CandidateCache | None, skipped: dict[str, str],
                   progress: StageProgress | None = None) -> tuple[list[list[Candidate]], dict, dict[str, float]]:
    """Every generator's candidates per segment (cached per segment), its cache figures and seconds; a generator
    that turns out unavailable while running is added to `skipped`."""
    per_segment: list[list[Candidate]] = [[] for _ in inputs]
    cache_stats: dict[str, dict[str, int]] = {}
    seconds: dict[str, float] = {}
    if not inputs:
        return per_segment, cache_stats, seconds
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
    return per_segment, cache_stats, seconds


def output_table(rows: list[dict], segments: pd.DataFrame) -> pd.DataFrame:
    """The rows in input order (not selection order), with fixed dtypes also when empty."""
    table = pd.DataFrame(rows, columns=OUTPUT_COLUMNS)
    if not table.empty:
        position = {sid: n for n, sid in enumerate(segments["segment_id"].astype(str))}
        table = table.sort_values("segment_id", key=lambda s: s.map(position), kind="stable").reset_index(drop=True)
    table["alignment"] = table["alignment"].astype("float64")
    table["expert"] = table["expert"].astype("Int64")
    table["bm25_rank"] = table["bm25_rank"].astype("int64")
    return table


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
