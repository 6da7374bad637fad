"""Three ways to propose the client question a segment answers, behind one small interface.

Each generator turns a batch of segments into candidate prompts per segment; none of them decides which candidate
wins (that is `pipeline.generate_prompts`, which scores all candidates together). A generator that cannot run (no question bank, no
LLM configured or loadable) raises `GeneratorUnavailable` with a message for the run log, so it is skipped openly,
never replaced by something that pretends to be it.

- `retrieval`: real client questions from the counseling corpus, nearest to the segment by embedding.
- `concepts`: the segment's key concepts (KeyBERT-style) in style-specific question forms, seeded variation.
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
from pixel_pipeline.prompts.concepts import extract_key_concepts
from pixel_pipeline.prompts.templates import fill_templates
from pixel_pipeline.prompts.text import is_first_person, sentences, words

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]

RETRIEVAL = "retrieval"
CONCEPTS = "concepts"
LLM = "llm"
GENERATOR_NAMES = (RETRIEVAL, CONCEPTS, LLM)


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
    """Nearest real client questions (`Context` of the counseling set) to each segment."""

    name = RETRIEVAL

    def __init__(self, questions: Sequence[str], embedder, top_k: int = 8, question_ids: Sequence[str] | None = None):
        if not questions:
            raise GeneratorUnavailable(
                "retrieval: no client questions (curated_conversations is empty, missing, or has no rows of the "
                "retrieval_datasets); skipped. Materialize curated_conversations with counseling data to enable it."
            )
        self.embedder = embedder
        self.top_k = top_k
        self.question_ids = list(question_ids) if question_ids is not None else [sha256_hex(q)[:16] for q in questions]
        self.questions = list(questions)
        self._vectors: np.ndarray | None = None

    def fingerprint(self) -> str:
        bank = sha256_hex("\n".join(sorted(self.question_ids)))
        return _fingerprint(self.name, top_k=self.top_k, bank=bank, model=self.embedder.cache_namespace)

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
            for j in top:
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
    """Key concepts of the segment in style-specific client question forms."""

    name = CONCEPTS

    def __init__(
        self,
        embedder,
        concepts_per_segment: int = 5,
        concept_candidate_pool: int = 16,
        concept_diversity: float = 0.3,
        concept_domain_weight: float = 0.5,
        template_candidates: int = 4,
        seed: int = 13,
        corpus_texts: Sequence[str] | None = None,
        phrase_store=None,
    ):
        self.embedder = embedder
        self.phrase_store = phrase_store  # per-text phrase sets for the corpus frequencies (concepts.phrase_document_frequencies)
        self.concepts_per_segment = concepts_per_segment
        self.concept_candidate_pool = concept_candidate_pool
        self.concept_diversity = concept_diversity
        self.concept_domain_weight = concept_domain_weight
        self.template_candidates = template_candidates
        self.seed = seed
        self.corpus_texts = corpus_texts

    def fingerprint(self) -> str:
        return _fingerprint(
            self.name,
            concepts_per_segment=self.concepts_per_segment,
            concept_candidate_pool=self.concept_candidate_pool,
            concept_diversity=self.concept_diversity,
            concept_domain_weight=self.concept_domain_weight,
            template_candidates=self.template_candidates,
            seed=self.seed,
            model=self.embedder.cache_namespace,
        )

    def generate(self, segments: Sequence[SegmentInput], progress: Progress | None = None) -> list[list[Candidate]]:
        concepts = extract_key_concepts(
            [s.text for s in segments],
            self.embedder,
            top_n=self.concepts_per_segment,
            candidate_pool=self.concept_candidate_pool,
            diversity=self.concept_diversity,
            domain_weight=self.concept_domain_weight,
            corpus_texts=self.corpus_texts,
            progress=progress,
            phrase_store=self.phrase_store,
        )
        out: list[list[Candidate]] = []
        for seg, found in zip(segments, concepts):
            phrases = [p for p, _ in found]
            rng = random.Random(f"{self.seed}:{seg.segment_id}")
            filled = fill_templates(phrases, seg.style, self.template_candidates, rng)
            out.append([Candidate(prompt=q, generator=self.name, key_concepts=list(used), note="template") for q, used in filled])
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
