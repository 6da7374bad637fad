"""Apply the quality, safety and privacy rules to segments and conversations: kept rows + reject rows + a report.

Per segment (so that every rule sees what a reader, or training, would see):
1. housekeeping is scored on the text as given; below its threshold, the promo / logistics sentences are stripped
   (`strip_housekeeping`), above it the whole text is rejected;
2. garbled, language, repetition, length and harmful judge the text as read (stripped); the response is then shaped
   (curation.shaping; the shaping rule judges what is left), PII is redacted (typed placeholders) and, with
   length_action=truncate, a too-long text is cut at a sentence boundary: the text training sees;
3. off_domain and the quality classifier judge that text's embedding, expert_quality the row's given quality;
   a row is rejected when any rule fires, with every fired rule's reason and all scores. The embedding is the
   chain's one costly step, so only rows the per-text rules kept (and off_domain's reference rows) are embedded;
   a row a per-text rule already rejected is not scored by the two embedding rules (DataTrove's cheap-first order;
   the decisions are the same, `segment_evidence` embeds every row for the classifier's training);
4. crisis content is flagged (kept) and carried on the row.
Conversations: prompt, response and every turn are redacted, and the conversation rules judge the response.

The rules and their order are curation.ruleset.RULES; curation.rules runs them (every rule over every row once).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from pixel_pipeline.core.records import DATASET_SEGMENTS, rejects_frame
from pixel_pipeline.curation import filters, pii, quality, safety, shaping
from pixel_pipeline.curation.cache import ScoreCache
from pixel_pipeline.curation.outcome import CurationOutcome, curation_report, kept_total, reject_rows, shaping_summary
from pixel_pipeline.curation.rules import Decisions, ItemRule, RuleScores, judge_all, rules_code_version
from pixel_pipeline.curation.ruleset import (
    CONVERSATION_RULES,
    SEGMENT_RULES,
    Embed,
    HousekeepingRule,
    OffDomainRule,
    QualityClassifierRule,
    RuleContext,
    language_detections,
    rules_for,
)
from pixel_pipeline.curation.settings import CurationSettings

__all__ = [  # the names callers import from here (defs, scripts, tests)
    "CONVERSATION_RULES", "SEGMENT_RULES", "ConversationBatch", "CurationOutcome", "CurationSettings", "Embed",
    "RuleScores", "SegmentEvidence", "curate_conversations", "curate_segments", "language_detections",
    "rules_code_version", "segment_evidence",
]


# ---- segments ---------------------------------------------------------------------------------------------------
@dataclass
class SegmentEvidence:
    """A batch of segments in every form the rules read, and what they measured (also what the quality classifier
    is trained on: scripts/train_quality_classifier.py)."""

    df: pd.DataFrame
    original: list[str]  # the text as given (housekeeping judges it)
    as_read: list[str]  # promo sentences stripped: what a reader reads (garbled, language, repetition, length, harmful)
    texts: list[str]  # shaped, redacted (and truncated): what training sees (off_domain embeds it)
    shaped: list[shaping.ShapeResult]
    removed: list[int]  # housekeeping sentences stripped per text
    pii_counts: list[Counter]
    vectors: np.ndarray | None  # one embedding per text (off_domain and the classifier); None without a model
    text_measures: list[dict] | None = None  # quality.text_measures per text as given (None: measured on demand)
    embedded: np.ndarray | None = None  # rows that have a vector (NaN rows in `vectors` otherwise); None: every row
    reject_floor: np.ndarray | None = None  # P(reject) floor of rows the classifier rejected unembedded, else NaN
    crisis: list[list[str]] = field(default_factory=list)  # crisis flags of the text training sees
    rules: dict[str, pd.DataFrame] = field(default_factory=dict)  # rule name -> frame (rules.RULE_COLUMNS)
    stats: dict = field(default_factory=dict)  # how the batch rules judged, the rule cache's counts

    @property
    def experts(self) -> list[tuple]:
        """(style, given quality) per row: what expert_quality judges."""
        return list(zip(self.df["style"], self.df["quality"]))

    def hand_features(self, rows: Sequence[int] | None = None) -> list[dict[str, float]]:
        """quality.hand_features of `rows` (every row when None)."""
        rows = range(len(self.df)) if rows is None else rows
        scores = {r: self.rules[r]["score"].tolist() for r in quality.RULE_SCORES if r in self.rules}
        measured = self.text_measures or [None] * len(self.df)
        return [quality.hand_features(self.original[i], self.shaped[i], {r: s[i] for r, s in scores.items()}, measured[i])
                for i in rows]


def prepare_segments(raw: pd.DataFrame, settings: CurationSettings, scores: RuleScores) -> SegmentEvidence:
    """Every form of each segment the rules read; housekeeping is judged here, since its score decides stripping.
    Not embedded yet (`embed_rows`)."""
    df = raw.reset_index(drop=True).copy()
    original = df["text"].fillna("").astype(str).tolist()
    housekeeping = HousekeepingRule(settings, RuleContext()).judge_many(original, scores)
    as_read, removed = _strip_housekeeping(original, housekeeping, settings, scores)
    shaped = _shape(as_read, settings, scores)
    redacted, pii_counts = _redact([r.text for r in shaped], settings, scores)
    texts = _truncated(redacted, as_read, settings)
    # the classifier's text measures depend on the text alone: cached per text like the rules (keyed by the
    # quality module's code); not measured at all when the classifier is off (hand_features measures on demand)
    measured = (scores.each("text_measures", original, quality.text_measures, code=quality.code_version())
                if settings.quality_classifier else None)
    return SegmentEvidence(df, original, as_read, texts, shaped, removed, pii_counts, None, measured,
                           rules={"housekeeping": housekeeping})


def embed_rows(embed: Embed | None, texts: Sequence[str], rows: np.ndarray | None) -> np.ndarray | None:
    """One vector per text, computed only for `rows` (a bool mask; None: every row); the other rows are NaN."""
    if embed is None or not len(texts):
        return None
    if rows is None:
        return np.asarray(embed(list(texts)), dtype=np.float32)
    index = np.flatnonzero(rows)
    if not len(index):
        return np.full((len(texts), 0), np.nan, dtype=np.float32)
    found = np.asarray(embed([texts[i] for i in index]), dtype=np.float32)
    vectors = np.full((len(texts), found.shape[1]), np.nan, dtype=np.float32)
    vectors[index] = found
    return vectors


def reference_rows(evidence: SegmentEvidence, settings: CurationSettings) -> np.ndarray:
    """off_domain's reference rows: embedded whatever else is decided (their centroid must stay the same)."""
    if not all(r in evidence.rules for r in OffDomainRule.REFERENCE_RULES):  # a reference rule switched off
        return np.zeros(len(evidence.df), dtype=bool)
    return OffDomainRule(settings, RuleContext()).reference(evidence)


def needs_vector(evidence: SegmentEvidence, reference: np.ndarray) -> np.ndarray:
    """Rows no per-text rule rejected, and the reference rows."""
    fired = np.any([f["fired"].to_numpy(bool) for f in evidence.rules.values()], axis=0)
    return ~fired | reference


def classifier_floor(evidence: SegmentEvidence, settings: CurationSettings, reference: np.ndarray) -> np.ndarray:
    """P(reject) floor (quality.QualityClassifier.reject_floor) of the rows about to be embedded that the classifier
    rejects whatever their domain margin; NaN for every other row. Reference rows are embedded anyway (the
    centroid), so they are judged as usual."""
    floor = np.full(len(evidence.df), np.nan)
    if not (settings.quality_classifier and settings.reject_before_embedding) or evidence.embedded is None:
        return floor
    rows = np.flatnonzero(evidence.embedded & ~reference)
    model = quality.load_default()
    p = model.reject_floor(evidence.hand_features(rows)) if len(rows) else None
    if p is not None:
        sure = p >= QualityClassifierRule.threshold_of(settings, model)
        floor[rows[sure]] = p[sure]
    return floor


def _strip_housekeeping(original: list[str], housekeeping: pd.DataFrame, settings: CurationSettings,
                        scores: RuleScores) -> tuple[list[str], list[int]]:
    """Promo / logistics sentences removed where housekeeping scored some but stayed under its threshold."""
    to_strip = [bool(settings.strip_housekeeping and not fired and score > 0)
                for fired, score in zip(housekeeping["fired"], housekeeping["score"])]
    stripped = scores.each("strip_housekeeping", [t for t, s in zip(original, to_strip) if s],
                           lambda t: list(filters.strip_housekeeping(t)))
    texts, removed = list(original), [0] * len(original)
    for i, (text, k) in zip([i for i, s in enumerate(to_strip) if s], stripped):
        texts[i], removed[i] = text, int(k)
    return texts, removed


def _shape(texts: list[str], settings: CurationSettings, scores: RuleScores) -> list[shaping.ShapeResult]:
    shaping_settings = settings.shaping_settings()
    return [shaping.ShapeResult.from_json(d) for d in scores.each(
        "shaping", texts, lambda t: shaping.shape(t, shaping_settings).to_json(), **asdict(shaping_settings))]


def _redact(texts: list[str], settings: CurationSettings, scores: RuleScores) -> tuple[list[str], list[Counter]]:
    def redact(text: str) -> list:
        redacted_text, found = pii.redact(text, settings.keep_crisis_lines)
        return [redacted_text, dict(found)]

    redacted = scores.each("pii", texts, redact, keep_crisis_lines=settings.keep_crisis_lines)
    return [r[0] for r in redacted], [Counter(r[1]) for r in redacted]


def _truncated(texts: list[str], as_read: Sequence[str], settings: CurationSettings) -> list[str]:
    """With length_action=truncate, a text whose version as read is over max_words is cut at a sentence boundary."""
    if settings.length_action != "truncate":
        return texts
    return [filters.truncate_words(t, settings.max_words) if len(a.split()) > settings.max_words else t
            for t, a in zip(texts, as_read)]


def judged_segments(raw: pd.DataFrame, settings: CurationSettings, embed: Embed | None = None,
                    language_cache: ScoreCache | None = None, rule_cache: ScoreCache | None = None,
                    skip: Sequence[str] = (), embed_all: bool = False) -> SegmentEvidence:
    """Segments prepared and judged by every rule of RULES except `skip`: the per-text rules first, then the
    embedding rules over one vector per text, for the rows that still need one (every row with `embed_all`)."""
    scores = RuleScores(rule_cache)
    evidence = prepare_segments(raw, settings, scores)
    rules = [r for r in rules_for(settings, RuleContext(True, language_cache, embed)) if r.name not in skip]
    judge_all([r for r in rules if isinstance(r, ItemRule)], evidence, scores)
    if len(evidence.df) and not embed_all:
        reference = reference_rows(evidence, settings)
        evidence.embedded = needs_vector(evidence, reference)
        if embed is not None:
            evidence.reject_floor = classifier_floor(evidence, settings, reference)
            evidence.embedded &= np.isnan(evidence.reject_floor)
    evidence.vectors = embed_rows(embed, evidence.texts, evidence.embedded)
    evidence.stats["embedded"] = (0 if evidence.vectors is None else
                                  len(evidence.df) if evidence.embedded is None else int(evidence.embedded.sum()))
    evidence.stats["rejected_before_embedding"] = (0 if evidence.reject_floor is None else
                                                   int((~np.isnan(evidence.reject_floor)).sum()))
    judge_all(rules, evidence, scores)
    evidence.crisis = scores.each("crisis_flags", evidence.texts, safety.crisis_flags)
    evidence.stats["rule_cache"] = dict(scores.stats) if rule_cache else None  # every per-text result, crisis flags too
    return evidence


def segment_evidence(
    raw: pd.DataFrame,
    settings: CurationSettings = CurationSettings(),
    embed: Embed | None = None,
    language_cache: ScoreCache | None = None,
    rule_cache: ScoreCache | None = None,
) -> SegmentEvidence:
    """Shape, redact, embed and score every segment with every rule except the classifier (which learns from
    this, so every row has its vector and its off_domain margin)."""
    return judged_segments(raw, settings, embed, language_cache, rule_cache, skip=("quality_classifier",),
                           embed_all=True)


def curate_segments(
    raw: pd.DataFrame,
    settings: CurationSettings = CurationSettings(),
    embed: Embed | None = None,
    language_cache: ScoreCache | None = None,
    stage: str = "curated_segments",
    rule_cache: ScoreCache | None = None,
) -> CurationOutcome:
    """raw_segments -> curated rows (text shaped and redacted, score_<rule>, shaping, pii_counts, crisis_flags) and
    rejects."""
    ev = judged_segments(raw, settings, embed, language_cache, rule_cache)
    n = len(ev.df)
    decisions = Decisions.of(ev.rules, n)
    rejects = reject_rows(ev.df, ev.rules, decisions, ev.crisis, ev.original, stage, datasets=[DATASET_SEGMENTS] * n,
                          id_column="segment_id", file_column="file")
    kept = _segments_table(ev).loc[~decisions.rejected].reset_index(drop=True)
    return CurationOutcome(kept, rejects_frame(rejects), _segments_report(ev, decisions, language_cache))


def _segments_table(ev: SegmentEvidence) -> pd.DataFrame:
    out = ev.df.copy()
    out["text"] = ev.texts
    out["word_count"] = [len(t.split()) for t in ev.texts]
    _add_scores(out, ev.rules)
    out["shaping"] = ["; ".join(s.actions) for s in ev.shaped]
    out["pii_counts"] = [pii.counts_json(c) for c in ev.pii_counts]
    out["crisis_flags"] = ev.crisis
    out["housekeeping_removed"] = ev.removed
    return out


def _add_scores(out: pd.DataFrame, judged: dict[str, pd.DataFrame]) -> None:
    """score_<rule> for every rule, in rule order."""
    for r, f in judged.items():
        out[f"score_{r}"] = pd.to_numeric(f["score"], errors="coerce").astype(float).to_numpy()


def _segments_report(ev: SegmentEvidence, decisions: Decisions, language_cache: ScoreCache | None) -> dict:
    kept = ~decisions.rejected
    return curation_report(
        ev.df, ev.rules, decisions, "segment_id", kept_total(ev.pii_counts, decisions.rejected),
        [c for c, k in zip(ev.crisis, kept) if k],
        {"housekeeping_sentences_removed": int(sum(ev.removed)), "texts_embedded": ev.stats["embedded"],
         "rejected_before_embedding": ev.stats["rejected_before_embedding"],
         "off_domain": ev.stats["off_domain"],
         "quality_classifier": ev.stats["quality_classifier"],
         "shaping_of_kept": shaping_summary([s for s, k in zip(ev.shaped, kept) if k]),
         "language_cache": dict(language_cache.stats) if language_cache else None,
         "rule_cache": ev.stats["rule_cache"]})


# ---- conversations ----------------------------------------------------------------------------------------------
@dataclass
class ConversationBatch:
    """Counseling and CoT conversations, redacted; the rules judge the response."""

    df: pd.DataFrame
    original: list[str]  # the response as given (the reject snippet)
    prompts: list[str]  # redacted
    as_read: list[str]  # the response redacted: what the rules judge
    texts: list[str]  # ... and truncated (length_action=truncate): what training sees
    turns: list[str | None]  # the conversation JSON, every turn redacted
    pii_counts: list[Counter]
    crisis: list[list[str]]
    rules: dict[str, pd.DataFrame] = field(default_factory=dict)
    stats: dict = field(default_factory=dict)


def prepare_conversations(conversations: pd.DataFrame, settings: CurationSettings) -> ConversationBatch:
    """PII redaction of prompt, response and turns; crisis flags of prompt and (truncated) response."""
    df = conversations.reset_index(drop=True).copy()
    keep_lines = settings.keep_crisis_lines
    prompts, prompt_counts = pii.redact_many(df["prompt"].fillna("").astype(str), keep_lines)
    original = df["response"].fillna("").astype(str).tolist()
    responses, response_counts = pii.redact_many(original, keep_lines)
    turns, turn_counts = [], []
    for c in df["conversation"] if "conversation" in df else [None] * len(df):
        red, cnt = pii.redact_conversation_json(c if isinstance(c, str) else None, keep_lines)
        turns.append(red)
        turn_counts.append(cnt)
    texts = _truncated(responses, responses, settings)
    crisis = [sorted(set(safety.crisis_flags(p)) | set(safety.crisis_flags(r))) for p, r in zip(prompts, texts)]
    counts = [_count_once(pc + rc, cc) for pc, rc, cc in zip(prompt_counts, response_counts, turn_counts)]
    return ConversationBatch(df, original, prompts, responses, texts, turns, counts, crisis)


def _count_once(prompt_and_response: Counter, turns: Counter) -> Counter:
    """Prompt and response also appear inside the turns: each PII item counts once (the larger count)."""
    return Counter({k: max(prompt_and_response.get(k, 0), turns.get(k, 0)) for k in set(prompt_and_response) | set(turns)})


def curate_conversations(
    conversations: pd.DataFrame,
    settings: CurationSettings = CurationSettings(),
    language_cache: ScoreCache | None = None,
    stage: str = "curated_conversations",
    rule_cache: ScoreCache | None = None,
) -> CurationOutcome:
    """Counseling + CoT conversations: PII redaction of prompt, response and turns; rules on the response."""
    batch = prepare_conversations(conversations, settings)
    judge_all(rules_for(settings, RuleContext(False, language_cache)), batch, RuleScores(rule_cache))
    df, n = batch.df, len(batch.df)
    decisions = Decisions.of(batch.rules, n)
    rejects = reject_rows(df, batch.rules, decisions, batch.crisis, batch.original, stage,
                          datasets=df["dataset"].tolist(), id_column="record_id",
                          file_column="input_file" if "input_file" in df else None)
    kept = _conversations_table(batch).loc[~decisions.rejected].reset_index(drop=True)
    rejected = decisions.rejected
    by_dataset = (df.assign(rejected=rejected).groupby("dataset")["rejected"].agg(rows_in="size", rejected="sum")
                  .reset_index().to_dict("records") if n else [])
    report = curation_report(df, batch.rules, decisions, "record_id", kept_total(batch.pii_counts, rejected),
                             [c for c, rej in zip(batch.crisis, rejected) if not rej], {"by_dataset": by_dataset})
    return CurationOutcome(kept, rejects_frame(rejects), report)


def _conversations_table(batch: ConversationBatch) -> pd.DataFrame:
    out = batch.df.copy()
    out["prompt"] = batch.prompts
    out["response"] = batch.texts
    if "conversation" in out:
        out["conversation"] = batch.turns
    _add_scores(out, batch.rules)
    out["pii_counts"] = [pii.counts_json(c) for c in batch.pii_counts]
    out["crisis_flags"] = batch.crisis
    return out
