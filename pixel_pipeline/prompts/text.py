"""Word-level helpers shared by the prompt rules, concept extraction and the BM25 metric.

One tokenizer everywhere, so "a 6-word run copied from the response" and "a word BM25 can match" mean the same
words: lowercase runs of letters, digits and inner apostrophes (curly quotes folded to straight ones).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]’”]*\s+")
_PLACEHOLDER = re.compile(r"\[[A-Z_]+\]")  # PII placeholders written by curation, e.g. [PHONE]
_FIRST_PERSON = re.compile(r"\b(i|i'm|i've|i'd|i'll|im|ive|my|me|myself|mine|we|we're|our|us)\b")

STOP_WORDS = frozenset(ENGLISH_STOP_WORDS) | {"i'm", "i've", "i'd", "i'll", "it's", "don't", "can't", "that's", "you're", "we're", "they're", "doesn't", "didn't", "isn't", "won't", "let's", "there's", "what's"}


def normalise_quotes(text: str) -> str:
    return text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')


def words(text: str) -> list[str]:
    """Lowercase word tokens (placeholders such as [PHONE] are not words)."""
    return _WORD.findall(_PLACEHOLDER.sub(" ", normalise_quotes(str(text)).lower()))


def content_words(tokens: Iterable[str]) -> list[str]:
    return [t for t in tokens if t not in STOP_WORDS and not t.isdigit()]


def ngrams(tokens: Sequence[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(normalise_quotes(str(text)).strip()) if s.strip()]


def is_first_person(text: str) -> bool:
    return bool(_FIRST_PERSON.search(normalise_quotes(text).lower()))


def normalise_prompt(prompt: str) -> str:
    """The form under which two prompts count as the same prompt (case, spacing and punctuation ignored)."""
    return " ".join(words(prompt))


def distinct_ratio(prompts: Sequence[str]) -> float:
    """Share of prompts that are distinct (after normalise_prompt)."""
    if not prompts:
        return 0.0
    return len({normalise_prompt(p) for p in prompts}) / len(prompts)


def distinct_n(prompts: Sequence[str], n: int = 2) -> float:
    """distinct-n (Li et al. 2016): distinct word n-grams / all word n-grams over the whole set of prompts."""
    total, seen = 0, set()
    for p in prompts:
        toks = words(p)
        grams = [tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)]
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else 0.0
