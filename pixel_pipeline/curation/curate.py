"""Apply the quality, safety and privacy rules to segments and conversations: kept rows + reject rows + a report.

Order per text (so that every rule sees what training would see):
1. housekeeping is scored on the text as read; below its threshold, the promo / logistics sentences are stripped
   (`strip_housekeeping`), above it the whole text is rejected;
2. garbled, language, repetition and harmful judge that text as a reader would; a segment's response is then shaped
   (curation.shaping) and PII is redacted (typed placeholders);
3. length, off_domain (segments only) and the per-expert quality floor are scored on the result (what training
   sees); a row is rejected when any rule fires, with every fired rule's reason and all scores;
4. crisis content is flagged (kept) and carried on the row.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pixel_pipeline.core.records import (
    DATASET_SEGMENTS,
    STYLES,
    reason_key,
    reject_row,
    rejects_frame,
)
from pixel_pipeline.core.ids import sha256_hex
from pixel_pipeline.curation import domain, filters, pii, quality, safety, shaping
from pixel_pipeline.curation import text as text_helpers
from pixel_pipeline.curation.cache import ScoreCache
from pixel_pipeline.curation.text import snippet

SEGMENT_RULES = ("shaping", "garbled", "language", "repetition", "off_domain", "housekeeping", "length", "harmful",
                 "expert_quality", "quality_classifier")
CONVERSATION_RULES = ("garbled", "language", "repetition", "length", "harmful")

Embed = Callable[[Sequence[str]], np.ndarray]


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
    max_foreign_script_runs: int = 2
    max_foreign_run_letters: int = 12
    max_foreign_letter_share: float = 0.02
    max_non_word_share: float = 0.35
    max_broken_punctuation_per_100_words: float = 3.0
    # repetition (the Gopher n-gram limits are fixed at the published values; see filters.RepetitionThresholds)
    max_consecutive_repeats: int = 5
    max_duplicate_sentence_share: float = 0.30
    # housekeeping
    max_housekeeping_word_share: float = 0.25
    max_housekeeping_reads: int = 2
    strip_housekeeping: bool = True
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

    def as_dict(self) -> dict:
        d = asdict(self)
        d["domain_reference_sources"] = list(self.domain_reference_sources)
        d["expert_min_quality"] = dict(self.expert_min_quality)
        d["expert_min_domain_margin"] = dict(self.expert_min_domain_margin)
        return d


@dataclass
class CurationOutcome:
    kept: pd.DataFrame
    rejects: pd.DataFrame
    report: dict


def language_detections(texts: Sequence[str], cache: ScoreCache | None) -> list[tuple[float, str]]:
    if cache is None:
        return [filters.detect_language(t) for t in texts]
    return [tuple(v) for v in cache.map(list(texts), lambda t: list(filters.detect_language(t)))]


@functools.lru_cache(maxsize=1)
def rules_code_version() -> str:
    """Hash of the per-text rule modules' source: editing a rule invalidates its cached results."""
    source = "".join(inspect.getsource(m) for m in (filters, safety, pii, text_helpers, shaping))
    return sha256_hex(source)[:12]


class RuleScores:
    """Per-text rule results through the rule cache, so a re-run only scores texts it has not seen.

    Every rule except off_domain (which compares with a corpus centroid) and expert_quality (a column lookup)
    depends on the text and its thresholds alone; the cache key is (rule, thresholds, rule code, text). With no
    cache every call computes.
    """

    def __init__(self, cache: ScoreCache | None):
        self.cache = cache
        self.stats = {"hits": 0, "computed": 0}

    def _scoped(self, name: str, settings: dict) -> ScoreCache:
        return self.cache.scoped(f"{name}|{json.dumps(settings, sort_keys=True, default=str)}|code={rules_code_version()}")

    def _count(self, scoped: ScoreCache) -> None:
        for key in self.stats:
            self.stats[key] += scoped.stats[key]

    def rule(self, name: str, texts: Sequence[str], compute: Callable[[list[str]], pd.DataFrame], **settings) -> pd.DataFrame:
        """`compute(texts)` -> one rule row (filters.RULE_COLUMNS) per text."""
        texts = list(texts)
        if self.cache is None or not texts:
            return compute(texts).reset_index(drop=True)
        scoped = self._scoped(name, settings)
        rows = scoped.map_batch(texts, lambda missing: compute(missing).to_dict("records"))
        self._count(scoped)
        return pd.DataFrame(rows, columns=filters.RULE_COLUMNS)

    def each(self, name: str, texts: Sequence[str], compute: Callable[[str], Any], **settings) -> list[Any]:
        """`compute(text)` per text; values must survive JSON (lists, dicts, numbers, strings)."""
        texts = list(texts)
        if self.cache is None or not texts:
            return [json.loads(json.dumps(compute(t))) for t in texts]  # the same types as a cached read
        scoped = self._scoped(name, settings)
        values = scoped.map_batch(texts, lambda missing: [compute(t) for t in missing])
        self._count(scoped)
        return values


def _strip_shape_and_redact(
    originals: Sequence[str], hk: pd.DataFrame, settings: CurationSettings, scores: RuleScores
) -> tuple[list[str], list[str], list[int], list[Counter], list[shaping.ShapeResult]]:
    """Housekeeping sentences stripped (when scored but under the threshold): the segment as read, which the
    garbled, language, repetition and harmful rules judge as a reader would; then the response shaped
    (curation.shaping) and PII redacted: the text length, off_domain and training see."""
    to_strip = [bool(settings.strip_housekeeping and not fired and score > 0) for fired, score in zip(hk["fired"], hk["score"])]
    stripped = scores.each("strip_housekeeping", [t for t, s in zip(originals, to_strip) if s],
                           lambda t: list(filters.strip_housekeeping(t)))
    texts, removed = list(originals), [0] * len(originals)
    positions = [i for i, s in enumerate(to_strip) if s]
    for i, (text, k) in zip(positions, stripped):
        texts[i], removed[i] = text, int(k)
    shaping_settings = settings.shaping_settings()
    shaped = [shaping.ShapeResult.from_json(d) for d in scores.each(
        "shaping", texts, lambda t: shaping.shape(t, shaping_settings).to_json(), **asdict(shaping_settings))]
    as_read, texts = texts, [r.text for r in shaped]
    def redact(text: str) -> list:
        redacted_text, found = pii.redact(text, settings.keep_crisis_lines)
        return [redacted_text, dict(found)]

    redacted = scores.each("pii", texts, redact, keep_crisis_lines=settings.keep_crisis_lines)
    return as_read, [r[0] for r in redacted], removed, [Counter(r[1]) for r in redacted], shaped


def _expert_quality(df: pd.DataFrame, settings: CurationSettings) -> pd.DataFrame:
    rows = []
    for style, quality in zip(df["style"], df["quality"]):
        floor = float(settings.expert_min_quality.get(style, 0.0)) if isinstance(style, str) else 0.0
        q = None if quality is None or pd.isna(quality) else float(quality)
        fired = q is not None and q < floor
        reason = f"expert_quality: quality {q:.2f} < {floor} for {style} expert" if fired else None
        rows.append({"score": np.nan if q is None else q, "fired": fired, "reason": reason,
                     "measures": {"quality": q, "min_quality": floor, "style": style}})
    return pd.DataFrame(rows, columns=filters.RULE_COLUMNS)


def _apply_expert_domain_margin(frame: pd.DataFrame, styles: Sequence[str], settings: CurationSettings) -> pd.DataFrame:
    """Re-decide off_domain with a per-expert margin where one is configured."""
    if not settings.expert_min_domain_margin:
        return frame
    frame = frame.copy()
    for i, style in enumerate(styles):
        floor = settings.expert_min_domain_margin.get(style)
        if floor is None or pd.isna(frame.at[i, "score"]):
            continue
        fired = bool(frame.at[i, "score"] < floor)
        frame.at[i, "fired"] = fired
        frame.at[i, "reason"] = (f"off_domain: margin {frame.at[i, 'score']:.3f} (min {floor} for {style} expert)"
                                 if fired else None)
    return frame


def _rule_rejects(
    df: pd.DataFrame, rejected: np.ndarray, fired_matrix: np.ndarray, rule_names, rules: dict[str, pd.DataFrame],
    crisis: list, originals, stage: str, datasets: list[str], id_column: str, file_column: str | None,
) -> tuple[list[list[str]], list[dict]]:
    """One reject row per rejected row, naming every rule that fired with its reason, all scores and crisis flags."""
    reasons_all, reject_rows = [], []
    for i in np.flatnonzero(rejected):
        fired = [r for j, r in enumerate(rule_names) if fired_matrix[i, j]]
        reasons = [rules[r].at[i, "reason"] for r in fired]
        reasons_all.append(reasons)
        details = _reject_details(rules, i, fired, originals[i])
        details["rules"] = fired
        details["crisis_flags"] = crisis[i]
        file = df.at[i, file_column] if file_column else None
        reject_rows.append(reject_row(datasets[i], df.at[i, id_column], stage, reasons, details, df.at[i, "source"], file))
    return reasons_all, reject_rows


def _reject_details(rules: dict[str, pd.DataFrame], i: int, fired: list[str], original: str) -> dict:
    return {
        "scores": {r: (None if pd.isna(f.at[i, "score"]) else float(f.at[i, "score"])) for r, f in rules.items()},
        "measures": {r: rules[r].at[i, "measures"] for r in fired},
        "snippet": snippet(original),
    }


def _report(df: pd.DataFrame, rules: dict[str, pd.DataFrame], rejected: np.ndarray, reasons: list[list[str]],
            id_col: str, pii_counts: Counter, crisis: list[list[str]], extra: dict) -> dict:
    per_rule = {r: int(f["fired"].sum()) for r, f in rules.items()}
    only_rule = Counter(reason_key(rs[0]) for rs in reasons if len(rs) == 1)
    examples = {}
    for r, f in rules.items():
        idx = np.flatnonzero(f["fired"].to_numpy(dtype=bool))[:3]
        examples[r] = [{"id": df[id_col].iat[i], "source": df["source"].iat[i], "reason": f.at[i, "reason"]} for i in idx]
    by_source = (
        pd.DataFrame({"source": df["source"].fillna("unknown").to_numpy(), "rejected": rejected})
        .groupby("source")["rejected"].agg(rows_in="size", rejected="sum").reset_index()
    )
    by_source["kept"] = by_source["rows_in"] - by_source["rejected"]
    by_source["reject_rate"] = (by_source["rejected"] / by_source["rows_in"]).round(3)
    per_rule_source = {}
    for r, f in rules.items():
        fired = f["fired"].to_numpy(dtype=bool)
        if fired.any():
            per_rule_source[r] = df.loc[fired, "source"].fillna("unknown").value_counts().to_dict()
    scores = {}
    for r, f in rules.items():
        s = pd.to_numeric(f["score"], errors="coerce").dropna()
        if len(s):
            scores[r] = {q: round(float(s.quantile(q)), 4) for q in (0.05, 0.5, 0.95)}
    crisis_counts = Counter(c for flags in crisis for c in flags)
    return {
        "rows_in": int(len(df)),
        "kept": int((~rejected).sum()),
        "rejected": int(rejected.sum()),
        "rejected_by_rule": per_rule,
        "rejected_by_this_rule_only": dict(only_rule),
        "rejected_by_rule_and_source": per_rule_source,
        "by_source": by_source.sort_values("rows_in", ascending=False).to_dict("records"),
        "examples": examples,
        "score_quantiles": scores,
        "pii_counts": dict(pii_counts),
        "crisis_counts": dict(crisis_counts),
        "crisis_rows": int(sum(1 for flags in crisis if flags)),
        **extra,
    }


@dataclass
class SegmentEvidence:
    """Everything the rules measured on a batch of segments, before the decision (also what the quality classifier
    is trained on: scripts/train_quality_classifier.py)."""

    df: pd.DataFrame
    original: list[str]
    texts: list[str]  # shaped and redacted: what training sees
    shaped: list[shaping.ShapeResult]
    rules: dict[str, pd.DataFrame]
    vectors: np.ndarray | None
    removed: list[int]
    pii_counts: list[Counter]
    stats: dict
    windows: list[dict] | None = None  # quality.window_measures per text as read (None: computed on demand)

    def hand_features(self) -> list[dict[str, float]]:
        rule_scores = [{r: self.rules[r].at[i, "score"] for r in quality.RULE_SCORES if r in self.rules}
                       for i in range(len(self.df))]
        windows = self.windows or [None] * len(self.df)
        return [quality.hand_features(o, sh, sc, w) for o, sh, sc, w in zip(self.original, self.shaped, rule_scores, windows)]


def segment_evidence(
    raw: pd.DataFrame,
    settings: CurationSettings = CurationSettings(),
    embed: Embed | None = None,
    language_cache: ScoreCache | None = None,
    rule_cache: ScoreCache | None = None,
) -> SegmentEvidence:
    """Shape, redact and score every segment with every rule except the classifier (one embedding per text)."""
    df = raw.reset_index(drop=True).copy()
    original = df["text"].fillna("").astype(str).tolist()
    n = len(df)
    scores = RuleScores(rule_cache)

    hk_thresholds = filters.HousekeepingThresholds(settings.max_housekeeping_word_share, settings.max_housekeeping_reads)
    hk = scores.rule("housekeeping", original, lambda t: filters.housekeeping(t, hk_thresholds), **asdict(hk_thresholds))
    as_read, redacted, removed, counts, shaped = _strip_shape_and_redact(original, hk, settings, scores)

    # length judges the segment as read; the shaping rule judges what shaping left of it
    length = filters.length(as_read, settings.min_words, settings.max_words, settings.length_action)
    if settings.length_action == "truncate":
        redacted = [filters.truncate_words(t, settings.max_words) if long_ else t
                    for t, long_ in zip(redacted, [m["too_long"] for m in length["measures"]])]

    shaping_settings = settings.shaping_settings()
    rules: dict[str, pd.DataFrame] = {
        "shaping": _shaping_rule(shaped, shaping_settings),
        "garbled": _garbled(as_read, settings, scores),
        "language": filters.language(as_read, settings.min_english_probability,
                                     language_detections(as_read, language_cache)),
        "repetition": _repetition(as_read, settings, scores),
    }
    off_domain_note, vectors = "scored", None
    if embed is not None and n:
        vectors = np.asarray(embed(redacted), dtype=np.float32)
        dom_vecs = np.asarray(embed(list(domain.DOMAIN_DESCRIPTIONS)), dtype=np.float32)
        off_vecs = np.asarray(embed(list(domain.OFF_TOPIC_DESCRIPTIONS)), dtype=np.float32)
        # known-good reference: the configured voice sources' segments that pass the cheap rules
        cheap_ok = ~(rules["garbled"]["fired"].to_numpy(bool) | rules["language"]["fired"].to_numpy(bool)
                     | rules["repetition"]["fired"].to_numpy(bool) | hk["fired"].to_numpy(bool)
                     | length["fired"].to_numpy(bool) | rules["shaping"]["fired"].to_numpy(bool))
        reference = cheap_ok & df["source"].isin(list(settings.domain_reference_sources)).to_numpy()
        centroid = domain.centroid_similarity(vectors, reference)
        off_domain = domain.domain_scores(vectors, dom_vecs, off_vecs, centroid, settings.min_domain_margin)
        off_domain = _apply_expert_domain_margin(off_domain, df["style"].tolist(), settings)
        if centroid is None:
            off_domain_note = "scored against the domain descriptions only (fewer than 5 reference segments)"
    else:
        off_domain = _not_scored(n)
        off_domain_note = "skipped: no embedding model"
    rules["off_domain"] = off_domain
    rules["housekeeping"] = hk
    rules["length"] = length
    # harmful judges the segment as read: advice to stop medication or contempt anywhere in it disqualifies the
    # speaker's segment, even where shaping happened to cut that sentence from the response
    rules["harmful"] = scores.rule("harmful", as_read, safety.harmful)
    rules["expert_quality"] = _expert_quality(df, settings)
    rules = {r: f.reset_index(drop=True) for r, f in rules.items()}
    # the classifier's worst-window measures depend on the text alone: cached per text like the rules (keyed by the
    # quality module's code), so a re-run after one new transcript measures only its segments; not measured at all
    # when the classifier is off (SegmentEvidence.hand_features computes them on demand for the training script)
    windows = (scores.each("window_measures", original, quality.window_measures, code=quality.code_version())
               if settings.quality_classifier else None)
    stats = {"off_domain": off_domain_note, "rule_cache": dict(scores.stats) if rule_cache else None,
             "crisis": scores.each("crisis_flags", redacted, safety.crisis_flags)}
    return SegmentEvidence(df, original, redacted, shaped, rules, vectors, removed, counts, stats, windows)


def _not_scored(n: int) -> pd.DataFrame:
    return pd.DataFrame({"score": [np.nan] * n, "fired": [False] * n, "reason": [None] * n,
                         "measures": [{} for _ in range(n)]})


def _shaping_rule(shaped: Sequence[shaping.ShapeResult], settings: shaping.ShapingSettings) -> pd.DataFrame:
    """Fires when nothing that stands as an answer is left after shaping; the score is the share of words kept."""
    rows = []
    for r in shaped:
        reason = shaping.stands_alone(r, settings)
        rows.append({"score": round(r.kept_words / max(1, r.original_words), 4), "fired": reason is not None,
                     "reason": reason, "measures": {k: v for k, v in r.to_json().items() if k != "text"}})
    return pd.DataFrame(rows, columns=filters.RULE_COLUMNS)


def _quality_rule(evidence: SegmentEvidence, settings: CurationSettings) -> tuple[pd.DataFrame, str]:
    """P(a reader rejects it) from the learned classifier; fires at or above the threshold."""
    n = len(evidence.df)
    if not settings.quality_classifier:
        return _not_scored(n), "off (quality_classifier=False)"
    if evidence.vectors is None:
        return _not_scored(n), "skipped: no embedding model"
    model = quality.load_default()
    threshold = model.threshold if settings.quality_threshold is None else float(settings.quality_threshold)
    p = model.reject_probability(evidence.hand_features(), evidence.vectors)
    rows = [{"score": round(float(x), 4), "fired": bool(x >= threshold),
             "reason": f"quality_classifier: P(reader rejects)={x:.2f} (threshold {threshold:.2f})" if x >= threshold else None,
             "measures": {"reject_probability": round(float(x), 4), "threshold": threshold}} for x in p]
    return pd.DataFrame(rows, columns=filters.RULE_COLUMNS), f"threshold {threshold:.2f} ({model.card.get('trained_on', '')})"


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
    ev = segment_evidence(raw, settings, embed, language_cache, rule_cache)
    df, n, rules = ev.df, len(ev.df), dict(ev.rules)
    rules["quality_classifier"], classifier_note = _quality_rule(ev, settings)
    rules = {r: rules[r] for r in SEGMENT_RULES}

    fired_matrix = np.column_stack([rules[r]["fired"].to_numpy(dtype=bool) for r in SEGMENT_RULES]) if n else np.zeros((0, len(SEGMENT_RULES)), bool)
    rejected = fired_matrix.any(axis=1) if n else np.zeros(0, bool)
    crisis = ev.stats["crisis"]

    reasons_all, reject_rows = _rule_rejects(
        df, rejected, fired_matrix, SEGMENT_RULES, rules, crisis, ev.original, stage,
        datasets=[DATASET_SEGMENTS] * n, id_column="segment_id", file_column="file",
    )

    out = df.copy()
    out["text"] = ev.texts
    out["word_count"] = [len(t.split()) for t in ev.texts]
    for r in SEGMENT_RULES:
        out[f"score_{r}"] = pd.to_numeric(rules[r]["score"], errors="coerce").astype(float).to_numpy()
    out["shaping"] = ["; ".join(s.actions) for s in ev.shaped]
    out["pii_counts"] = [pii.counts_json(c) for c in ev.pii_counts]
    out["crisis_flags"] = crisis
    out["housekeeping_removed"] = ev.removed
    kept = out.loc[~rejected].reset_index(drop=True)

    pii_total: Counter = Counter()
    for c, rej in zip(ev.pii_counts, rejected):
        if not rej:
            pii_total.update(c)
    shaped_kept = [s for s, rej in zip(ev.shaped, rejected) if not rej]
    report = _report(df, rules, rejected, reasons_all, "segment_id", pii_total,
                     [c for c, rej in zip(crisis, rejected) if not rej] if n else [],
                     {"housekeeping_sentences_removed": int(sum(ev.removed)), "off_domain": ev.stats["off_domain"],
                      "quality_classifier": classifier_note, "shaping_of_kept": _shaping_summary(shaped_kept),
                      "language_cache": dict(language_cache.stats) if language_cache else None,
                      "rule_cache": ev.stats["rule_cache"]})
    return CurationOutcome(kept, rejects_frame(reject_rows), report)


def _shaping_summary(shaped: Sequence[shaping.ShapeResult]) -> dict:
    """How many kept responses each shaping step touched (the dataset card and the asset metadata show it)."""
    n = len(shaped)
    counts = {k: sum(1 for s in shaped if getattr(s, k)) for k in quality.SHAPING_MEASURES}
    counts["first_sentence_dropped"] = sum(1 for s in shaped if any("mid-thought" in a for a in s.actions))
    counts["passage_cut"] = sum(1 for s in shaped if any("longest clean passage" in a for a in s.actions))
    counts["changed"] = sum(1 for s in shaped if s.changed)
    words_in = sum(s.original_words for s in shaped)
    return {"responses": n, **counts,
            "words_kept_share": round(sum(s.kept_words for s in shaped) / words_in, 4) if words_in else None}


def _garbled(texts: list[str], settings: CurationSettings, scores: RuleScores) -> pd.DataFrame:
    thresholds = settings.garbled_thresholds()
    return scores.rule("garbled", texts, lambda t: filters.garbled(t, thresholds), **asdict(thresholds))


def _repetition(texts: list[str], settings: CurationSettings, scores: RuleScores) -> pd.DataFrame:
    thresholds = settings.repetition_thresholds()
    return scores.rule("repetition", texts, lambda t: filters.repetition(t, thresholds), **asdict(thresholds))


def curate_conversations(
    conversations: pd.DataFrame,
    settings: CurationSettings = CurationSettings(),
    language_cache: ScoreCache | None = None,
    stage: str = "curated_conversations",
    rule_cache: ScoreCache | None = None,
) -> CurationOutcome:
    """Counseling + CoT conversations: PII redaction of prompt, response and turns; rules on the response."""
    df = conversations.reset_index(drop=True).copy()
    n = len(df)
    prompts_red, prompt_counts = pii.redact_many(df["prompt"].fillna("").astype(str), settings.keep_crisis_lines)
    resp_original = df["response"].fillna("").astype(str).tolist()
    resp_red, resp_counts = pii.redact_many(resp_original, settings.keep_crisis_lines)
    conv_red, conv_counts = [], []
    for c in df["conversation"] if "conversation" in df else [None] * n:
        red, cnt = pii.redact_conversation_json(c if isinstance(c, str) else None, settings.keep_crisis_lines)
        conv_red.append(red)
        conv_counts.append(cnt)

    scores = RuleScores(rule_cache)
    rules = {
        "garbled": _garbled(resp_red, settings, scores),
        "language": filters.language(resp_red, settings.min_english_probability,
                                     language_detections(resp_red, language_cache)),
        "repetition": _repetition(resp_red, settings, scores),
        "length": filters.length(resp_red, settings.conversation_min_words, settings.max_words, settings.length_action),
        "harmful": scores.rule("harmful", resp_red, safety.harmful),
    }
    if settings.length_action == "truncate":
        resp_red = [filters.truncate_words(t, settings.max_words) if m["too_long"] else t
                    for t, m in zip(resp_red, rules["length"]["measures"])]
    rules = {r: rules[r].reset_index(drop=True) for r in CONVERSATION_RULES}
    fired_matrix = np.column_stack([rules[r]["fired"].to_numpy(dtype=bool) for r in CONVERSATION_RULES]) if n else np.zeros((0, len(CONVERSATION_RULES)), bool)
    rejected = fired_matrix.any(axis=1) if n else np.zeros(0, bool)
    crisis = [sorted(set(safety.crisis_flags(p)) | set(safety.crisis_flags(r))) for p, r in zip(prompts_red, resp_red)]
    # prompt and response also appear inside the conversation turns: count each PII item once (the larger count)
    counts = []
    for pc, rc, cc in zip(prompt_counts, resp_counts, conv_counts):
        merged = pc + rc
        counts.append(Counter({k: max(merged.get(k, 0), cc.get(k, 0)) for k in set(merged) | set(cc)}))

    reasons_all, reject_rows = _rule_rejects(
        df, rejected, fired_matrix, CONVERSATION_RULES, rules, crisis, resp_original, stage,
        datasets=df["dataset"].tolist(), id_column="record_id", file_column="input_file" if "input_file" in df else None,
    )

    out = df.copy()
    out["prompt"] = prompts_red
    out["response"] = resp_red
    if "conversation" in out:
        out["conversation"] = conv_red
    for r in CONVERSATION_RULES:
        out[f"score_{r}"] = pd.to_numeric(rules[r]["score"], errors="coerce").astype(float).to_numpy()
    out["pii_counts"] = [pii.counts_json(c) for c in counts]
    out["crisis_flags"] = crisis
    kept = out.loc[~rejected].reset_index(drop=True)
    pii_total: Counter = Counter()
    for c, rej in zip(counts, rejected):
        if not rej:
            pii_total.update(c)
    report = _report(df, rules, rejected, reasons_all, "record_id", pii_total,
                     [c for c, rej in zip(crisis, rejected) if not rej],
                     {"by_dataset": df.assign(rejected=rejected).groupby("dataset")["rejected"]
                      .agg(rows_in="size", rejected="sum").reset_index().to_dict("records") if n else []})
    return CurationOutcome(kept, rejects_frame(reject_rows), report)
