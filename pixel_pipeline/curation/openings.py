"""Does a response open as an answer? The first sentence of a shaped segment, read for what it leans on.

Shaping drops up to five leading sentences that lean on what came before the cut, and stops there: a later start
inside a run of caption fragments is another fragment. What is left can still open mid-thought ("Their memory kind
of blanks out.", "Controlling the narrative gives them a sense of dominance.", "Some even have experienced ...").
The prompt stage gives such a segment no question, since a model trained on the pair learns to start in the middle
of a thought. The tests read the first sentence only (regular expressions, then spaCy's tags and parse); each names
what leans, so a reject says why. Measured against 236 openings read by hand (benchmarks/bench_opening_gate.py;
docs/curation.md, session 11; labels/opening_verdicts.jsonl).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Sequence
from pathlib import Path

from pixel_pipeline.core.ids import sha256_hex
from pixel_pipeline.core.kvstore import SqliteKeyValueStore
from pixel_pipeline.curation import shaping
from pixel_pipeline.curation.text import sentences

WINDOW_WORDS = 14  # a pronoun or a demonstrative this early points at something the sentence has not named yet
# "fail at that test" points back; "..., you probably have that voice inside you" later in a sentence says "such a"
DETERMINER_WINDOW = 10
DISCOURSE_WORDS = frozenset(shaping.DISCOURSE_WORDS)
PLURAL_PRONOUNS = frozenset("they them their theirs themselves".split())
SINGULAR_PRONOUNS = frozenset("he him his himself she her hers herself".split())
# "When a person wants to deal with it, they ..." is singular they: a pronoun can refer to these words
PERSON_NOUNS = frozenset("""person child kid parent partner someone somebody anyone anybody everyone everybody individual
narcissist abuser survivor client friend spouse mother father mom dad son daughter baby teen teenager adult man woman
boy girl family addict therapist counselor victim scapegoat human student patient husband wife sibling brother sister
people""".split())
DEMONSTRATIVES = frozenset("that those these".split())
# "that week", "those who": a demonstrative that names its own time or is generic
NAMES_ITS_OWN = frozenset("who which that week weekend year month morning afternoon evening night time moment day days "
                          "season".split())
QUANTIFIERS = frozenset("some many most several".split())  # "Some even have ..." without "people": some of whom?
BE_OR_DO = frozenset("is was 's does did".split())  # "Why is it that ...": "it" after an inverted verb is a subject
NOT_LEADS = frozenset("everyone everybody all every only".split())  # "Not everyone ..." opens a claim
# a list the talk started: "The first one is ...", "First of all, ...", "Number one is ...", "Six, lots of ..."
LIST_START_RE = re.compile(
    r"^(?:(?:the\s+)?first(?:\s+of\s+all|\s+one|ly)?\s*[,:]|the\s+first\s+one\b|first\s+of\s+all\b|number\s+one\b|"
    r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty)\s*,)", re.IGNORECASE)
# the talk's own plan in forms shaping's TALK_PLAN_RE leaves: "I'm going to give you a look at ...", "Today we're
# coming to one that ..."
TALK_PLAN_RE = re.compile(
    r"(?:(?:today|tonight)\s*,?\s*)?(?:(?:i'm|i\s+am|we're|we\s+are)\s+(?:going\s+to|gonna|coming\s+to)\s+"
    r"(?:give|show|share|one|talk|look)\b|where\s+i\s+want\s+to\s+go\b)", re.IGNORECASE)
# "Shame also has ...", "A need, however, ...", "When I am still being criticized ...": adds to what came before
ADDS_TO_BEFORE_RE = re.compile(r"^(?:\S+\s+){0,3}?(also|however|still|again)\b", re.IGNORECASE)
EMPTY_SLOT_RE = re.compile(r"\s[,;]")  # "When you read through the , what ...": a word the caption lost
SUBJECT_DEPS = frozenset({"nsubj", "nsubjpass", "csubj", "csubjpass", "expl"})
MAX_PARSED_WORDS = 20
# "A lot of the men who come to see me start ...": the parser often makes the quantity noun the root
QUANTITY_NOUNS = frozenset("lot lots number bunch couple majority few plenty".split())
SUBORDINATORS = frozenset("when whenever once if because although though since unless while as".split())
DISCOURSE_RE = re.compile(shaping._DISCOURSE, re.IGNORECASE)  # the same words, as shaping's opening tests skip them


def first_sentence(text: str) -> str:
    found = sentences(text)
    return found[0] if found else ""


def _first_word(sentence: str) -> str:
    return re.sub(r"[^\w']", "", sentence.split()[0].lower()) if sentence.split() else ""


def opening_problem(sentence: str, doc=None) -> str | None:
    """What the first sentence leans on (None when it opens an answer). `doc`: its spaCy parse, else parsed here."""
    if not sentence.strip():
        return "empty"
    if doc is None:
        from pixel_pipeline.core.tagger import parse  # spaCy loads only where an opening is read

        doc = parse([sentence])[0]
    if shaping.starts_mid_thought(sentence):
        return "starts mid-thought"
    if len(sentence.split()) <= shaping.MAX_STRAY_WORDS:  # shaping drops these at the cut; here "Grief comes from
        if _first_word(sentence) in shaping.LEANING_OPENERS:  # love." opens an answer, "It is." does not
            return f"a short sentence that opens with '{sentence.split()[0]}'"
    elif shaping.leans_on_before(sentence) or shaping.is_fragment(sentence, [t.tag_ for t in doc]):
        return "leans on what came before the cut (shaping's opening rules, past their cap)"
    body = DISCOURSE_RE.sub("", sentence, count=1)
    if LIST_START_RE.match(body):
        return "opens a list the talk started"
    if TALK_PLAN_RE.match(body):
        return "the talk's plan"
    if EMPTY_SLOT_RE.search(sentence):
        return "a word lost before a comma"
    added = ADDS_TO_BEFORE_RE.match(sentence)
    if added:
        return f"'{added.group(1)}' adds to what came before"
    words = [t for t in doc if re.match(r"[\w']", t.text)]
    return (_opening_words(words, "," in sentence) or _points_back(words, ":" in sentence)
            or _no_main_clause(doc, len(words)))


def _opening_words(words: list, has_comma: bool) -> str | None:
    """How the sentence starts, past discourse words."""
    lower = [t.lower_ for t in words]
    i = 0
    while i < len(lower) and lower[i] in DISCOURSE_WORDS:
        i += 1
    if i >= len(words):
        return None
    nxt, nxt_tag = (lower[i + 1], words[i + 1].tag_) if i + 1 < len(words) else ("", "")
    if lower[i] == "not" and nxt not in NOT_LEADS:
        return "opens with 'not': the other half of a contrast"
    if lower[i] == "to" and nxt_tag == "VB" and not has_comma:
        return "an infinitive without its clause"
    if words[i].tag_.startswith("RB") and lower[i] not in ("here", "there") and nxt_tag in ("VBZ", "VBD", "VBP"):
        return f"'{words[i].text} {words[i + 1].text}' has no subject"
    if lower[i] in QUANTIFIERS and not (nxt_tag.startswith(("NN", "JJ")) or nxt == "of"):
        return f"'{words[i].text}' without the people it counts"
    return None


def _points_back(words: list, names_it_after_colon: bool = False) -> str | None:
    """A pronoun or a demonstrative in the first words with no noun before it that it could mean. With a colon
    later ("You've probably seen it ...: one partner who ..."), "it" and "this" point ahead, at what follows it."""
    lower = [t.lower_ for t in words]
    plural_noun = singular_noun = False
    for j, (token, low) in enumerate(zip(words[:WINDOW_WORDS], lower)):
        tg = token.tag_
        plural_noun |= tg in ("NNS", "NNPS") or low in PERSON_NOUNS
        singular_noun |= tg in ("NN", "NNP")
        if low in PLURAL_PRONOUNS and not plural_noun:
            return f"'{token.text}' with no noun before it"
        if low in SINGULAR_PRONOUNS and not (singular_noun or plural_noun):
            return f"'{token.text}' with no noun before it"
        before = lower[j - 1] if j else ""
        before_tag = words[j - 1].tag_ if j else ""
        after, after_tag = (lower[j + 1], words[j + 1].tag_) if j + 1 < len(words) else ("", "")
        object_position = before_tag.startswith(("VB", "IN", "TO")) and before not in BE_OR_DO
        if (low == "it" and object_position and not singular_noun and not after_tag.startswith(("VB", "MD"))
                and not names_it_after_colon
                and " ".join(lower[max(0, j - 2):j + 1]) != "think about it"):
            return "'it' with no noun before it"
        if (low in ("this", "that") and tg == "DT" and object_position and not after_tag.startswith(("NN", "JJ"))
                and not (plural_noun or singular_noun) and not names_it_after_colon):
            return f"'{token.text}' points back"  # "talk about this", "see that in somebody else": the thing said before
        if low in DEMONSTRATIVES and tg == "DT" and after not in NAMES_ITS_OWN:
            determiner = after_tag.startswith(("NN", "JJ"))
            if (determiner and j < DETERMINER_WINDOW) or not (determiner or plural_noun or singular_noun):
                return f"'{token.text}' points back"
    return None


def _no_main_clause(doc, n_words: int) -> str | None:
    """The parse of a first sentence that is not a clause: only a subordinate one ("When you listen with
    intention."), a noun phrase ("People that reflect back to you ..."), a verb without its subject ("Gives them that
    feeling ..."). The small parser errs on long caption sentences, so the last two only up to MAX_PARSED_WORDS."""
    if doc.text.rstrip().endswith("?"):
        return None
    sents = list(doc.sents)
    root = sents[0].root if sents else None
    if root is None:
        return None
    deps = {child.dep_ for child in root.children}
    lead = next((t for t in doc if not t.is_punct and t.lower_ not in DISCOURSE_WORDS), None)
    if lead is not None and lead.lower_ in SUBORDINATORS and lead.head == root:
        return f"only a '{lead.text} ...' clause, no main clause"
    if root.tag_ == "VB" and not deps & SUBJECT_DEPS and any(c.dep_ == "aux" and c.tag_ == "TO" for c in root.children):
        return "an infinitive without its clause"
    if n_words > MAX_PARSED_WORDS:
        return None
    if root.pos_ in ("NOUN", "PROPN") and root.lower_ not in QUANTITY_NOUNS:
        return "a noun phrase, no main clause"
    existential = any(c.lower_ in ("here", "there") for c in root.children)  # "So here's a structure ..."
    if root.tag_ in ("VBZ", "VBD", "VBP", "VBG") and not deps & SUBJECT_DEPS and not existential:
        return f"'{root.text}' has no subject"
    return None


def opening_problems(texts: Sequence[str], cache_path: str | os.PathLike | None = None) -> list[str | None]:
    """opening_problem of each text's first sentence, the parser run once over those not in the cache (a SQLite
    table keyed by the first sentence and this code's version: a run after one new transcript parses only its own)."""
    firsts = [first_sentence(t) for t in texts]
    keys = [sha256_hex(f"{_code_version()}\x00{s}") for s in firsts]
    store = SqliteKeyValueStore(cache_path, "opening_problems") if cache_path else None
    found = store.get_many(keys) if store else {}
    todo = [i for i, k in enumerate(keys) if k not in found]
    if todo:
        from pixel_pipeline.core.tagger import parse

        docs = parse([firsts[i] for i in todo])
        new = {keys[i]: opening_problem(firsts[i], doc) or "" for i, doc in zip(todo, docs)}
        if store:
            store.put_many(new)
        found = {**found, **new}
    return [found[k] or None for k in keys]


@functools.lru_cache(maxsize=1)
def _code_version() -> str:
    """Hash of the files whose code decides an opening: editing a rule invalidates the cached answers. Taken once,
    at import (below), so it names the code this process runs."""
    here = Path(__file__).parent
    files = [here / "openings.py", here / "shaping.py", here / "text.py", here.parent / "core" / "tagger.py"]
    return sha256_hex("".join(f.read_text(encoding="utf-8") for f in files))[:16]


_code_version()
