"""The curation rules, and RULES: the one order they are listed in (a reject's reasons, the score columns, the report).

Each rule is built from the CurationSettings and the run's tools (`RuleContext`) and judges one item, except
off_domain and the quality classifier, which judge the batch at once (one embedding matrix, one model call). What
each rule reads (the text as read, the text after shaping, the row's expert) is said in its docstring; why, in
docs/curation.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from pixel_pipeline.curation import domain, filters, quality, safety, shaping
from pixel_pipeline.curation.cache import ScoreCache
from pixel_pipeline.curation.rules import ItemRule, Judgement, Rule, RuleScores, judgements_frame, not_scored
from pixel_pipeline.curation.settings import CurationSettings

Embed = Callable[[Sequence[str]], np.ndarray]


@dataclass(frozen=True)
class RuleContext:
    """What a run lends the rules besides the thresholds."""

    segments: bool = True  # False: conversation responses (their own min_words; the segment-only rules are left out)
    language_cache: ScoreCache | None = None
    embed: Embed | None = None


def language_detections(texts: Sequence[str], cache: ScoreCache | None) -> list[tuple[float, str]]:
    if cache is None:
        return [filters.detect_language(t) for t in texts]
    return [tuple(v) for v in cache.map(list(texts), lambda t: list(filters.detect_language(t)))]


class ShapingRule(ItemRule):
    """What shaping left of the response: fires when nothing that stands as an answer is left; the score is the
    share of words kept."""

    name, reads, conversations = "shaping", "shaped", False

    def __init__(self, settings: CurationSettings, context: RuleContext):
        self.settings = settings.shaping_settings()

    def judge(self, shaped: shaping.ShapeResult) -> Judgement:
        reason = shaping.stands_alone(shaped, self.settings)
        return Judgement(keep=reason is None, reason=reason,
                         measures={k: v for k, v in shaped.to_json().items() if k != "text"},
                         score=round(shaped.kept_words / max(1, shaped.original_words), 4))


class GarbledRule(ItemRule):
    """Speech-recognition damage in the text as read (filters.judge_garbled)."""

    name = "garbled"

    def __init__(self, settings: CurationSettings, context: RuleContext):
        self.thresholds = settings.garbled_thresholds()

    def cache_settings(self) -> dict:
        return asdict(self.thresholds)

    def judge(self, text: str) -> Judgement:
        return filters.judge_garbled(text, self.thresholds)


class LanguageRule(ItemRule):
    """P(English) of the text as read; the detections have their own cache, since they do not depend on the
    threshold."""

    name = "language"

    def __init__(self, settings: CurationSettings, context: RuleContext):
        self.min_english_probability = settings.min_english_probability
        self.cache = context.language_cache

    def judge(self, text: str) -> Judgement:
        return filters.judge_language(filters.detect_language(text), self.min_english_probability)

    def judge_texts(self, texts: Sequence[str]) -> pd.DataFrame:
        return filters.language(texts, self.min_english_probability, language_detections(texts, self.cache))


class RepetitionRule(ItemRule):
    """Gopher's repetition measures and phrase loops in the text as read (filters.judge_repetition)."""

    name = "repetition"

    def __init__(self, settings: CurationSettings, context: RuleContext):
        self.thresholds = settings.repetition_thresholds()

    def cache_settings(self) -> dict:
        return asdict(self.thresholds)

    def judge(self, text: str) -> Judgement:
        return filters.judge_repetition(text, self.thresholds)


def embedded_rows(batch: Any) -> np.ndarray:
    """Indices of the rows that have a vector (all, unless the cheap rules rejected some first)."""
    embedded = getattr(batch, "embedded", None)
    return np.arange(len(batch.df)) if embedded is None else np.flatnonzero(embedded)


def scattered(frame: pd.DataFrame, rows: np.ndarray, n: int) -> pd.DataFrame:
    """A rule frame over `rows` placed in a frame of n rows; the other rows not scored (kept, score NaN)."""
    if len(rows) == n:
        return frame.reset_index(drop=True)
    out = not_scored(n)
    for column in out.columns:
        values = out[column].tolist()
        for i, v in zip(rows, frame[column].tolist()):
            values[i] = v
        out[column] = values
    return out


class OffDomainRule(Rule):
    """The domain margin of the text training sees (curation.domain), against the domain descriptions and the
    centroid of known-good segments: the voice sources' segments that pass REFERENCE_RULES."""

    name, conversations = "off_domain", False
    REFERENCE_RULES = ("shaping", "garbled", "language", "repetition", "housekeeping", "length")

    def __init__(self, settings: CurationSettings, context: RuleContext):
        self.settings, self.embed = settings, context.embed

    def judge_batch(self, batch: Any, scores: RuleScores) -> pd.DataFrame:
        if batch.vectors is None:
            batch.stats[self.name] = "skipped: no embedding model"
            return not_scored(len(batch.df))
        rows = embedded_rows(batch)
        vectors = batch.vectors[rows]
        dom_vecs = np.asarray(self.embed(list(domain.DOMAIN_DESCRIPTIONS)), dtype=np.float32)
        off_vecs = np.asarray(self.embed(list(domain.OFF_TOPIC_DESCRIPTIONS)), dtype=np.float32)
        centroid = domain.centroid_similarity(vectors, self.reference(batch)[rows])
        frame = domain.domain_scores(vectors, dom_vecs, off_vecs, centroid, self.settings.min_domain_margin)
        batch.stats[self.name] = ("scored" if centroid is not None else
                                  "scored against the domain descriptions only (fewer than 5 reference segments)")
        return scattered(self.expert_margins(frame, batch.df["style"].iloc[rows].tolist()), rows, len(batch.df))

    def reference(self, batch: Any) -> np.ndarray:
        passes = ~np.any([batch.rules[r]["fired"].to_numpy(bool) for r in self.REFERENCE_RULES], axis=0)
        return passes & batch.df["source"].isin(list(self.settings.domain_reference_sources)).to_numpy()

    def expert_margins(self, frame: pd.DataFrame, styles: Sequence[str]) -> pd.DataFrame:
        """Re-decide with a per-expert margin where one is configured."""
        floors = self.settings.expert_min_domain_margin
        if not floors:
            return frame
        frame = frame.copy()
        for i, style in enumerate(styles):
            floor = floors.get(style)
            if floor is None or pd.isna(frame.at[i, "score"]):
                continue
            fired = bool(frame.at[i, "score"] < floor)
            frame.at[i, "fired"] = fired
            frame.at[i, "reason"] = (f"off_domain: margin {frame.at[i, 'score']:.3f} (min {floor} for {style} expert)"
                                     if fired else None)
        return frame


class HousekeepingRule(ItemRule):
    """Promotion, sponsor reads and live-stream logistics in the segment as given (below the threshold they are
    stripped instead: curate judges this rule first)."""

    name, reads, conversations = "housekeeping", "original", False

    def __init__(self, settings: CurationSettings, context: RuleContext):
        self.thresholds = settings.housekeeping_thresholds()

    def cache_settings(self) -> dict:
        return asdict(self.thresholds)

    def judge(self, text: str) -> Judgement:
        return filters.judge_housekeeping(text, self.thresholds)


class ReligiousRule(ItemRule):
    """A sermon, prayer or scripture story as the main content of a segment as read (filters.judge_religious).
    Segments only: a counseling client may speak of their faith."""

    name, conversations = "religious", False

    def __init__(self, settings: CurationSettings, context: RuleContext):
        self.thresholds = settings.religious_thresholds()

    def cache_settings(self) -> dict:
        return asdict(self.thresholds)

    def judge(self, text: str) -> Judgement:
        return filters.judge_religious(text, self.thresholds)


class LengthRule(ItemRule):
    """Words in the text as read: a segment under min_words (a response under conversation_min_words), or over
    max_words with length_action=reject."""

    name = "length"

    def __init__(self, settings: CurationSettings, context: RuleContext):
        self.min_words = settings.min_words if context.segments else settings.conversation_min_words
        self.max_words, self.length_action = settings.max_words, settings.length_action
        filters.check_length_action(self.length_action)

    def judge(self, text: str) -> Judgement:
        return filters.judge_length(text, self.min_words, self.max_words, self.length_action)


class HarmfulRule(ItemRule):
    """Harmful advice anywhere in the text as read (curation.safety): it disqualifies the speaker's segment even
    where shaping happened to cut that sentence from the response."""

    name = "harmful"

    def __init__(self, settings: CurationSettings, context: RuleContext):
        pass

    def cache_settings(self) -> dict:
        return {}

    def judge(self, text: str) -> Judgement:
        return Judgement.from_row(safety.harmful([text]).iloc[0])

    def judge_texts(self, texts: Sequence[str]) -> pd.DataFrame:
        return safety.harmful(texts)


class ExpertQualityRule(ItemRule):
    """The row's given `quality` against its expert's floor (expert_min_quality; no floor for a missing style)."""

    name, reads, conversations = "expert_quality", "experts", False

    def __init__(self, settings: CurationSettings, context: RuleContext):
        self.floors = settings.expert_min_quality

    def judge(self, style_and_quality: tuple[Any, Any]) -> Judgement:
        style, given = style_and_quality
        floor = float(self.floors.get(style, 0.0)) if isinstance(style, str) else 0.0
        q = None if given is None or pd.isna(given) else float(given)
        fired = q is not None and q < floor
        return Judgement(keep=not fired,
                         reason=f"expert_quality: quality {q:.2f} < {floor} for {style} expert" if fired else None,
                         measures={"quality": q, "min_quality": floor, "style": style},
                         score=np.nan if q is None else q)


class QualityClassifierRule(Rule):
    """P(a reader rejects it) from the learned classifier (curation.quality) over the other rules' scores, the
    worst-window and shaping measures and the embedding; fires at or above the threshold."""

    name, conversations = "quality_classifier", False

    def __init__(self, settings: CurationSettings, context: RuleContext):
        self.enabled, self.settings = settings.quality_classifier, settings

    @staticmethod
    def threshold_of(settings: CurationSettings, model: quality.QualityClassifier) -> float:
        return model.threshold if settings.quality_threshold is None else float(settings.quality_threshold)

    def judge_batch(self, batch: Any, scores: RuleScores) -> pd.DataFrame:
        if not self.enabled or batch.vectors is None:
            batch.stats[self.name] = ("off (quality_classifier=False)" if not self.enabled else
                                      "skipped: no embedding model")
            return not_scored(len(batch.df))
        model = quality.load_default()
        threshold = self.threshold_of(self.settings, model)
        rows = embedded_rows(batch)
        p = model.reject_probability(batch.hand_features(rows), batch.vectors[rows])
        judged = dict(zip(rows.tolist(), (self.judge(x, threshold) for x in p)))
        floor = getattr(batch, "reject_floor", None)  # rows rejected before embedding (curate.classifier_floor)
        for i in [] if floor is None else np.flatnonzero(~np.isnan(floor)).tolist():
            judged[i] = self.judge(floor[i], threshold, model.card.get("domain_margin_ceiling"))
        batch.stats[self.name] = f"threshold {threshold:.2f} ({model.card.get('trained_on', '')})"
        order = sorted(judged)
        return scattered(judgements_frame(judged[i] for i in order), np.asarray(order, dtype=int), len(batch.df))

    @staticmethod
    def judge(p: float, threshold: float, margin_ceiling: float | None = None) -> Judgement:
        """`margin_ceiling`: p is the floor at any domain margin up to it (the row was not embedded)."""
        measures = {"reject_probability": round(float(p), 4), "threshold": threshold}
        if not p >= threshold:  # (a NaN probability keeps the row, as a comparison that fails)
            return Judgement(keep=True, measures=measures, score=round(float(p), 4))
        if margin_ceiling is None:
            reason = f"quality_classifier: P(reader rejects)={p:.2f} (threshold {threshold:.2f})"
        else:
            measures["domain_margin_ceiling"] = margin_ceiling
            reason = (f"quality_classifier: P(reader rejects)>={p:.2f} at any domain margin up to {margin_ceiling} "
                      f"(threshold {threshold:.2f}; not embedded)")
        return Judgement(keep=False, reason=reason, measures=measures, score=round(float(p), 4))


RULES: tuple[type[Rule], ...] = (
    ShapingRule, GarbledRule, LanguageRule, RepetitionRule, OffDomainRule, HousekeepingRule, ReligiousRule,
    LengthRule, HarmfulRule, ExpertQualityRule, QualityClassifierRule,
)
SEGMENT_RULES = tuple(r.name for r in RULES)
CONVERSATION_RULES = tuple(r.name for r in RULES if r.conversations)


def rules_for(settings: CurationSettings, context: RuleContext = RuleContext()) -> list[Rule]:
    """The rules in RULES order, built from the settings; for conversations only those that judge them."""
    return [rule(settings, context) for rule in RULES if context.segments or rule.conversations]
