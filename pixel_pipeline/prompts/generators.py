"""Four ways to propose the client question a segment answers, behind one small interface.

Each generator turns a batch of segments into candidate prompts per segment; none of them decides which candidate
wins (that is `pipeline.generate_prompts`, which scores all candidates together). A generator that cannot run (no question bank, no
LLM configured or loadable) raises `GeneratorUnavailable` with a message for the run log, so it is skipped openly,
never replaced by something that pretends to be it.

- `talk`: the question the talk itself poses before answering it, in the client's voice (talk_questions.py).
- `title`: the talk's title as the client's question (titles.py), for the segment of the talk that answers it.
- `retrieval`: real client questions from the counseling corpus, only where one matches the segment strongly.
- `concepts`: the segment's central field concept in a question form that fits the concept and the segment.
- `llm`: instruction backtranslation with a local Hugging Face causal LM.
"""

from __future__ import annotations

import functools
import json
import logging
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from pixel_pipeline.core.ids import sha256_hex
from pixel_pipeline.prompts.concepts import central_concepts, linked_concept, term_mentions
from pixel_pipeline.core.tagger import slot_problem, slot_tags, tag
from pixel_pipeline.prompts.talk_questions import TalkQuestionRules, client_voice, posed_questions, screen
from pixel_pipeline.prompts.templates import GENERAL, LINKED_FORMS, concept_forms, fill_linked, segment_intent
from pixel_pipeline.prompts.text import is_first_person, sentences, words

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]

TALK = "talk"
TITLE = "title"
RETRIEVAL = "retrieval"
CONCEPTS = "concepts"
LLM = "llm"
FALLBACK = "concept_fallback"  # not in GENERATOR_NAMES: it runs after them, for the segments they left without a question
GENERATOR_NAMES = (TALK, TITLE, RETRIEVAL, CONCEPTS, LLM)
# `title` is opt-in: read on the real development corpus, 3 of the 7 title pairs were answered by their segment
# (docs/prompts.md, session 7), below what the strict default holds to
DEFAULT_GENERATORS = (TALK, RETRIEVAL, CONCEPTS, LLM)
# Which kind of candidate wins when several are acceptable: the talk's own question and a real client question are
# what a person asked; a concept form is a stand-in. A title is one question for a whole talk, so it comes after a
# segment's own concept form: the segment that has no other question takes it, and both segments keep a pair.
GENERATOR_PRIORITY = {TALK: 3, RETRIEVAL: 2, LLM: 2, CONCEPTS: 1, TITLE: 0.5, FALLBACK: 0}


class GeneratorUnavailable(RuntimeError):
    """The generator cannot run in this environment; the message says why and how to enable it."""


@dataclass(frozen=True)
class SegmentInput:
    segment_id: str
    text: str
    style: str | None = None
    file: str | None = None  # the transcript file: its name is the talk's title


@dataclass
class Candidate:
    prompt: str
    generator: str
    key_concepts: list[str] = field(default_factory=list)
    note: str = ""  # how it was made: the question_id it was retrieved from, "adapted: ...", the template form

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Candidate":
        return cls(**d)


class PromptGenerator(Protocol):
    name: str

    def fingerprint(self) -> str:
        """Everything that changes this generator's output for a given segment (cache key part)."""

    def generate(self, segments: Sequence[SegmentInput], progress: Progress | None = None) -> list[list[Candidate]]:
        """Candidates for each segment, in order."""


# every module whose code decides a generator's candidates (talk_questions.py was missing: its edits reused stale ones)
CODE_FILES = ("generators.py", "backtranslation.py", "concepts.py", "templates.py", "text.py", "talk_questions.py",
              "titles.py")


def code_files() -> list[Path]:
    """Every file whose content decides a generator's candidates: the code, the tagger and the field vocabulary."""
    here = Path(__file__).parent
    return [here / f for f in CODE_FILES] + [here.parent / "core" / "tagger.py"] + sorted((here / "data").glob("*"))


@functools.lru_cache(maxsize=1)
def _code_version() -> str:
    """Hash of code_files(): editing a template, the concept rules or a term invalidates cached candidates. Taken
    once, at import (below), so it names the code this process runs even when the files are edited during a run."""
    return sha256_hex("".join(f.read_text(encoding="utf-8") for f in code_files()))[:16]


def _fingerprint(name: str, **settings) -> str:
    return sha256_hex(json.dumps({"generator": name, "code": _code_version(), **settings}, sort_keys=True, default=str))[:16]


# ---------------------------------------------------------------------------------------------------------------
# 1. Retrieval of real client questions
# ---------------------------------------------------------------------------------------------------------------

# Appended to a retrieved first-person statement that asks nothing ("I've been feeling empty for months."), so it
# becomes a question without inventing any fact about the client.
GENERIC_QUESTIONS = ("What can I do about this?", "How do I deal with this?", "Is this normal, and what should I do?")


def adapt_client_question(text: str, max_words: int = 60, seed: str = "") -> tuple[str | None, str]:
    """Lightly adapt a real client question to the prompt rules; returns (prompt or None, what was changed).

    Keeps the client's words: a first-person statement without a question gets a generic question appended;
    an over-long post keeps its last sentences (where the question usually is) so that the whole stays within
    `max_words`. Anything else (a third-person statement) is returned unchanged for the rules to judge.
    """
    text = " ".join(str(text).split())
    if not text:
        return None, "empty"
    changes = []
    parts = sentences(text)
    asks = text.rstrip("\"')").endswith("?")
    suffix = ""
    if not asks and is_first_person(text):
        suffix = random.Random(f"{seed}:{text}").choice(GENERIC_QUESTIONS)
    budget = max_words - len(words(suffix))
    if len(words(text)) > budget and parts:
        asked = [i for i, s in enumerate(parts) if s.endswith("?")]
        end = asked[-1] + 1 if asked else len(parts)
        kept: list[str] = []
        for s in reversed(parts[:end]):
            if len(words(" ".join([s, *kept]))) > budget:
                break
            kept.insert(0, s)
        if not kept:
            return None, "no sentence short enough"
        text = " ".join(kept)
        changes.append("kept the last sentences")
        if asked and suffix:  # the kept part ends with the client's own question now
            suffix = ""
    if suffix:
        text = f"{text.rstrip()} {suffix}"
        changes.append("appended a question")
    return text, "; ".join(changes)


class RetrievalGenerator:
    """Real client questions (`Context` of the counseling set) that match a segment strongly.

    A question is a candidate only when its cosine with the segment reaches `min_similarity` and it shares a field
    term with the segment (the re-ranking: the nearest of 3,000 questions is usually about something else).
    """

    name = RETRIEVAL

    def __init__(
        self,
        questions: Sequence[str],
        embedder,
        top_k: int = 8,
        question_ids: Sequence[str] | None = None,
        min_similarity: float = 0.6,
    ):
        if not questions:
            raise GeneratorUnavailable(
                "retrieval: no client questions (curated_conversations is empty, missing, or has no rows of the "
                "retrieval_datasets); skipped. Materialize curated_conversations with counseling data to enable it."
            )
        self.embedder = embedder
        self.top_k = top_k
        self.min_similarity = min_similarity
        self.question_ids = list(question_ids) if question_ids is not None else [sha256_hex(q)[:16] for q in questions]
        self.questions = list(questions)
        self._vectors: np.ndarray | None = None

    def fingerprint(self) -> str:
        bank = sha256_hex("\n".join(sorted(self.question_ids)))
        return _fingerprint(
            self.name, top_k=self.top_k, min_similarity=self.min_similarity, bank=bank, model=self.embedder.cache_namespace
        )

    def generate(self, segments: Sequence[SegmentInput], progress: Progress | None = None) -> list[list[Candidate]]:
        if self._vectors is None:
            self._vectors = self.embedder.encode(self.questions)
        seg_vecs = self.embedder.encode([s.text for s in segments], progress=progress)
        sims = seg_vecs @ self._vectors.T
        k = min(self.top_k, len(self.questions))
        out: list[list[Candidate]] = []
        for seg, row in zip(segments, sims):
            top = np.argsort(-row, kind="stable")[:k]
            cands = []
            segment_terms = set(term_mentions(seg.text))
            for j in top:
                if row[j] < self.min_similarity or not segment_terms & set(term_mentions(self.questions[j])):
                    continue
                prompt, change = adapt_client_question(self.questions[j], seed=seg.segment_id)
                if prompt:
                    note = f"question_id={self.question_ids[j]}" + (f"; adapted: {change}" if change else "")
                    cands.append(Candidate(prompt=prompt, generator=self.name, note=note))
            out.append(cands)
        return out


# ---------------------------------------------------------------------------------------------------------------
# 2. Concept-grounded style templates
# ---------------------------------------------------------------------------------------------------------------


class ConceptTemplateGenerator:
    """The segment's central field concept in question forms fitting the concept's kind and the segment's intent.

    Every filled form is tagged; a form whose concept slot does not read as a noun phrase (a verb, an adjective, a
    name) is dropped and counted in `stats["slot_rejected"]`.
    """

    name = CONCEPTS

    def __init__(self, min_mentions: int = 3, template_candidates: int = 6, seed: int = 13, general_forms: bool = True):
        self.min_mentions = min_mentions
        self.template_candidates = template_candidates
        self.seed = seed
        # ask "Can you talk about X?" when the opening names X without a claim about it (the opening gate of the
        # pipeline then decides whether the opening is about it)
        self.general_forms = general_forms
        self.stats = {"no_central_concept": 0, "concept_not_in_opening": 0, "no_claim_about_concept": 0, "slot_rejected": 0}

    def fingerprint(self) -> str:
        return _fingerprint(
            self.name,
            min_mentions=self.min_mentions,
            template_candidates=self.template_candidates,
            seed=self.seed,
            general_forms=self.general_forms,
        )

    def generate(self, segments: Sequence[SegmentInput], progress: Progress | None = None) -> list[list[Candidate]]:
        filled: list[tuple[int, str, tuple[int, int], str]] = []
        for i, seg in enumerate(segments):
            concepts = central_concepts(seg.text, self.min_mentions, top_n=2)
            if not concepts:
                self.stats["no_central_concept"] += 1
                continue
            rng = random.Random(f"{self.seed}:{seg.segment_id}")
            for concept in concepts:  # one concept per form; the segment's two most named concepts each get forms
                intent = segment_intent(seg.text, concept.term)
                if intent is None:
                    self.stats["concept_not_in_opening"] += 1
                    continue
                if intent == GENERAL and not self.general_forms:
                    self.stats["no_claim_about_concept"] += 1
                    continue
                for question, span in concept_forms(concept, intent, self.template_candidates, rng):
                    filled.append((i, question, [span], [concept.term]))
                # no claim about the concept, but the opening links a second one to it in one sentence: the
                # segment's angle on it (a broad question answered by one side of it is the reader's commonest "no")
                other = linked_concept(seg.text, concept) if intent == GENERAL else None
                if other is not None:
                    for form in rng.sample(LINKED_FORMS, len(LINKED_FORMS)):
                        question, spans = fill_linked(form, concept, other)
                        filled.append((i, question, spans, [concept.term, other.term]))
        if progress:
            progress(len(segments), len(segments))
        return self._tagged(filled, len(segments))

    def _tagged(self, filled: list[tuple[int, str, list[tuple[int, int]], list[str]]], n: int) -> list[list[Candidate]]:
        """The filled forms whose concept slots the tagger reads as noun phrases, as candidates per segment."""
        out: list[list[Candidate]] = [[] for _ in range(n)]
        for (i, question, spans, terms), tokens in zip(filled, tag([q for _, q, _, _ in filled])):
            if any(slot_problem(slot_tags(tokens, a, b)) for a, b in spans):
                self.stats["slot_rejected"] += 1
                continue
            out[i].append(Candidate(prompt=question, generator=self.name, key_concepts=terms, note="template"))
        return out


class ConceptFallbackGenerator(ConceptTemplateGenerator):
    """For a segment no other source found an acceptable question for: the field concept it names most (once is
    enough) in a general question form. The least sure source: the pipeline does not hold it to the opening floor,
    the pair says `generator: concept_fallback`, and `concept_fallback=False` turns it off for strict data."""

    name = FALLBACK

    def __init__(self, template_candidates: int = 6, seed: int = 13):
        super().__init__(min_mentions=1, template_candidates=template_candidates, seed=seed, general_forms=True)

    def generate(self, segments: Sequence[SegmentInput], progress: Progress | None = None) -> list[list[Candidate]]:
        filled: list[tuple[int, str, tuple[int, int], str]] = []
        for i, seg in enumerate(segments):
            concepts = central_concepts(seg.text, 1, top_n=2, words_per_mention=10**9)
            if not concepts:
                self.stats["no_central_concept"] += 1
                continue
            rng = random.Random(f"{self.seed}:{FALLBACK}:{seg.segment_id}")
            for concept in concepts:
                for question, span in concept_forms(concept, GENERAL, self.template_candidates, rng):
                    filled.append((i, question, [span], [concept.term]))
        return self._tagged(filled, len(segments))


# ---------------------------------------------------------------------------------------------------------------
# 2b. The talk's own questions
# ---------------------------------------------------------------------------------------------------------------


class TalkQuestionGenerator:
    """Questions the segment poses early and answers after (talk_questions.py), in the client's voice."""

    name = TALK

    def __init__(self, rules: TalkQuestionRules | None = None):
        self.rules = rules or TalkQuestionRules()
        self.stats: dict[str, int] = {}

    def fingerprint(self) -> str:
        return _fingerprint(self.name, rules=asdict(self.rules))

    def generate(self, segments: Sequence[SegmentInput], progress: Progress | None = None) -> list[list[Candidate]]:
        found: list[tuple[int, str]] = []
        for i, seg in enumerate(segments):
            for q in posed_questions(seg.text):
                reason = screen(q, self.rules, term_mentions)
                self.stats[reason or "accepted"] = self.stats.get(reason or "accepted", 0) + 1
                if reason is None:
                    found.append((i, q.text))
        out: list[list[Candidate]] = [[] for _ in segments]
        for (i, text), tokens in zip(found, tag([t for _, t in found])):
            question = client_voice(text, tokens)
            if question is None:
                self.stats["not_clean_speech"] = self.stats.get("not_clean_speech", 0) + 1
                continue
            terms = sorted(term_mentions(question))
            out[i].append(Candidate(prompt=question, generator=self.name, key_concepts=terms, note=f"posed: {text}"))
        if progress:
            progress(len(segments), len(segments))
        return out


class TitleQuestionGenerator:
    """The talk's title as the client's question (titles.py), proposed for every segment of the talk; the pipeline's
    opening gate and one-segment-per-question pick the segment that answers it.

    Built from every (source, file) of the table at once, since a channel's tail words are learned from all its
    titles; the fingerprint holds the resulting questions, so a new transcript of the channel re-proposes them.
    """

    name = TITLE

    def __init__(self, files_by_source: dict[str, Sequence[str]]):
        from pixel_pipeline.prompts.titles import title_questions

        self.questions = title_questions(files_by_source) if files_by_source else {}
        self.stats = dict(Counter(why for _, why in self.questions.values()))

    def fingerprint(self) -> str:
        asked = sorted((f, q) for f, (q, _) in self.questions.items() if q)
        return _fingerprint(self.name, questions=sha256_hex(json.dumps(asked)))

    def generate(self, segments: Sequence[SegmentInput], progress: Progress | None = None) -> list[list[Candidate]]:
        out: list[list[Candidate]] = []
        for seg in segments:
            question = self.questions.get(seg.file or "", (None, ""))[0]
            out.append([Candidate(prompt=question, generator=self.name, key_concepts=sorted(term_mentions(question)),
                                  note=f"title: {seg.file}")] if question else [])
        if progress:
            progress(len(segments), len(segments))
        return out


# `llm`: instruction backtranslation with a local causal LM (prompts/backtranslation.py), re-exported here
from pixel_pipeline.prompts.backtranslation import (  # noqa: E402
    BACKTRANSLATION_INSTRUCTION,
    LLMBacktranslationGenerator,
    clean_generated_question,
)


_code_version()  # taken at import: the candidates cached by this process are keyed by the code it loaded
