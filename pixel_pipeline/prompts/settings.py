"""Every knob of prompt generation in one plain dataclass (the Dagster Config of `generated_prompts` mirrors it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pixel_pipeline.prompts.generators import DEFAULT_GENERATORS
from pixel_pipeline.prompts.rules import PromptRules


@dataclass
class PromptSettings:
    """Every knob of prompt generation; the Dagster Config of `generated_prompts` uses the same field names."""

    generators: list[str] = field(default_factory=lambda: list(DEFAULT_GENERATORS))
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
    # True: a segment whose response still opens leaning on what came before the cut ("Their memory kind of blanks
    # out.") gets no question (reject reason opening_leans; curation/openings.py): a model would learn to start there
    reject_leaning_openings: bool = True
    # True: a segment left without a question gets its most named field concept in a general form (generator
    # concept_fallback, not held to the opening floor). Off by default: read on the real development corpus, about a
    # quarter of those questions are answered by their response (docs/prompts.md), so such segments are rejected
    concept_fallback: bool = False
    cross_encoder_model: str = ""
    # rules (their defaults are PromptRules' own)
    min_words: int = PromptRules.min_words
    max_words: int = PromptRules.max_words
    copied_ngram_words: int = PromptRules.copied_ngram_words

    @property
    def rules(self) -> PromptRules:
        return PromptRules(min_words=self.min_words, max_words=self.max_words, copied_ngram_words=self.copied_ngram_words)
