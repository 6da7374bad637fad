"""Four ways to propose the client question a segment answers, behind one small interface.

Each generator turns a batch of segments into candidate prompts per segment; none of them decides which candidate
wins (that is `pipeline.generate_prompts`, which scores all candidates together). A generator that cannot run (no question bank, no
LLM configured or loadable) raises `GeneratorUnavailable` with a message for the run log, so it is skipped openly,
never replaced by something that pretends to be it.

- `talk`: the question the talk itself poses before answering it, in the client's voice (talk_questions.py).
- `retrieval`: real client questions from the counseling corpus, only where one matches the segment strongly.
- `concepts`: the segment's central field concept in a question form that fits the concept and the segment.
- `llm`: instruction backtranslation with a local Hugging Face causal LM.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

import numpy as np

from pixel_pipeline.core.ids import sha256_hex
from pixel_pipeline.prompts.concepts import central_concepts, term_mentions
from pixel_pipeline.core.tagger import slot_problem, slot_tags, tag
from pixel_pipeline.prompts.talk_questions import TalkQuestionRules, client_voice, posed_questions, screen
from pixel_pipeline.prompts.templates import GENERAL, concept_forms, segment_intent
from pixel_pipeline.prompts.text import is_first_person, sentences, words

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]

TALK = "talk"
RETRIEVAL = "retrieval"
CONCEPTS = "concepts"
LLM = "llm"
FALLBACK = "concept_fallback"  # not in GENERATOR_NAMES: it runs after them, for the segments they left without a question
GENERATOR_NAMES = (TALK, RETRIEVAL, CONCEPTS, LLM)
# Which kind of candidate wins when several are acceptable: the talk's own question and a real client question are
# what a person asked; a concept form is a stand-in.
GENERATOR_PRIORITY = {TALK: 3, RETRIEVAL: 2, LLM: 2, CONCEPTS: 1, FALLBACK: 0}


class GeneratorUnavailable(RuntimeError):
    """The generator cannot run in this environment; the message says why and how to enable it."""


@dataclass(frozen=True)
class SegmentInput:
    segment_id: str
    text: str
    style: str | None = None


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


def _code_version() -> str:
    """Hash of the generator code itself: editing a template or the concept rules invalidates cached candidates."""
    from pathlib import Path

    here = Path(__file__).parent
    return sha256_hex("".join((here / f).read_text(encoding="utf-8") for f in ("generators.py", "concepts.py", "templates.py", "text.py")))[:16]


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
                    filled.append((i, question, span, concept.term))
        if progress:
            progress(len(segments), len(segments))
        return self._tagged(filled, len(segments))

    def _tagged(self, filled: list[tuple[int, str, tuple[int, int], str]], n: int) -> list[list[Candidate]]:
        """The filled forms whose concept slot the tagger reads as a noun phrase, as candidates per segment."""
        out: list[list[Candidate]] = [[] for _ in range(n)]
        for (i, question, (a, b), term), tokens in zip(filled, tag([q for _, q, _, _ in filled])):
            if slot_problem(slot_tags(tokens, a, b)):
                self.stats["slot_rejected"] += 1
                continue
            out[i].append(Candidate(prompt=question, generator=self.name, key_concepts=[term], note="template"))
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
                    filled.append((i, question, span, concept.term))
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


# ---------------------------------------------------------------------------------------------------------------
# 3. LLM backtranslation
# ---------------------------------------------------------------------------------------------------------------

BACKTRANSLATION_INSTRUCTION = (
    "Below is part of a talk by a mental-health educator.\n\n---\n{segment}\n---\n\n"
    "Write the question a client could have asked that this passage answers. Write it in the client's own voice, "
    "in the first person, in one or two sentences, ending with a question mark. Do not copy phrases from the "
    "passage. Reply with the question only."
)

_LABEL_PREFIXES = ("question:", "client:", "q:", "the question:", "client question:")


def clean_generated_question(text: str) -> str:
    """The question out of a model's reply: first paragraph, labels and quotes removed, cut after the first '?'."""
    text = text.strip()
    paragraphs = [p.strip() for p in text.split("\n") if p.strip()]
    text = paragraphs[0] if paragraphs else ""
    lowered = text.lower()
    for prefix in _LABEL_PREFIXES:
        if lowered.startswith(prefix):
            text = text[len(prefix) :].strip()
            break
    if "?" in text:
        text = text[: text.index("?") + 1]
    return text.strip().strip("\"'“”‘’").strip()


class LLMBacktranslationGenerator:
    """Instruction backtranslation (Li et al. 2023): a causal LM writes the question the segment answers.

    The model is any Hugging Face causal LM id or local folder (`llm_model`); it runs batched, on the GPU when one
    is present (or `llm_device`). Nothing is downloaded when HF_HUB_OFFLINE=1; remote code is never trusted.
    """

    name = LLM

    def __init__(
        self,
        llm_model: str,
        llm_batch_size: int = 8,
        llm_max_new_tokens: int = 64,
        llm_candidates: int = 2,
        llm_temperature: float = 0.8,
        llm_device: str = "",
        seed: int = 13,
        max_segment_words: int = 300,
        max_input_tokens: int = 1024,
    ):
        if not llm_model:
            raise GeneratorUnavailable(
                "llm: no model configured; skipped. Set llm_model (or PIXEL_PROMPT_LLM) to a local folder or a "
                "Hugging Face causal LM id available offline to enable instruction backtranslation."
            )
        self.llm_model = llm_model
        self.batch_size = max(1, llm_batch_size)
        self.max_new_tokens = llm_max_new_tokens
        self.n_candidates = max(1, llm_candidates)
        self.temperature = llm_temperature
        self.seed = seed
        self.max_segment_words = max_segment_words
        self.max_input_tokens = max_input_tokens
        self.device = llm_device or None
        self.tokenizer = None
        self.model = None
        self.stats = {"generated": 0, "batches": 0}

    def fingerprint(self) -> str:
        return _fingerprint(
            self.name,
            model=self.llm_model,
            max_new_tokens=self.max_new_tokens,
            candidates=self.n_candidates,
            temperature=self.temperature,
            seed=self.seed,
            max_segment_words=self.max_segment_words,
            instruction=sha256_hex(BACKTRANSLATION_INSTRUCTION),
        )

    def load(self) -> None:
        """Load tokenizer and model once; GeneratorUnavailable (with the reason) when that is impossible."""
        if self.model is not None:
            return
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
            dtype = torch.bfloat16 if device.startswith("cuda") and torch.cuda.is_bf16_supported() else torch.float32
            tokenizer = AutoTokenizer.from_pretrained(self.llm_model, trust_remote_code=False)
            model = AutoModelForCausalLM.from_pretrained(self.llm_model, dtype=dtype, trust_remote_code=False)
        except Exception as exc:  # missing folder, hub unreachable, not a causal LM, ...
            raise GeneratorUnavailable(
                f"llm: could not load {self.llm_model!r} ({type(exc).__name__}: {str(exc).splitlines()[0][:300]}); skipped"
            ) from exc
        tokenizer.padding_side = "left"  # decoder-only models continue from the right edge
        tokenizer.truncation_side = "left"  # keep the instruction's end ("Reply with the question only.")
        if tokenizer.pad_token is None:
            if tokenizer.eos_token is None:
                raise GeneratorUnavailable(f"llm: tokenizer of {self.llm_model!r} has neither a pad nor an eos token; skipped")
            tokenizer.pad_token = tokenizer.eos_token
        self.device = device
        self.tokenizer = tokenizer
        self.model = model.to(device).eval()
        log.info("llm backtranslation model %s loaded on %s", self.llm_model, device)

    def render(self, segment: SegmentInput) -> str:
        text = " ".join(segment.text.split()[: self.max_segment_words])
        instruction = BACKTRANSLATION_INSTRUCTION.format(segment=text)
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(
                [{"role": "user", "content": instruction}], tokenize=False, add_generation_prompt=True
            )
        return instruction + "\n\nQuestion:"

    def generate(self, segments: Sequence[SegmentInput], progress: Progress | None = None) -> list[list[Candidate]]:
        import torch

        self.load()
        tok, model = self.tokenizer, self.model
        uses_chat_template = bool(getattr(tok, "chat_template", None))
        order = sorted(range(len(segments)), key=lambda i: len(segments[i].text))  # similar lengths pad less
        out: list[list[Candidate]] = [[] for _ in segments]
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            enc = tok(
                [self.render(segments[i]) for i in idx],
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=self.max_input_tokens,
                add_special_tokens=not uses_chat_template,
            )
            enc.pop("token_type_ids", None)
            enc = {k: v.to(self.device) for k, v in enc.items()}
            torch.manual_seed(self.seed + start)
            sample = self.temperature > 0
            with torch.inference_mode():
                generated = model.generate(
                    **enc,
                    max_new_tokens=self.max_new_tokens,
                    do_sample=sample,
                    temperature=self.temperature if sample else None,
                    top_p=0.95 if sample else None,
                    num_return_sequences=self.n_candidates if sample else 1,
                    pad_token_id=tok.pad_token_id,
                )
            new_tokens = generated[:, enc["input_ids"].shape[1] :]
            texts = tok.batch_decode(new_tokens, skip_special_tokens=True)
            per_input = len(texts) // len(idx)
            for k, i in enumerate(idx):
                seen = set()
                for raw in texts[k * per_input : (k + 1) * per_input]:
                    question = clean_generated_question(raw)
                    if question and question not in seen:
                        seen.add(question)
                        out[i].append(Candidate(prompt=question, generator=self.name, note=f"model={self.llm_model}"))
            self.stats["batches"] += 1
            self.stats["generated"] += len(texts)
            if progress:
                progress(min(start + self.batch_size, len(order)), len(order))
        return out
