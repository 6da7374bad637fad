"""Every threshold of the curation rules in one frozen dataclass (the Dagster Config classes use the same names)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from pixel_pipeline.core.records import STYLES
from pixel_pipeline.curation import filters, shaping

# The garbled / repetition / housekeeping defaults are the rule modules' own (filters.*Thresholds), read as class
# attributes so that each is written once.
_GARBLED, _REPETITION, _HOUSEKEEPING = filters.GarbledThresholds, filters.RepetitionThresholds, filters.HousekeepingThresholds
_RELIGIOUS = filters.ReligiousThresholds


@dataclass(frozen=True)
class CurationSettings:
    """Every threshold of the curation rules (the Dagster Config classes use the same field names)."""

    # length
    min_words: int = 30
    max_words: int = 1400  # ~1,800 tokens at 1.3 tokens/word: fits a 2,048-token sequence with the prompt
    length_action: str = "reject"  # or "truncate" (at a sentence boundary); never split: one pair per input row
    conversation_min_words: int = 5
    # language
    min_english_probability: float = 0.5
    # garbled
    max_foreign_script_runs: int = _GARBLED.max_foreign_script_runs
    max_foreign_run_letters: int = _GARBLED.max_foreign_run_letters
    max_foreign_letter_share: float = _GARBLED.max_foreign_letter_share
    max_non_word_share: float = _GARBLED.max_non_word_share
    max_broken_punctuation_per_100_words: float = _GARBLED.max_broken_punctuation_per_100_words
    # repetition (the Gopher n-gram limits are fixed at the published values; see filters.RepetitionThresholds)
    max_consecutive_repeats: int = _REPETITION.max_consecutive_repeats
    max_duplicate_sentence_share: float = _REPETITION.max_duplicate_sentence_share
    # housekeeping
    max_housekeeping_word_share: float = _HOUSEKEEPING.max_housekeeping_word_share
    max_housekeeping_reads: int = _HOUSEKEEPING.max_housekeeping_reads
    strip_housekeeping: bool = True
    # religious (segments only)
    max_scripture_per_100_words: float = _RELIGIOUS.max_scripture_per_100_words
    min_scripture_words: int = _RELIGIOUS.min_scripture_words
    # off_domain
    min_domain_margin: float = 0.0
    domain_reference_sources: tuple[str, ...] = ()  # the voice sources (raw_segments' choice, set by the asset)
    # per-expert floors (style -> value); a missing style uses the general value
    expert_min_quality: Mapping[str, float] = field(default_factory=lambda: {s: 0.3 for s in STYLES})
    expert_min_domain_margin: Mapping[str, float] = field(default_factory=dict)
    # safety / privacy
    keep_crisis_lines: bool = True
    # the learned quality classifier (curation.quality); None: the threshold chosen by cross-validation (model card)
    quality_classifier: bool = True
    quality_threshold: float | None = None
    reject_before_embedding: bool = True  # a row the classifier rejects at any domain margin is not embedded

    def shaping_settings(self) -> shaping.ShapingSettings:
        """Shaping keeps a passage of at least min_words (the same bar as the length rule)."""
        return shaping.ShapingSettings(min_words=self.min_words)

    def garbled_thresholds(self) -> filters.GarbledThresholds:
        return filters.GarbledThresholds(
            self.max_foreign_script_runs, self.max_foreign_run_letters, self.max_foreign_letter_share,
            self.max_non_word_share, self.max_broken_punctuation_per_100_words,
        )

    def repetition_thresholds(self) -> filters.RepetitionThresholds:
        return filters.RepetitionThresholds(
            max_duplicate_sentence_share=self.max_duplicate_sentence_share,
            max_consecutive_repeats=self.max_consecutive_repeats,
        )

    def housekeeping_thresholds(self) -> filters.HousekeepingThresholds:
        return filters.HousekeepingThresholds(self.max_housekeeping_word_share, self.max_housekeeping_reads)

    def religious_thresholds(self) -> filters.ReligiousThresholds:
        return filters.ReligiousThresholds(self.max_scripture_per_100_words, self.min_scripture_words)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["domain_reference_sources"] = list(self.domain_reference_sources)
        d["expert_min_quality"] = dict(self.expert_min_quality)
        d["expert_min_domain_margin"] = dict(self.expert_min_domain_margin)
        return d
