"""Quality rules: each is small, named, explainable, with configurable thresholds, and keeps its score.

Every rule judges one text: `judge_<rule>(text, thresholds)` returns a `rules.Judgement` (keep, or reject with one
readable reason line; the score, kept as `score_<rule>` on the curated tables; the measures behind the decision, kept
in the rejects' `details`). `<rule>(texts, thresholds)` runs it over a list of texts (a rule frame, rules.RULE_COLUMNS);
curation runs them through curation.ruleset.

Score conventions (docs/curation.md has the table):
- garbled, repetition, housekeeping: *severity* = max over the rule's measures of measure / threshold; >= 1 fires.
- language: probability that the text is English (py3langid, offline); fires below `min_english_probability`.
- off_domain: domain margin = similarity to the domain minus similarity to the nearest off-topic anchor (see domain.py).
- length: word count.
All rules are linear in text length and run per text without model calls (except language: ~1 ms per text, cached).
"""

from __future__ import annotations

import collections
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import regex

# RULE_COLUMNS is re-exported: domain.py and safety.py build their rule frames with it
from pixel_pipeline.curation.rules import RULE_COLUMNS, Judgement, judgements_frame  # noqa: F401
from pixel_pipeline.curation.text import english_vocabulary, ngram_hashes, sentences, word_hashes, words


def _severity(measures: dict[str, float], limits: dict[str, float]) -> tuple[float, str | None]:
    """max measure/limit over the rule's measures, and the measure that sets it."""
    best, name = 0.0, None
    for key, limit in limits.items():
        if limit is None or limit <= 0:
            continue
        ratio = float(measures.get(key, 0.0)) / float(limit)
        if ratio > best:
            best, name = ratio, key
    return round(best, 4), name


# ---- garbled: speech-recognition damage --------------------------------------------------------------------
FOREIGN_SCRIPT_RE = regex.compile(
    r"[\p{Cyrillic}\p{Han}\p{Greek}\p{Arabic}\p{Hebrew}\p{Hangul}\p{Hiragana}\p{Katakana}\p{Thai}\p{Devanagari}]+"
    r"(?:[\s,.'’]+[\p{Cyrillic}\p{Han}\p{Greek}\p{Arabic}\p{Hebrew}\p{Hangul}\p{Hiragana}\p{Katakana}\p{Thai}\p{Devanagari}]+)*"
)
LETTER_RE = regex.compile(r"\p{L}")
# " , it's", ",,", ". ,", "? ." — punctuation that a speaker cannot produce; ASR and caption merges do.
BROKEN_PUNCTUATION_RE = re.compile(r"\s[,;:](?=\s|\w)|[,;:]{2,}|[.,;:!?]\s+[,;:]|\s\.(?=\w)|(?<=\w),(?=[a-zA-Z])")


@dataclass(frozen=True)
class GarbledThresholds:
    max_foreign_script_runs: int = 2  # runs of Cyrillic / CJK / Greek / ... inside the text
    max_foreign_run_letters: int = 12  # letters in the longest such run (a quoted "ψυχή" is 4)
    max_foreign_letter_share: float = 0.02
    max_non_word_share: float = 0.35  # alphabetic words outside a 21k English vocabulary
    max_broken_punctuation_per_100_words: float = 3.0


def judge_garbled(text: str, t: GarbledThresholds = GarbledThresholds()) -> Judgement:
    """Other-script runs, non-words and broken punctuation; score = worst measure / its limit (>= 1 rejects)."""
    vocab = english_vocabulary()
    runs = FOREIGN_SCRIPT_RE.findall(text)
    run_letters = [len(LETTER_RE.findall(r)) for r in runs]
    letters = max(1, len(LETTER_RE.findall(text)))
    toks = words(text)
    latin = [w for w in toks if w.isascii()]
    non_word = (sum(1 for w in latin if w not in vocab) / len(latin)) if len(latin) >= 20 else 0.0
    n_words = max(1, len(text.split()))
    broken = len(BROKEN_PUNCTUATION_RE.findall(text)) * 100.0 / n_words
    measures = {
        "foreign_script_runs": len(runs),
        "foreign_run_letters": max(run_letters, default=0),
        "foreign_letter_share": round(sum(run_letters) / letters, 4),
        "non_word_share": round(non_word, 4),
        "broken_punctuation_per_100_words": round(broken, 3),
    }
    limits = {
        "foreign_script_runs": t.max_foreign_script_runs,
        "foreign_run_letters": t.max_foreign_run_letters,
        "foreign_letter_share": t.max_foreign_letter_share,
        "non_word_share": t.max_non_word_share,
        "broken_punctuation_per_100_words": t.max_broken_punctuation_per_100_words,
    }
    score, worst = _severity(measures, limits)
    if score < 1.0:
        return Judgement(keep=True, measures=measures, score=score)
    example = f" e.g. {runs[0][:30]!r}" if runs and worst.startswith("foreign") else ""
    return Judgement(keep=False, reason=f"garbled: {worst}={measures[worst]} (max {limits[worst]}){example}",
                     measures=measures, score=score)


def garbled(texts: Sequence[str], t: GarbledThresholds = GarbledThresholds()) -> pd.DataFrame:
    return judgements_frame(judge_garbled(text, t) for text in texts)


# ---- language -------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _language_identifier():
    from py3langid import langid

    return langid.LanguageIdentifier.from_model_file(langid.MODEL_FILE, norm_probs=True)


def english_probability(text: str) -> tuple[float, str]:
    """(P(English), most likely language) from py3langid's packaged model (offline, no download)."""
    ident = _language_identifier()
    ranked = ident.rank(text)
    top_lang, _ = ranked[0]
    p_en = next((float(p) for lang, p in ranked if lang == "en"), 0.0)
    return p_en, top_lang


LANGUAGE_SAMPLE_CHARS = 2000  # ~350 words: plenty for a character n-gram model, and bounds the cost per text


def detect_language(text: str) -> tuple[float, str]:
    return english_probability(text[:LANGUAGE_SAMPLE_CHARS]) if text.strip() else (0.0, "und")


def language(
    texts: Sequence[str],
    min_english_probability: float = 0.5,
    detections: Sequence[tuple[float, str]] | None = None,
) -> pd.DataFrame:
    """`detections` are precomputed (P(en), language) pairs, e.g. read from the score cache."""
    if detections is None:
        detections = [detect_language(t) for t in texts]
    return judgements_frame(judge_language(d, min_english_probability) for _, d in zip(texts, detections))


def judge_language(detection: tuple[float, str], min_english_probability: float = 0.5) -> Judgement:
    """Judges a text by its detection (detect_language, cached apart: it does not depend on the threshold)."""
    p_en, lang = detection
    measures = {"english_probability": round(p_en, 4), "detected_language": lang}
    if p_en >= min_english_probability:
        return Judgement(keep=True, measures=measures, score=round(p_en, 4))
    return Judgement(keep=False, reason=f"language: detected {lang!r}, P(en)={p_en:.2f} (min {min_english_probability})",
                     measures=measures, score=round(p_en, 4))


# ---- repetition (Gopher, Rae et al. 2021, plus a loop detector for stuck captions) ----------------------------
@dataclass(frozen=True)
class RepetitionThresholds:
    # Gopher's published limits (Rae et al. 2021): share of characters covered by the most frequent 2/3/4-gram ...
    max_top_ngram_char_share: dict = field(default_factory=lambda: {2: 0.20, 3: 0.18, 4: 0.16})
    # ... and by n-grams that occur more than once, n = 5..10.
    # ... and by n-grams that occur more than once, n = 5..10: Gopher's limits (0.15 ... 0.10) doubled, because
    # speech repeats on purpose (a refrain, a guided meditation's phrases said twice) where web text does not.
    max_duplicate_ngram_char_share: dict = field(
        default_factory=lambda: {5: 0.30, 6: 0.28, 7: 0.26, 8: 0.24, 9: 0.22, 10: 0.20}
    )
    max_duplicate_sentence_share: float = 0.30  # sentences that repeat an earlier one, by count
    max_consecutive_repeats: int = 5  # a 1-8 word phrase said N times in a row ("Amen. Amen. Amen. ...")
    min_words: int = 30  # shorter texts have too few n-grams for share measures to mean anything


def _char_share(ngram_ids: np.ndarray, word_lens: np.ndarray, n: int, total_chars: int, top_only: bool) -> float:
    if len(ngram_ids) == 0 or total_chars == 0:
        return 0.0
    uniq, inverse, counts = np.unique(ngram_ids, return_inverse=True, return_counts=True)
    if top_only:
        top = np.argmax(counts)
        if counts[top] < 2:
            return 0.0
        positions = np.flatnonzero(inverse == top)
    else:
        positions = np.flatnonzero(counts[inverse] > 1)
    if len(positions) == 0:
        return 0.0
    # characters covered (each word counted once even where occurrences overlap), as Gopher does
    covered = np.zeros(len(word_lens), dtype=bool)
    for k in range(n):
        covered[positions + k] = True
    return float(word_lens[covered].sum()) / total_chars


def _longest_loop(hashes: np.ndarray, max_period: int = 8) -> tuple[int, int, int]:
    """(repeats, period, start) of the longest run where a `period`-word phrase repeats back to back."""
    best = (1, 0, 0)
    n = len(hashes)
    for p in range(1, min(max_period, n // 2) + 1):
        eq = hashes[p:] == hashes[:-p]
        if not eq.any():
            continue
        # longest run of True in eq
        padded = np.concatenate(([0], eq.astype(np.int8), [0]))
        diff = np.diff(padded)
        starts, ends = np.flatnonzero(diff == 1), np.flatnonzero(diff == -1)
        lengths = ends - starts
        i = int(np.argmax(lengths))
        repeats = int(lengths[i]) // p + 1
        if repeats > best[0]:
            best = (repeats, p, int(starts[i]))
    return best


def judge_repetition(text: str, t: RepetitionThresholds = RepetitionThresholds()) -> Judgement:
    """Gopher's n-gram shares, repeated sentences and phrase loops; score = worst measure / its limit."""
    toks = words(text)
    hashes = word_hashes(toks)
    word_lens = np.fromiter((len(w) for w in toks), dtype=np.int64, count=len(toks))
    total = int(word_lens.sum())
    measures: dict[str, float] = {}
    limits: dict[str, float] = {}
    loops, period, start = _longest_loop(hashes)
    measures["consecutive_repeats"] = loops
    limits["consecutive_repeats"] = t.max_consecutive_repeats + 0.5  # > max fires
    if len(toks) >= t.min_words:
        for n, limit in t.max_top_ngram_char_share.items():
            key = f"top_{n}gram_char_share"
            measures[key] = round(_char_share(ngram_hashes(hashes, n), word_lens, n, total, True), 4)
            limits[key] = limit
        for n, limit in t.max_duplicate_ngram_char_share.items():
            key = f"duplicate_{n}gram_char_share"
            measures[key] = round(_char_share(ngram_hashes(hashes, n), word_lens, n, total, False), 4)
            limits[key] = limit
        sents = [s.lower() for s in sentences(text)]
        if len(sents) >= 4:
            measures["duplicate_sentence_share"] = round(1 - len(set(sents)) / len(sents), 4)
            limits["duplicate_sentence_share"] = t.max_duplicate_sentence_share
    score, worst = _severity(measures, limits)
    if score < 1.0:
        return Judgement(keep=True, measures=measures, score=score)
    if worst == "consecutive_repeats":
        phrase = " ".join(toks[start : start + period])
        reason = f"repetition: {phrase!r} repeated {loops}x in a row (max {t.max_consecutive_repeats})"
    else:
        reason = f"repetition: {worst}={measures[worst]} (max {limits[worst]})"
    return Judgement(keep=False, reason=reason, measures=measures, score=score)


def repetition(texts: Sequence[str], t: RepetitionThresholds = RepetitionThresholds()) -> pd.DataFrame:
    return judgements_frame(judge_repetition(text, t) for text in texts)


# ---- housekeeping: promotion, sponsor reads, course sales, live-stream logistics ----------------------------
_NUMBER_WORD = r"(?:\d+|ten|fifteen|twenty|twenty[- ]five|thirty|forty|fifty|sixty|seventy|eighty|ninety)"
HOUSEKEEPING_PATTERNS: dict[str, str] = {
    "subscribe": r"\bsubscrib\w*\b[^.!?]{0,60}\b(channel|button|bell|notifications?)\b"
    r"|\b(like|smash|hit|click|tap)\b[^.!?]{0,30}\b(subscribe|bell|like button|notification)"
    r"|\b(like and subscribe|hit (that|the) like)\b|\bsupport(ing)? (the|this|my|our) channel\b"
    r"|\bbecome a (channel )?(member|patron)\b|\bjoin (the|my|our) (channel )?membership\b",
    "engagement": r"\b(leave|drop) (a|your) (comment|like|question)s?\b[^.!?]{0,30}\b(below|down)"
    r"|\bcomment (down )?below\b|\bshare this (video|episode)\b|\bthanks? (you )?for watching\b"
    r"|\bsee you (in|on) the next (video|episode|stream)\b|\bfollow (me|us) on (instagram|twitter|tiktok|facebook|youtube)",
    "sponsor": r"\b((sponsored|supported|brought to you) by|today'?s sponsor|our sponsor|promo code|discount code|quick word from"
    r"|(go to|visit|that'?s) [\w-]+(\.[\w-]+)*\.(com|app|co|io|org|net|shop)\b|(?-i:code [A-Z][A-Z0-9]{3,})\b"
    rf"|{_NUMBER_WORD} ?(%|percent) off\b|affiliate link|paid partnership"
    r"|(exclusive|special) (deal|offer|discount)|money[- ]back guarantee|free trial|at checkout|dot com slash)"
    r"|^(thanks|thank you),? [\w-]+[.!]?$",  # "Thanks, Driftwood." closing a read
    "course_sale": r"\b(enrol+|sign up|register|join)\b[^.!?]{0,25}\b(my|our|the)\b[^.!?]{0,20}"
    r"\b(course|program+e?|masterclass|webinar|membership|workshop|coaching)\b"
    r"|\b(open|opens|closes|closed) for enrol+ment\b|\benrol+ment (is open|opens|closes|ends)\b|\blifetime access\b"
    r"|\blink (is )?(in|below|down) (the )?(description|bio|below|comments)|\bcheck (out )?the (link|description)\b"
    r"|\b(early[- ]bird|limited[- ]time) (price|pricing|offer|discount)|\bdiscount (ends|expires)\b",
    "live_stream": r"\b(we'?re|we are|i'?m) (going )?live\b|\bcan (you|everyone|y'all) (all )?hear me\b"
    r"|\bsuper ?chats?\b|\b(in|into) the (live )?chat\b|\blive ?stream\b|\bshout ?out to\b[^.!?]{0,40}\b(joining|chat|watching)"
    r"|\bpatreon\b|\bmerch\b|\b(fix|check) (the|my) (mic|audio|sound)\b",
}
# Promo reads are contiguous: sentences lying between two promo sentences at most this many sentences apart are
# part of the same read ("It works on your phone, your laptop and your tablet" inside a VPN sponsor read).
HOUSEKEEPING_BLOCK_GAP = 2
_HOUSEKEEPING_RES = {name: re.compile(p, re.IGNORECASE) for name, p in HOUSEKEEPING_PATTERNS.items()}
# One pass over the whole text first: most segments have no promo at all and skip the per-sentence work. The
# pre-check must match whenever some sentence would, so sentence anchors (^, $) become word boundaries there.
_HOUSEKEEPING_ANY = re.compile(
    "|".join(f"(?:{p})" for p in HOUSEKEEPING_PATTERNS.values()).replace("|^(", r"|\b(").replace("]?$", "]?"),
    re.IGNORECASE)


# Scripture narrative and worship words. A sermon retells Bible stories; the names of its people and places survive
# captions that drop "God" (read on the development corpus). Common first names (David, Paul, John, Peter, ...) are
# left out: a therapist's client may carry them; so are "grace" and "righteous", which therapists use for
# self-compassion and for the self-righteous critic.
SCRIPTURE_RE = re.compile(
    r"\b(god|god's|jesus|christ|lord|scriptures?|bible|biblical|pray(?:s|ed|ing|ers?)?|church|amen|gospels?|holy|psalms?|"
    r"verses?|heaven|worship\w*|pastor|sermon|apostles?|disciples?|prophets?|israel|israelites?|egypt|pharaoh|"
    r"moses|abraham|noah|goliath|solomon|elijah|nehemiah|rahab|jerusalem|sodom|barnabas|genesis|exodus|"
    r"corinthians|ephesians|galatians|philippians|hebrews|isaiah|jeremiah|sins?|sinners?|salvation|"
    r"faith|covenant|temple|almighty|savior|saviour|messiah|crucif\w*|resurrection)\b", re.IGNORECASE)


@dataclass(frozen=True)
class ReligiousThresholds:
    # Measured on the 601 reading labels (docs/curation.md): above 1.0 per 100 words it fires on about half the
    # segments read as a sermon or prayer and on none of the 156 kept ones; at 0.75 it also took good answers.
    max_scripture_per_100_words: float = 1.0
    min_scripture_words: int = 3  # a passing mention ("their faith community") in a short answer is not a sermon


def judge_religious(text: str, t: ReligiousThresholds = ReligiousThresholds()) -> Judgement:
    """A sermon, prayer or scripture story as the main content: scripture words per 100 words, and enough of them.
    Score = the nearer of the two limits (density / max, count / min): it passes 1 only when both are passed."""
    hits = [h.lower() for h in SCRIPTURE_RE.findall(text)]
    n_words = max(1, len(text.split()))
    density = len(hits) * 100.0 / n_words
    measures = {"scripture_words": len(hits), "scripture_per_100_words": round(density, 3)}
    score = round(min(density / t.max_scripture_per_100_words, len(hits) / max(1, t.min_scripture_words)), 4)
    if density <= t.max_scripture_per_100_words or len(hits) < t.min_scripture_words:
        return Judgement(keep=True, measures=measures, score=score)
    top = ", ".join(w for w, _ in collections.Counter(hits).most_common(4))
    reason = (f"religious: {len(hits)} scripture words in {n_words} ({density:.2f} per 100 words, max "
              f"{t.max_scripture_per_100_words}): {top}")
    return Judgement(keep=False, reason=reason, measures=measures, score=score)


@dataclass(frozen=True)
class HousekeepingThresholds:
    max_housekeeping_word_share: float = 0.25  # share of words in promo / logistics sentences
    max_housekeeping_reads: int = 2  # separate promo / logistics passages (a contiguous read counts once)


def housekeeping_sentences(text: str) -> list[tuple[str, list[str]]]:
    """(sentence, matched categories) for each promo / logistics sentence, including the sentences inside a read
    (between two matches at most HOUSEKEEPING_BLOCK_GAP sentences apart; those carry the category "in_read")."""
    return [(s, k) for s, k, _ in _housekeeping_marks(text) if k]


def _housekeeping_marks(text: str) -> list[tuple[str, list[str], int]]:
    """(sentence, categories, read number or -1) for every sentence."""
    if not _HOUSEKEEPING_ANY.search(text):
        return []
    sents = sentences(text)
    kinds = [[name for name, rx in _HOUSEKEEPING_RES.items() if rx.search(s)] for s in sents]
    hits = [i for i, k in enumerate(kinds) if k]
    for a, b in zip(hits, hits[1:]):
        if 1 < b - a <= HOUSEKEEPING_BLOCK_GAP + 1:
            for i in range(a + 1, b):
                kinds[i] = kinds[i] or ["in_read"]
    reads, current, prev = [], -1, -2
    for i, k in enumerate(kinds):
        if k:
            current += 0 if prev == i - 1 else 1
            prev = i
        reads.append(current if k else -1)
    return list(zip(sents, kinds, reads))


def strip_housekeeping(text: str, hits: list[tuple[str, list[str]]] | None = None) -> tuple[str, int]:
    """The text without its promo / logistics sentences, and how many were removed (other text untouched)."""
    hits = housekeeping_sentences(text) if hits is None else hits
    out = text
    for sent, _ in hits:
        out = out.replace(sent, " ", 1)
    return (re.sub(r"[ \t]{2,}", " ", out).strip(), len(hits)) if hits else (text, 0)


def judge_housekeeping(text: str, t: HousekeepingThresholds = HousekeepingThresholds()) -> Judgement:
    """Promo / logistics sentences: score = the worse of word share and separate reads over their limits."""
    marks = _housekeeping_marks(text)
    hits = [(s, k) for s, k, _ in marks if k]
    n_words = max(1, len(text.split()))
    hk_words = sum(len(s.split()) for s, _ in hits)
    kinds = sorted({k for _, ks in hits for k in ks})
    measures = {
        "housekeeping_word_share": round(hk_words / n_words, 4),
        "housekeeping_reads": len({r for _, _, r in marks if r >= 0}),
        "housekeeping_sentences": len(hits),
        "kinds": kinds,
    }
    limits = {"housekeeping_word_share": t.max_housekeeping_word_share,
              "housekeeping_reads": t.max_housekeeping_reads + 0.5}
    score, _ = _severity(measures, limits)
    if score < 1.0:
        return Judgement(keep=True, measures=measures, score=score)
    reason = (f"housekeeping: {len(hits)} promo/logistics sentences in {measures['housekeeping_reads']} "
              f"passage(s) ({', '.join(kinds)}), "
              f"{measures['housekeeping_word_share']:.0%} of words; e.g. {hits[0][0][:60]!r}")
    return Judgement(keep=False, reason=reason, measures=measures, score=score)


def housekeeping(texts: Sequence[str], t: HousekeepingThresholds = HousekeepingThresholds()) -> pd.DataFrame:
    return judgements_frame(judge_housekeeping(text, t) for text in texts)


# ---- length ------------------------------------------------------------------------------------------------
LENGTH_ACTIONS = ("reject", "truncate")


def judge_length(text: str, min_words: int = 30, max_words: int = 1400, length_action: str = "reject") -> Judgement:
    """Too short to answer anything, or too long for the training sequence; long texts are rejected or truncated
    at a sentence boundary (`length_action`), never split into several pairs (one pair per input row)."""
    check_length_action(length_action)
    n = len(text.split())
    too_short, too_long = n < min_words, n > max_words
    measures = {"words": n, "too_long": too_long, "too_short": too_short}
    if too_short:
        return Judgement(keep=False, reason=f"length: {n} words (min {min_words})", measures=measures, score=float(n))
    if too_long and length_action == "reject":
        return Judgement(keep=False, reason=f"length: {n} words (max {max_words}; length_action=reject)",
                         measures=measures, score=float(n))
    return Judgement(keep=True, measures=measures, score=float(n))


def check_length_action(length_action: str) -> None:
    if length_action not in LENGTH_ACTIONS:
        raise ValueError(f"length_action must be one of {LENGTH_ACTIONS}, got {length_action!r}")


def length(texts: Sequence[str], min_words: int = 30, max_words: int = 1400, length_action: str = "reject") -> pd.DataFrame:
    check_length_action(length_action)
    return judgements_frame(judge_length(text, min_words, max_words, length_action) for text in texts)


def truncate_words(text: str, max_words: int) -> str:
    """Keep whole sentences up to max_words (at least the first max_words words when no boundary fits)."""
    kept, n = [], 0
    for sent in sentences(text):
        k = len(sent.split())
        if n + k > max_words:
            break
        kept.append(sent)
        n += k
    return " ".join(kept) if kept else " ".join(text.split()[:max_words])
