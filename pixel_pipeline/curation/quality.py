"""The learned quality classifier: P(a careful reader rejects this segment), over what curation already computes.

The named rules explain a reject and catch what a model has not seen, but on real transcripts the scores of the bad
segments a reader rejects overlap those of the good ones rule by rule (docs/curation.md). So, as FineWeb-Edu and NeMo
Curator do, a small model learns the reader's verdict from annotations (labels/real_segments_dev.jsonl, by
docs/labelling.md) over:
- the rule scores (garbled, repetition, language and housekeeping of the segment as read; the off_domain margin of the
  shaped text);
- window measures of the text as read (the worst 80-word window for non-words, other scripts, broken punctuation and
  loops), so a bad passage inside a good segment counts even when whole-text averages stay low;
- what shaping had to do (channel talk, repeats, loops, garbled or caption passages cut, share kept);
- dialogue and sermon markers (short interjections, questions, first / second person, scripture words);
- optionally the text's sentence embedding, the same vector off_domain uses (no second embedding pass). Measured on
  the 440 labels, the 384 raw dimensions add noise rather than signal (cross-validated AUC 0.87 without, 0.77 with;
  docs/curation.md), so the shipped model reads the embedding only through the off_domain margin.

The model is a standardised logistic regression (scikit-learn to fit, numpy to apply), saved as safetensors (weights)
+ JSON (feature names, threshold, cross-validated figures); no pickle.
"""

from __future__ import annotations

import functools
import json
import inspect
import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pixel_pipeline.core.ids import sha256_hex
from pixel_pipeline.curation import filters
from pixel_pipeline.curation.shaping import ShapeResult
from pixel_pipeline.curation.text import english_vocabulary, sentences, words

MODEL_DIR = Path(__file__).with_name("quality_model")
WEIGHTS_FILE = "quality_classifier.safetensors"
CARD_FILE = "quality_classifier.json"
WINDOW_WORDS = 80
# Not length: the labelled real segments are long (median 393 words), so a short text looked bad to a model that
# had seen length; a short clean answer is not worse for being short.
# Not language either: P(English) is ~1.0 on every labelled segment (std 2e-5), so standardising it turned a text
# with P = 1.0 exactly into an outlier (the language rule itself still rejects non-English text).
RULE_SCORES = ("garbled", "repetition", "housekeeping", "off_domain")
MARGIN_FEATURE = "rule_off_domain"  # the one feature that needs the embedding (QualityClassifier.reject_floor)
MIN_FEATURE_SCALE = 1e-2  # a feature that barely varies in training must not blow up on a new corpus
SHAPING_MEASURES = ("channel_talk_sentences", "repeated_sentences", "loops_collapsed", "garbled_sentences",
                    "unpunctuated_sentences")
INTERJECTION_RE = re.compile(r"^(yeah|yes|yep|right|exactly|absolutely|totally|okay|ok|wow|mhm|mm|oh|sure|true|"
                             r"no|wow|amazing|interesting|of course|i know|thank you|thanks)\b[\w\s,']{0,12}[.!?]$", re.I)
# The classifier's own scripture feature, frozen with the shipped model (its weights were fit on these counts);
# the religious rule reads the fuller lexicon in filters.SCRIPTURE_RE. Merge them when the model is next retrained.
SCRIPTURE_RE = re.compile(r"\b(god|jesus|christ|lord|scripture|bible|pray\w*|church|amen|gospel|holy|spirit|psalm|"
                          r"verse|faith|sin|heaven|worship|pastor|sermon|nehemiah|moses|paul)\b", re.I)
FIRST_PERSON = frozenset({"i", "me", "my", "mine", "i'm", "i've", "i'd", "i'll", "myself"})
SECOND_PERSON = frozenset({"you", "your", "yours", "you're", "you've", "you'd", "you'll", "yourself"})

def _log1p(x: float) -> float:
    return math.log1p(max(0.0, float(x)))


def window_measures(text: str) -> dict[str, float]:
    """The worst 80-word window of the text as read: a garbled tail or a loop in the middle shows here."""
    tokens = text.split()
    vocab = english_vocabulary()
    worst = {"win_non_word": 0.0, "win_foreign_letters": 0.0, "win_broken_punct": 0.0, "win_loop_repeats": 1.0}
    step = WINDOW_WORDS // 2
    for start in range(0, max(1, len(tokens) - step), step):
        window = " ".join(tokens[start:start + WINDOW_WORDS])
        toks = words(window)
        latin = [w for w in toks if w.isascii()]
        if len(latin) >= 20:
            worst["win_non_word"] = max(worst["win_non_word"], sum(w not in vocab for w in latin) / len(latin))
        foreign = sum(len(r) for r in filters.FOREIGN_SCRIPT_RE.findall(window))
        worst["win_foreign_letters"] = max(worst["win_foreign_letters"], foreign)
        n = max(1, len(window.split()))
        worst["win_broken_punct"] = max(worst["win_broken_punct"],
                                        len(filters.BROKEN_PUNCTUATION_RE.findall(window)) * 100.0 / n)
        if len(toks) >= 4:
            hashes = np.fromiter((hash(w) for w in toks), dtype=np.int64, count=len(toks))
            worst["win_loop_repeats"] = max(worst["win_loop_repeats"], filters._longest_loop(hashes)[0])
    return worst


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """Hash of this module's source: a cached window measure is stale once the measures' code changes."""
    return sha256_hex(inspect.getsource(sys.modules[__name__]))[:12]


def text_measures(text: str) -> dict[str, float]:
    """The classifier's features read from the text as given alone (its worst window, sentence lengths, questions,
    scripture, persons): the costly part of hand_features, so curation caches it per text (keyed by code_version)."""
    f = {k: _log1p(v) if k in ("win_foreign_letters", "win_loop_repeats") else v
         for k, v in window_measures(text).items()}
    sents = sentences(text)
    n_words = max(1, len(text.split()))
    lens = [len(s.split()) for s in sents] or [0]
    f["longest_sentence_log"] = _log1p(max(lens))
    f["caption_word_share"] = sum(x for x in lens if x >= 60) / n_words
    f["interjection_share"] = sum(bool(INTERJECTION_RE.match(s.strip())) for s in sents) / max(1, len(sents))
    f["questions_per_100_words"] = text.count("?") * 100.0 / n_words
    f["scripture_per_100_words"] = len(SCRIPTURE_RE.findall(text)) * 100.0 / n_words
    f["mean_sentence_log"] = _log1p(sum(lens) / len(lens))
    f["short_sentence_share"] = sum(x <= 3 for x in lens) / len(lens)
    toks = words(text)
    n_toks = max(1, len(toks))
    f["first_person_share"] = sum(t in FIRST_PERSON for t in toks) / n_toks
    f["second_person_share"] = sum(t in SECOND_PERSON for t in toks) / n_toks
    return f


def hand_features(original: str, shaped: ShapeResult, rule_scores: Mapping[str, float],
                  measures: Mapping[str, float] | None = None) -> dict[str, float]:
    """Every number the classifier reads besides the embedding, by name (the names are stored with the model).
    `measures`: text_measures(original) when the caller has it already (curation caches it per text)."""
    n_words = max(1, len(original.split()))
    f: dict[str, float] = {}
    for r in RULE_SCORES:
        v = rule_scores.get(r)
        v = 0.0 if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
        f[f"rule_{r}"] = v
    f.update(measures if measures is not None else text_measures(original))
    for k in SHAPING_MEASURES:
        f[f"shaping_{k}"] = _log1p(getattr(shaped, k))
    f["shaping_kept_share"] = shaped.kept_words / n_words
    f["shaping_head_share"] = shaped.dropped_head_words / n_words
    f["shaping_tail_share"] = shaped.dropped_tail_words / n_words
    return f


@dataclass
class QualityClassifier:
    """Standardised logistic regression over [hand features, embedding]; `threshold` on P(reject)."""

    feature_names: list[str]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    embedding_dim: int
    threshold: float
    card: dict

    def matrix(self, hand: Sequence[Mapping[str, float]], vectors: np.ndarray) -> np.ndarray:
        h = np.array([[row[name] for name in self.feature_names] for row in hand], dtype=np.float64).reshape(
            len(hand), len(self.feature_names))
        if not self.embedding_dim:  # a model of the hand features alone (the off_domain margin carries the vector)
            return h
        v = np.asarray(vectors, dtype=np.float64).reshape(len(hand), -1)
        if v.shape[1] != self.embedding_dim:
            raise ValueError(f"quality classifier expects {self.embedding_dim}-d embeddings, got {v.shape[1]}: "
                             f"it was trained with {self.card.get('embedding_model')}; retrain it for this model")
        return np.hstack([h, v])

    def reject_probability(self, hand: Sequence[Mapping[str, float]], vectors: np.ndarray) -> np.ndarray:
        if not len(hand):
            return np.zeros(0)
        x = (self.matrix(hand, vectors) - self.mean) / self.scale
        return 1.0 / (1.0 + np.exp(-(x @ self.coef + self.intercept)))

    def reject_floor(self, hand: Sequence[Mapping[str, float]]) -> np.ndarray | None:
        """The least P(reject) each row can have, whatever its off_domain margin up to the card's
        `domain_margin_ceiling` (the highest margin of the corpus the model was calibrated on). P falls as the margin
        rises (its coefficient is negative), so a row whose floor reaches the threshold is rejected whatever its
        embedding says: curation does not embed it. None when no such bound holds (the model reads the vector
        itself, no ceiling is recorded, or a higher margin does not lower P)."""
        ceiling = self.card.get("domain_margin_ceiling")
        if (self.embedding_dim or ceiling is None or MARGIN_FEATURE not in self.feature_names
                or self.coef[self.feature_names.index(MARGIN_FEATURE)] >= 0):
            return None
        return self.reject_probability([{**row, MARGIN_FEATURE: float(ceiling)} for row in hand], None)

    def save(self, folder: Path) -> None:
        from safetensors.numpy import save_file

        from pixel_pipeline.core.io import write_json

        folder.mkdir(parents=True, exist_ok=True)
        save_file({"mean": self.mean, "scale": self.scale, "coef": self.coef,
                   "intercept": np.array([self.intercept])}, str(folder / WEIGHTS_FILE))
        (folder / WEIGHTS_FILE).chmod(0o644)  # shipped with the package: readable like every other output
        write_json({**self.card, "feature_names": self.feature_names, "embedding_dim": self.embedding_dim,
                    "threshold": self.threshold}, folder / CARD_FILE)

    @classmethod
    def load(cls, folder: Path = MODEL_DIR) -> "QualityClassifier":
        from safetensors.numpy import load_file

        tensors = load_file(str(folder / WEIGHTS_FILE))
        card = json.loads((folder / CARD_FILE).read_text(encoding="utf-8"))
        return cls(card["feature_names"], tensors["mean"], tensors["scale"], tensors["coef"],
                   float(tensors["intercept"][0]), int(card["embedding_dim"]), float(card["threshold"]), card)


def fit(hand: Sequence[Mapping[str, float]], vectors: np.ndarray | None, rejected: Sequence[bool], c: float,
        threshold: float, card: dict) -> QualityClassifier:
    """Fit on labelled rows (rejected = the reader's verdict); class-balanced, L2, standardised features. With
    `vectors=None` the model reads the hand features alone."""
    from sklearn.linear_model import LogisticRegression

    names = sorted(hand[0])
    dim = 0 if vectors is None else int(vectors.shape[1])
    proto = QualityClassifier(names, np.zeros(1), np.ones(1), np.zeros(1), 0.0, dim, threshold, card)
    x = proto.matrix(hand, vectors)
    mean, scale = x.mean(axis=0), np.maximum(x.std(axis=0), MIN_FEATURE_SCALE)
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=5000)
    model.fit((x - mean) / scale, np.asarray(rejected, dtype=int))
    return QualityClassifier(names, mean, scale, model.coef_[0].astype(np.float64), float(model.intercept_[0]),
                             dim, threshold, card)


@functools.lru_cache(maxsize=1)
def load_default() -> QualityClassifier:
    """The classifier shipped with the package (trained by scripts/train_quality_classifier.py)."""
    if not (MODEL_DIR / WEIGHTS_FILE).exists():
        raise FileNotFoundError(f"no quality classifier at {MODEL_DIR}: run scripts/train_quality_classifier.py, "
                                "or set quality_classifier=False")
    return QualityClassifier.load(MODEL_DIR)
