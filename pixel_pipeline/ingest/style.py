"""Embedding-based style classifier: therapeutic / educational / empathetic / practical.

Zero-shot by design. Each style is described by a handful of prototype sentences written for this project; a
segment is embedded (long segments as the mean of up to `max_windows` evenly spread windows of `window_words`
words, because MiniLM reads only ~256 word pieces) and compared with every prototype by cosine similarity. A style's
score is the mean of its `top_k` best prototype similarities; a softmax over the four scores at `temperature` gives
`style_confidence` in [0, 1]. The given labels are NOT used to fit anything: they are too unreliable (a careful
reader found them right about half the time) and keeping them out makes the given/predicted agreement an honest,
independent measurement. Confidence is a softmax of similarity margins, not a calibrated probability.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from pixel_pipeline.core.ids import sha256_hex
from pixel_pipeline.core.records import EXPERT_INDEX, STYLES

log = logging.getLogger(__name__)

STYLE_PROTOTYPES: dict[str, tuple[str, ...]] = {
    # Guided practice in the listener's present: exercises, parts work, reframing. Explanations of trauma concepts
    # belong to "educational" even when a therapist says them (a first version mixed the two; see docs/ingestion.md).
    "therapeutic": (
        "Let's try an exercise together right now: close your eyes, notice your breath and where you feel the tension in your body.",
        "I'd like you to bring the memory to mind, notice what happens in your body, and stay with that sensation for a moment.",
        "When that inner critic shows up, gently ask which part of you is speaking and what it needs from you.",
        "Place a hand on your chest, breathe slowly, and tell that younger part of you that you are here now.",
        "As you notice the thought, imagine placing it on a leaf floating down a stream, and come back to your breath.",
        "Say to yourself: this is a moment of suffering, suffering is part of life, may I be kind to myself.",
        "Now let's reframe that belief: what would you say to a friend who told you the same thing about themselves?",
    ),
    "educational": (
        "Research shows that chronic stress changes how the amygdala and the prefrontal cortex communicate.",
        "Complex trauma is defined as repeated exposure to harm, usually in childhood, and it differs from a single-incident trauma.",
        "Let me explain the science: cortisol, the stress hormone, is released by the adrenal glands through the HPA axis.",
        "There are three main attachment styles that psychologists describe, and each develops from early caregiving.",
        "The diagnostic criteria for post-traumatic stress disorder include intrusive memories, avoidance and hyperarousal.",
        "Studies have found that people with a history of trauma have higher rates of depression and anxiety disorders.",
        "Dissociation is a defense mechanism in which the mind disconnects from thoughts, feelings or memories.",
    ),
    "empathetic": (
        "I want you to know that you are not alone, and what you are feeling makes complete sense.",
        "It is so painful to carry this, and you deserve kindness, especially from yourself.",
        "If you are struggling right now, please be gentle with yourself; you are doing the best you can.",
        "I hear how exhausted you are, and there is nothing wrong with you for feeling this way.",
        "Your feelings are valid, your pain is real, and you are worthy of love and care.",
        "I'm so sorry that happened to you. It was not your fault, and it is okay to grieve.",
        "So many of you have written to me sharing your stories, and I am deeply moved by your courage.",
    ),
    "practical": (
        "Here are five things you can do today to manage anxiety: make a plan, set a routine, and write down your worries.",
        "Step one, set a boundary by saying no clearly; step two, follow through; step three, notice how it feels.",
        "A practical tip: keep a sleep schedule, limit caffeine after noon and put your phone away an hour before bed.",
        "Make a list of the people you can call, the places you can go and the activities that help when you are overwhelmed.",
        "Try the five four three two one technique when you feel panic: name five things you see and four you can touch.",
        "Start small: pick one habit, schedule it on your calendar, and track it for a week.",
        "When you talk to your partner, use an I statement, keep it short and ask for one specific change.",
    ),
}


@dataclass(frozen=True)
class StyleClassifierSettings:
    """Knobs of the classifier (all part of its cache fingerprint).

    temperature: softmax temperature over style scores; at 0.05 a 0.05 cosine margin between two styles is odds of e:1 (73 % vs 27 %).
    top_k: prototypes averaged per style. window_words / max_windows: how long texts are read.
    """

    temperature: float = 0.05
    top_k: int = 3
    window_words: int = 180
    max_windows: int = 4


# Which encoder reads a segment for its style, and the settings measured for it (benchmarks/bench_static_embeddings.py):
# "static" (default) is the model distilled from MiniLM (core.static_embeddings), ~25x faster here; its cosines are
# spread more narrowly, so its softmax needs a lower temperature to reach the same share of confident predictions.
# "sentence" is MiniLM itself over 180-word windows. On the real development corpus both sit near chance against the
# given labels (0.30 static, 0.20 MiniLM), and on the sample the style that picks the expert matches the given
# labels at 0.90 (static) vs 0.83 (MiniLM): the faster one is not the worse one here.
STYLE_ENCODERS: dict[str, StyleClassifierSettings] = {
    "static": StyleClassifierSettings(temperature=0.02),
    "sentence": StyleClassifierSettings(),
}


def build_style_classifier(encoder: str, sentence_embedder, static_embedder) -> "StyleClassifier":
    """The classifier for `encoder` ("static" or "sentence"), with that encoder's measured settings."""
    if encoder not in STYLE_ENCODERS:
        raise ValueError(f"style_encoder must be one of {sorted(STYLE_ENCODERS)}, got {encoder!r}")
    return StyleClassifier(static_embedder if encoder == "static" else sentence_embedder, STYLE_ENCODERS[encoder])


def text_windows(text: str, window_words: int, max_windows: int) -> list[str]:
    """Up to `max_windows` windows of `window_words` words spread evenly over the text (all of it if short)."""
    words = text.split()
    if len(words) <= window_words:
        return [" ".join(words)]
    n_windows = int(np.ceil(len(words) / window_words))
    starts = np.linspace(0, len(words) - window_words, num=min(n_windows, max_windows)).round().astype(int)
    return [" ".join(words[s : s + window_words]) for s in dict.fromkeys(starts.tolist())]


class StyleClassifier:
    """Scores texts against STYLE_PROTOTYPES with any object exposing `encode(texts, progress)` (core Embedder)."""

    def __init__(self, embedder, settings: StyleClassifierSettings | None = None, prototypes: dict | None = None):
        self.embedder = embedder
        self.settings = settings or StyleClassifierSettings()
        self.prototypes = prototypes or STYLE_PROTOTYPES
        self._prototype_vectors: dict[str, np.ndarray] | None = None

    @property
    def fingerprint(self) -> str:
        """Changes whenever a classification could change: model, prototypes or settings."""
        namespace = getattr(self.embedder, "cache_namespace", type(self.embedder).__name__)
        payload = json.dumps([namespace, self.prototypes, asdict(self.settings)], sort_keys=True)
        return sha256_hex(payload)[:16]

    def _prototypes(self) -> dict[str, np.ndarray]:
        if self._prototype_vectors is None:
            self._prototype_vectors = {s: np.asarray(self.embedder.encode(list(self.prototypes[s]))) for s in STYLES}
        return self._prototype_vectors

    def embed(self, texts: Sequence[str], progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """One normalised vector per text: mean of its windows' vectors."""
        s = self.settings
        windows, owner = [], []
        for i, text in enumerate(texts):
            for w in text_windows(text, s.window_words, s.max_windows):
                windows.append(w)
                owner.append(i)
        if not windows:
            return np.zeros((0, 1), dtype=np.float32)
        vectors = np.asarray(self.embedder.encode(windows, progress=progress), dtype=np.float32)
        sums = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
        np.add.at(sums, np.asarray(owner), vectors)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        return sums / np.maximum(norms, 1e-12)

    def probabilities(self, texts: Sequence[str], progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """(n, 4) softmax probabilities in STYLES order."""
        if len(texts) == 0:
            return np.zeros((0, len(STYLES)), dtype=np.float64)
        vectors = self.embed(texts, progress)
        k = self.settings.top_k
        scores = np.zeros((len(texts), len(STYLES)), dtype=np.float64)
        for j, style in enumerate(STYLES):
            sims = vectors @ self._prototypes()[style].T
            top = np.sort(sims, axis=1)[:, -min(k, sims.shape[1]) :]
            scores[:, j] = top.mean(axis=1)
        logits = scores / self.settings.temperature
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        return probs / probs.sum(axis=1, keepdims=True)

    def predict(
        self, texts: Sequence[str], progress: Callable[[int, int], None] | None = None
    ) -> tuple[list[str], np.ndarray]:
        """(predicted style per text, confidence in [0, 1] per text)."""
        probs = self.probabilities(texts, progress)
        if len(probs) == 0:
            return [], np.zeros(0)
        best = probs.argmax(axis=1)
        return [STYLES[i] for i in best], np.clip(probs.max(axis=1), 0.0, 1.0)


def progress_logger(label: str, logger: Callable[[str], None], every_seconds: float = 10.0) -> Callable[[int, int], None]:
    """A progress callback that logs `label: done/total windows (rate)` at most every `every_seconds`."""
    state = {"start": time.monotonic(), "last": 0.0}

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - state["last"] >= every_seconds:
            elapsed = max(now - state["start"], 1e-9)
            logger(f"{label}: embedded {done}/{total} windows ({done / elapsed:.0f}/s, {elapsed:.0f}s)")
            state["last"] = now

    return report


EXPERT_STYLE_FROM = ("auto", "predicted", "given")


def choose_style(
    style_given: pd.Series, style_predicted: pd.Series, style_confidence: pd.Series, expert_style_from: str, min_style_confidence: float
) -> pd.Series:
    """The style that maps to an expert.

    auto (default): the prediction when its confidence is at least `min_style_confidence`, else the given label
    (the prediction when there is none). predicted: always the prediction. given: the label when present.
    """
    if expert_style_from not in EXPERT_STYLE_FROM:
        raise ValueError(f"expert_style_from must be one of {EXPERT_STYLE_FROM}, got {expert_style_from!r}")
    has_given = style_given.notna()
    if expert_style_from == "predicted":
        return style_predicted.copy()
    if expert_style_from == "given":
        return style_given.where(has_given, style_predicted)
    confident = style_confidence >= min_style_confidence
    return style_predicted.where(confident | ~has_given, style_given)


def expert_of(style: pd.Series) -> pd.Series:
    return style.map(EXPERT_INDEX).astype("int64")


def style_agreement(style_given: pd.Series, style_predicted: pd.Series) -> dict:
    """Agreement between given labels and predictions: accuracy, Cohen's kappa, per style recall, confusion table."""
    mask = style_given.notna()
    given, predicted = style_given[mask].astype(str), style_predicted[mask].astype(str)
    n = int(mask.sum())
    if n == 0:
        return {"n_labelled": 0, "agreement": None, "kappa": None, "per_style": {}, "confusion": {}}
    agree = float((given == predicted).mean())
    p_given = given.value_counts(normalize=True)
    p_pred = predicted.value_counts(normalize=True)
    chance = float(sum(p_given.get(s, 0.0) * p_pred.get(s, 0.0) for s in STYLES))
    kappa = (agree - chance) / (1 - chance) if chance < 1 else 1.0
    confusion = pd.crosstab(given, predicted).reindex(index=list(STYLES), columns=list(STYLES), fill_value=0)
    per_style = {}
    for s in STYLES:
        labelled = int((given == s).sum())
        predicted_as = int((predicted == s).sum())
        hits = int(((given == s) & (predicted == s)).sum())
        per_style[s] = {
            "labelled": labelled,
            "predicted": predicted_as,
            "agreement": round(hits / labelled, 4) if labelled else None,  # recall of the label
            "precision": round(hits / predicted_as, 4) if predicted_as else None,
        }
    return {
        "n_labelled": n,
        "agreement": round(agree, 4),
        "chance_agreement": round(chance, 4),
        "kappa": round(kappa, 4),
        "per_style": per_style,
        "confusion": {g: {p: int(confusion.loc[g, p]) for p in STYLES} for g in STYLES},
    }


def confusion_markdown(agreement: dict) -> str:
    """Rows: given label; columns: predicted style."""
    if not agreement.get("confusion"):
        return "_no labelled segments_"
    lines = ["| given \\ predicted | " + " | ".join(STYLES) + " | agreement |", "|---" * (len(STYLES) + 2) + "|"]
    for g in STYLES:
        cells = " | ".join(str(agreement["confusion"][g][p]) for p in STYLES)
        rate = agreement["per_style"][g]["agreement"]
        lines.append(f"| **{g}** | {cells} | {'—' if rate is None else f'{rate:.0%}'} |")
    return "\n".join(lines)
