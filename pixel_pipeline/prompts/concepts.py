"""Key concepts of a segment, KeyBERT-style, with the embedding model.

Candidate phrases are contiguous 1-3 word runs inside a clause that neither start nor end with a stop word or a
spoken filler ("you know", "kind of"). A TF-IDF pre-ranking over the corpus keeps the `candidate_pool` most
distinctive phrases of each segment (so only those are embedded: thousands of segments stay cheap), then the
phrases closest to the segment's embedding are picked with Maximal Marginal Relevance, so the concepts cover
different parts of the segment instead of five spellings of one idea. Distinctive + central is what lets a question
built from them find its answer again (BM25 specificity) and still be about the answer (alignment).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from pixel_pipeline.prompts.text import STOP_WORDS, normalise_quotes, words

# Spoken fillers and talk-show vocabulary: never the concept a client asks about.
FILLER_WORDS = frozenset(
    """
    um uh uhm erm hmm yeah yep okay ok oh gonna wanna gotta kinda sorta lot lots really actually basically literally
    thing things stuff way know mean like right going got get gets getting want say said says talk talking today
    video videos channel subscribe episode podcast people just maybe pretty little bit kind sort guys guy folks
    welcome everybody everyone let lets let's yes sure well also even still much many something anything everything
    someone somebody anybody time times make makes made come comes came look looks looking go goes went thank thanks
    need needs able use used using doing does did done tell told saying actually different important good great
    feeling feelings tonight today yesterday tomorrow week weeks year years moment moments minute minutes point
    """.split()
)
# Common verbs in all their forms: a phrase that starts or ends with one is a clause fragment ("rarely calms",
# "partner seeks"), not a concept. Without a POS tagger (none ships offline) this list and the adverb / past-tense
# endings below are what keeps the candidates noun-like.
_VERB_STEMS = """
    accept allow ask become begin believe bring build call calm care carry change choose continue create decide
    describe explain feel find follow give happen hear help hold keep lead learn leave live love mean move notice
    offer open play pull push put reach realize remember run seek seem send set show sit speak spend stand start
    stay stop suggest take teach think try turn understand wait walk watch wonder work write hope happen sound
    apologize apologise delete pray disturb flinch fail forget remind cry yell scream blame avoid ignore refuse
    prove deserve belong suffer heal cope grow manage handle admit forgive answer agree argue breathe recover
    rebuild protect react respond survive quit hide lose conclude realise pretend shout whisper
    """.split()
COMMON_VERBS = frozenset(
    {v for stem in _VERB_STEMS for v in (stem, stem + "s", stem + "ed", stem + "d", stem + "ing", stem[:-1] + "ing")}
    | set("felt found gave heard held kept led left meant ran sat sent set spent stood taught thought told took wrote".split())
)
_NOT_ADVERBS = frozenset("family bully belly ally supply reply assembly anomaly melancholy monopoly italy july holy".split())
# What a client asks about: the prototype the concept ranking leans toward (see extract_key_concepts).
DOMAIN_DESCRIPTION = (
    "a psychological concept, emotion, mental health condition, therapy technique, relationship problem, "
    "trauma or recovery topic"
)
_CLAUSE_BREAK = re.compile(r"[.,;:!?()\[\]\"\u2014\u2013]|\s-\s|\n")
# Small words allowed inside a 3-word phrase ("sense of shame", "fight or flight").
_INNER_WORDS = frozenset({"of", "and", "or"})


def _edge_ok(token: str) -> bool:
    return (
        len(token) >= 3
        and token not in STOP_WORDS
        and token not in FILLER_WORDS
        and token not in COMMON_VERBS
        and not token.isdigit()
        and "'" not in token  # contractions ("partner who's") end clauses, not concepts
        and not (token.endswith("ly") and token not in _NOT_ADVERBS)
    )


_ADJECTIVE_ENDINGS = ("ous", "ful", "tic", "ical", "ible", "able", "ive")
_NOUNS_WITH_ADJECTIVE_ENDINGS = frozenset(
    """table vegetable variable cable narrative perspective motive objective alternative initiative relative incentive
    detective executive representative directive""".split()
)


_NOUNS_ENDING_IN_EST = frozenset("interest request protest contest forest harvest conquest arrest unrest".split())


def _last_ok(token: str) -> bool:
    """A concept ends in a noun: not a past tense ("it happened"), a superlative ("hardest") nor an adjective."""
    if token.endswith("ed") and len(token) > 4 and not token.endswith("eed"):
        return False
    if token.endswith("est") and len(token) > 5 and token not in _NOUNS_ENDING_IN_EST:
        return False
    return not (token.endswith(_ADJECTIVE_ENDINGS) and token not in _NOUNS_WITH_ADJECTIVE_ENDINGS)


def candidate_phrases(text: str, max_words: int = 3) -> Counter:
    """Counts of the candidate phrases of one text (1-2 content words, or `X of/and/or Y`)."""
    counts: Counter = Counter()
    for clause in _CLAUSE_BREAK.split(normalise_quotes(text)):
        toks = words(clause)
        for n in range(1, max_words + 1):
            for i in range(len(toks) - n + 1):
                gram = toks[i : i + n]
                if not (_edge_ok(gram[0]) and _edge_ok(gram[-1]) and _last_ok(gram[-1])):
                    continue
                if n == 3 and gram[1] not in _INNER_WORDS:  # "sense of shame" yes, "struggling with grief" no
                    continue
                if n > 1 and len(set(gram)) < n:  # "amen amen"
                    continue
                counts[" ".join(gram)] += 1
    return counts


def phrase_document_frequencies(texts: Sequence[str], phrase_store=None) -> tuple[Counter, int]:
    """(number of texts containing each candidate phrase, number of texts).

    `phrase_store` (a core.kvstore.SqliteKeyValueStore, optional) keeps each text's phrase set by content hash:
    after one new transcript the corpus frequencies are re-counted from the store instead of re-parsing every text.
    """
    from pixel_pipeline.core.ids import sha256_hex

    texts = list(texts)
    if phrase_store is None:
        sets = [list(candidate_phrases(t)) for t in texts]
    else:
        keys = [sha256_hex(f"candidate_phrases:v1\x00{t}") for t in texts]
        found = {k: json.loads(v) for k, v in phrase_store.get_many(keys).items()}
        new = {k: list(candidate_phrases(t)) for k, t in zip(keys, texts) if k not in found}
        if new:
            phrase_store.put_many({k: json.dumps(v, ensure_ascii=False) for k, v in new.items()})
            found.update(new)
        sets = [found[k] for k in keys]
    df: Counter = Counter()
    for phrases in sets:
        df.update(phrases)
    return df, max(len(sets), 1)


def extract_key_concepts(
    texts: Sequence[str],
    embedder,
    top_n: int = 5,
    candidate_pool: int = 16,
    diversity: float = 0.3,
    min_relevance: float = 0.15,
    domain_weight: float = 0.5,
    corpus_texts: Sequence[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    phrase_store=None,
) -> list[list[tuple[str, float]]]:
    """For each text, up to `top_n` (phrase, similarity) pairs, most relevant first.

    `corpus_texts` (default: `texts`) sets the document frequencies of the TF-IDF pre-ranking, so concepts of new
    segments are judged against the whole corpus. `diversity` is MMR's weight on novelty (0 = plain KeyBERT ranking).
    Phrases less similar to the text than `min_relevance` are dropped (the best one is always kept).
    `domain_weight` adds the phrase's similarity to DOMAIN_DESCRIPTION to its relevance: with no POS tagger
    offline, this is what prefers "emotional neglect" over an accidental word pair such as "car outside".
    `phrase_store`: see phrase_document_frequencies.
    """
    if not texts:
        return []
    per_text = [candidate_phrases(t) for t in texts]
    if corpus_texts is None:
        df: Counter = Counter()
        for counts in per_text:
            df.update(counts.keys())
        n_docs = max(len(per_text), 1)
    else:
        df, n_docs = phrase_document_frequencies(corpus_texts, phrase_store)

    def idf(term: str) -> float:
        return math.log((n_docs + 1) / (df.get(term, 0) + 1)) + 1.0

    pools: list[list[str]] = []
    for counts in per_text:
        scored = []
        for p, tf in counts.items():
            parts = [w for w in p.split() if w not in _INNER_WORDS]
            # Distinctive words make a question findable; a multiword phrase earns its length bonus only when it
            # recurs (in this text or another), which real collocations do and accidental word pairs do not.
            recurs = tf >= 2 or df.get(p, 0) >= 2
            length_bonus = 1.0 + 0.5 * (len(parts) - 1) if recurs else 1.0
            scored.append((tf * sum(idf(w) for w in parts) / len(parts) * length_bonus, p))
        scored.sort(key=lambda x: (-x[0], x[1]))
        pools.append([p for _, p in scored[:candidate_pool]])

    phrases = sorted({p for pool in pools for p in pool})
    phrase_vecs = embedder.encode(phrases, progress=progress) if phrases else np.zeros((0, 1), dtype=np.float32)
    phrase_row = {p: i for i, p in enumerate(phrases)}
    doc_vecs = embedder.encode(list(texts))
    domain_sim = phrase_vecs @ embedder.encode([DOMAIN_DESCRIPTION])[0] if phrases else np.zeros(0)

    out: list[list[tuple[str, float]]] = []
    for doc_vec, pool in zip(doc_vecs, pools):
        if not pool:
            out.append([])
            continue
        rows = [phrase_row[p] for p in pool]
        vecs = phrase_vecs[rows]
        similarity = vecs @ doc_vec
        chosen = _drop_nested(pool, _mmr(vecs, similarity + domain_weight * domain_sim[rows], top_n * 2, diversity))[:top_n]
        out.append(
            [(pool[i], round(float(similarity[i]), 4)) for n, i in enumerate(chosen) if n == 0 or similarity[i] >= min_relevance]
        )
    return out


def _mmr(vecs: np.ndarray, relevance: np.ndarray, top_n: int, diversity: float) -> list[int]:
    """Indexes chosen by Maximal Marginal Relevance, most relevant first."""
    chosen: list[int] = []
    remaining = list(range(len(vecs)))
    while remaining and len(chosen) < top_n:
        if chosen:
            redundancy = (vecs[remaining] @ vecs[chosen].T).max(axis=1)
        else:
            redundancy = np.zeros(len(remaining))
        mmr = (1 - diversity) * relevance[remaining] - diversity * redundancy
        best = remaining[int(np.argmax(mmr))]
        remaining.remove(best)
        chosen.append(best)
    return chosen


def _drop_nested(pool: list[str], chosen: list[int]) -> list[int]:
    """"trauma" next to "complex trauma" says the same thing twice in a question: keep the first of the two."""
    kept: list[int] = []
    for i in chosen:
        words_i = set(pool[i].split())
        if not any(words_i <= set(pool[k].split()) or set(pool[k].split()) <= words_i for k in kept):
            kept.append(i)
    return kept
