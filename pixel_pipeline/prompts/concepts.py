"""The concept a segment is about: the field-vocabulary term it keeps coming back to.

Concepts are not mined from arbitrary word runs (that gave "unhealthy", "develop", "john mark", "magic shop"): a
concept is a noun phrase of the field's vocabulary (`data/field_vocabulary.tsv`, each term with the kind of thing it
is), counted in the segment. A segment is about a term when it names it at least `min_mentions` times; a term inside
a longer term ("trauma" in "complex trauma") counts for both. The tagger checks the filled question later
(templates.fill_concept): the slot must read as a noun phrase in context.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pixel_pipeline.prompts.text import normalise_quotes

VOCABULARY_PATH = Path(__file__).parent / "data" / "field_vocabulary.tsv"
KINDS = ("struggle", "practice", "topic", "person")
_MASS_ENDINGS = ("ss", "ness", "sis", "ics")
_PLURAL_WITHOUT_S = ("people", "children")


@dataclass(frozen=True)
class Concept:
    term: str
    kind: str
    mentions: int
    display: str = ""  # as a client names it in a question ("a trauma bond"); the term itself when empty

    @property
    def asked(self) -> str:
        return self.display or self.term

    @property
    def plural(self) -> bool:
        return is_plural(self.asked.lower())


def is_plural(term: str) -> bool:
    last = term.split()[-1]
    if last in _PLURAL_WITHOUT_S or last == "psychedelics":
        return True
    return last.endswith("s") and not last.endswith(_MASS_ENDINGS)


@lru_cache(maxsize=4)
def load_vocabulary(path: str | Path = VOCABULARY_PATH) -> dict[str, str]:
    """term -> kind; a malformed line is an error naming the line."""
    return {t: k for t, (k, _) in _read_vocabulary(path).items()}


@lru_cache(maxsize=4)
def _read_vocabulary(path: str | Path = VOCABULARY_PATH) -> dict[str, tuple[str, str]]:
    """term -> (kind, as asked)."""
    vocabulary: dict[str, tuple[str, str]] = {}
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) not in (2, 3) or parts[1] not in KINDS or parts[0] != parts[0].lower().strip():
            raise ValueError(f"{path}:{n}: expected 'lower-case term<TAB>kind[<TAB>as asked]' with kind in {KINDS}, got {line!r}")
        vocabulary[parts[0]] = (parts[1], parts[2] if len(parts) == 3 else "")
    if not vocabulary:
        raise ValueError(f"{path}: the field vocabulary is empty")
    return vocabulary


@lru_cache(maxsize=4)
def _term_pattern(path: str | Path = VOCABULARY_PATH) -> re.Pattern:
    terms = sorted(load_vocabulary(path), key=lambda t: (-len(t), t))  # longest first: "complex trauma" before "trauma"
    alternatives = [r"[\s-]+".join(re.escape(w) for w in re.split(r"[\s-]+", t)) for t in terms]
    return re.compile(r"\b(?:" + "|".join(alternatives) + r")\b")


@lru_cache(maxsize=4)
def _spellings(path: str | Path = VOCABULARY_PATH) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    """(spelling with spaces -> term, term -> the shorter terms it contains)."""
    vocabulary = load_vocabulary(path)
    spaced = {t: re.sub(r"[\s-]+", " ", t) for t in vocabulary}
    inside = {
        t: tuple(u for u in vocabulary if u != t and re.search(rf"\b{re.escape(spaced[u])}\b", spaced[t]))
        for t in vocabulary
    }
    return {v: k for k, v in spaced.items()}, inside


def term_mentions(text: str, path: str | Path = VOCABULARY_PATH) -> Counter:
    """How often each vocabulary term is named in `text` (a term inside a longer named term counts too)."""
    by_spelling, inside = _spellings(path)
    lowered = normalise_quotes(str(text)).lower()
    found = Counter(by_spelling[re.sub(r"[\s-]+", " ", m.group())] for m in _term_pattern(path).finditer(lowered))
    counts = Counter(found)
    for long_term, n in found.items():
        for term in inside[long_term]:
            counts[term] += n
    return counts


def has_field_term(text: str) -> bool:
    return bool(_term_pattern().search(normalise_quotes(str(text)).lower()))


def central_concepts(text: str, min_mentions: int = 3, top_n: int = 2, words_per_mention: int = 150) -> list[Concept]:
    """The terms the segment keeps naming, most named first (a more specific term wins a tie).

    A term is central when it is named at least `min_mentions` times and at least once per `words_per_mention`
    words: a long segment that names shame three times in passing is not about shame.
    """
    vocabulary = _read_vocabulary()
    counts = term_mentions(text)
    needed = max(min_mentions, len(str(text).split()) // words_per_mention)
    ranked = sorted(
        (t for t, n in counts.items() if n >= needed),
        key=lambda t: (-counts[t], -len(t.split()), t),
    )
    return [Concept(t, vocabulary[t][0], counts[t], vocabulary[t][1]) for t in ranked[:top_n]]


def linked_concept(text: str, concept: Concept, within_words: int = 60, min_mentions: int = 2) -> Concept | None:
    """A second field concept the segment's opening links to `concept` in one sentence ("Complex trauma creates
    anger issues"), named at least `min_mentions` times in the segment: the two may be asked about together
    (issue 13: two concepts in one form only when the segment itself links them). Not a person, not a term inside
    the other ("trauma" / "complex trauma"); the most named one wins."""
    vocabulary = _read_vocabulary()
    if concept.kind == "person":  # "How are a narcissist and triggers connected?"
        return None
    _, inside = _spellings()
    opening = " ".join(normalise_quotes(str(text)).split()[:within_words])
    counts: Counter | None = None  # the whole segment's mentions: counted only once a second term is in view
    linked: Counter = Counter()
    for sentence in re.split(r"(?<=[.!?])\s+", opening):
        named = term_mentions(sentence)
        if not named.get(concept.term):
            continue
        for term in named:
            related = term == concept.term or term in inside[concept.term] or concept.term in inside[term]
            if related or vocabulary[term][0] == "person":
                continue
            counts = term_mentions(text) if counts is None else counts
            if counts[term] >= min_mentions:
                linked[term] = counts[term]
    if not linked:
        return None
    term = sorted(linked, key=lambda t: (-linked[t], -len(t.split()), t))[0]
    return Concept(term, vocabulary[term][0], linked[term], vocabulary[term][1])
