"""The talk's title as the client's question: the question the whole talk was made to answer.

A talk's title is written to be what people search for ("Why do people become abusive", "Am I ever going to heal
from my shame", "How to stop procrastinating and heal feelings of paralysis"), so it is the most authentic question
the corpus holds, in the asker's words. The segment files keep it as the transcript file name
(`why_do_people_become_abusive.txt`): underscores for spaces and apostrophes, no punctuation, and series tags, guest
names and subtitles run on after it. This module turns such a name into the client's question, or says why not:

1. words: underscores become spaces and contractions come back ("you re" -> "you're", "dont" -> "don't");
2. the title proper: cut at a number after the first words ("how to spot a narcissist 18 characteristics ..."), at
   a series or guest tag ("part 8", "qanda", "with dr ...", "the mel robbins podcast"), at the tail words the
   channel ends its titles with (learned from its other titles: "complextrauma", "complex trauma prisons"), and at a
   new phrase after a complete question ("... heal from my shame healing shame as part of ...");
3. the question form: a question already ("why do people ...", "am I ever ...") stays; "how to X" asks "How do I
   X?"; a statement after a question word is inverted ("why narcissists don't change" -> "Why don't narcissists
   change?", "why procrastination is tied to X" -> "Why is procrastination tied to X?"); "when X" asks "What happens
   when X?"; the audience's "you" becomes the client's "I" (talk_questions.client_voice);
4. refused: titles that point at something the client never said ("is this your real personality"), that stay too
   short or too long, or whose words the tagger does not read as a clean question (a name left in it).

Which segment of the talk answers the title is decided by the prompt pipeline like any other candidate: the opening
gate, the alignment floor, and one segment per question.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import PurePath

from pixel_pipeline.prompts.talk_questions import AUXILIARY_WORDS

# contractions whose apostrophe became an underscore ("you re", "can t", "trauma s") or vanished ("dont"); "re
# parenting", "big t trauma" and "ph d" are words, not contractions
_SPLIT_CONTRACTION = re.compile(
    r"\b(?:(you|we|they|who|what|there|here|that|it|i) (re|ll|ve|d|s)|(don|doesn|didn|can|won|isn|aren|wasn|weren|"
    r"shouldn|wouldn|couldn|hasn|haven) (t)|(i) (m)|([a-z]{2,}) (s))\b")
_JOINED = {"dont": "don't", "doesnt": "doesn't", "didnt": "didn't", "cant": "can't", "wont": "won't", "isnt": "isn't",
           "arent": "aren't", "youre": "you're", "theyre": "they're", "heres": "here's", "theres": "there's",
           "whats": "what's", "im": "I'm", "ive": "I've", "youve": "you've", "shouldnt": "shouldn't",
           "wouldnt": "wouldn't", "couldnt": "couldn't", "wasnt": "wasn't", "werent": "weren't", "hasnt": "hasn't"}
# where a title's series tag or guest begins ("... part 8", "... qanda with tim", "... with dr jennifer freyd")
TAG_WORDS = frozenset("""part ep episode season qanda w ft feat featuring inspired explained tedx podcast motivation
4k dr phd lmft interview reads official full compilation glossary""".split())
GUEST_WORDS = frozenset("with w ft feat featuring".split())
QUESTION_WORDS = ("why", "how", "what", "when", "where", "who", "which")
AUXILIARIES = AUXILIARY_WORDS | {"didn't", "won't", "shouldn't", "wouldn't", "couldn't"}
FUNCTION_WORDS = frozenset("""a an the and or but of to in on at by for from with about as into like than their your my
our his her its is are was were be""".split())
# a title that points at something the client never said is not their question
DEICTIC = re.compile(r"\b(this|these|those)\b", re.IGNORECASE)
MIN_WORDS, MAX_WORDS = 4, 13
# tags that join two finite verbs into one question ("and", "when", "if", "to", "who")
JOINING_TAGS = frozenset({"CC", "WRB", "WP", "WDT", "IN", "TO"})
# how many of a channel's titles must end with the same words before they count as its tag
MIN_TAG_TITLES = 3


def title_words(file: str) -> str:
    """The talk title of a transcript file name, words and contractions restored ("why_you_can_t_let_go.txt" ->
    "why you can't let go")."""
    stem = PurePath(str(file)).stem if file else ""
    text = " ".join(re.sub(r"[_\-]+", " ", stem).lower().split())
    text = _SPLIT_CONTRACTION.sub(lambda m: "'".join(g for g in m.groups() if g), text)
    text = " ".join(_JOINED.get(w, w) for w in text.split())
    return re.sub(r"\bi\b", "I", text)


def channel_tails(titles: Iterable[str], vocabulary: frozenset[str] = frozenset(), max_words: int = 4) -> set[str]:
    """Word runs that end at least MIN_TAG_TITLES of one channel's titles: its series tag. Two to `max_words` words
    ("complex trauma prisons"), or one word that is not English ("complextrauma"): a channel whose titles often end
    in "trauma" is not tagging them."""
    counts: Counter = Counter()
    for t in set(titles):
        w = t.split()
        counts.update({" ".join(w[-n:]) for n in range(1, min(max_words, len(w) - 1) + 1)})
    return {tail for tail, n in counts.items()
            if n >= MIN_TAG_TITLES and (" " in tail or tail not in vocabulary)}


def title_proper(title: str, tails: set[str] = frozenset(), vocabulary: frozenset[str] | None = None,
                 tags: Sequence[str] | None = None) -> str:
    """The title without its channel tail, series tag, guest or a subtitle after a number.

    `tags`: the tagger's tag per word of `title` (clitics joined), when known: a tail is not cut off a verb
    ("how narcissistic relationships create complex trauma" keeps its object), and "the" after a noun starts a
    subtitle ("... with emotionally immature people the clear method").
    """
    w = title.split()
    tags = list(tags) if tags is not None and len(tags) == len(w) else None
    changed = True
    while changed and w:  # a channel tail, possibly several ("... complex trauma prisons"); never leaving "tied to"
        changed = False
        for n in range(min(4, len(w) - 1), 0, -1):
            before = len(w) - n - 1
            if (" ".join(w[-n:]) in tails and w[before] not in FUNCTION_WORDS
                    and not (tags and tags[before].startswith("VB"))):
                w, changed = w[:-n], True
                break
    for k, word in enumerate(w):
        if k < 3:
            continue
        guest = word in GUEST_WORDS and k + 1 < len(w) and (
            w[k + 1] in TAG_WORDS or (vocabulary is not None and w[k + 1] not in vocabulary))
        subtitle = word == "the" and tags is not None and tags[k - 1] in {"NN", "NNS"}
        if word.isdigit() or word in TAG_WORDS or guest or subtitle:
            w = w[:k]
            break
    # a subtitle that names the topic again after a gerund: "... heal from my shame healing shame as part of ..."
    for j in range(2, len(w)):
        if w[j] == w[j - 2] and w[j - 1].endswith("ing") and w[j] not in FUNCTION_WORDS:
            return " ".join(w[:j - 1])
    return " ".join(w)


def _base_form(verb: str) -> str:
    """Third-person -s verb to its base ("affects" -> "affect", "tries" -> "try", "has" -> "have")."""
    special = {"has": "have", "does": "do", "goes": "go", "is": "be"}
    if verb in special:
        return special[verb]
    if verb.endswith("ies") and len(verb) > 4:
        return verb[:-3] + "y"
    if re.search(r"(ches|shes|sses|xes|zes)$", verb):
        return verb[:-2]
    return verb[:-1] if verb.endswith("s") and not verb.endswith("ss") else verb


def _merged(tokens: Sequence[tuple[str, str, int]]) -> tuple[list[str], list[str]]:
    """Words and tags with clitics joined back ("do" + "n't" -> "don't"; the first part's tag)."""
    words: list[str] = []
    tags: list[str] = []
    for text, tg, _ in tokens:
        if words and (text.startswith("'") or text.lower() == "n't"):
            words[-1] += text
        else:
            words.append(text)
            tags.append(tg)
    return words, tags


def question_form(title: str, tokens: Sequence[tuple[str, str, int]]) -> str | None:
    """The title as a direct question (still in the talk's "you"), or None when it is not one.

    `tokens` are the tagger's (text, tag, offset) for `title`.
    """
    words, tags = _merged(tokens)
    if len(words) < 3:
        return None
    first, second = words[0].lower(), words[1].lower()
    if first == "how" and second == "to":
        return " ".join(["How do I", *words[2:]])
    if first in AUXILIARIES:  # "am I ever going to heal ...", "can the golden child turn ..."
        return " ".join(words)
    if first == "when":
        return " ".join(["What happens when", *words[1:]])
    if first not in QUESTION_WORDS:
        return None
    if second in AUXILIARIES or second in {"happens", "happened"}:  # already a question: "why do people ..."
        return " ".join(words)
    if first == "what" and second == "to":  # "what to expect when ..."
        return " ".join(["What should I", *words[2:]])
    # a statement after the question word: invert its first verb ("why narcissists don't change")
    for k in range(2, len(words)):
        low, tg = words[k].lower(), tags[k]
        if low in {"does", "do", "did"} and not (k + 1 < len(words) and tags[k + 1].startswith("VB")):
            # "what complex trauma does to love": "does" is the main verb
            return " ".join([words[0], low, *words[1:k], "do", *words[k + 1:]])
        if low in AUXILIARIES or tg == "MD":
            return " ".join([words[0], low, *words[1:k], *words[k + 1:]])
        if tg == "VBZ":  # a verb joined to it by "and" takes the base form too ("affects X and leads to Y")
            rest = [_base_form(w.lower()) if t == "VBZ" and words[j - 1].lower() in {"and", "or"} else w
                    for j, (w, t) in enumerate(zip(words[k + 1:], tags[k + 1:]), start=k + 1)]
            return " ".join([words[0], "does", *words[1:k], _base_form(low), *rest])
        if tg == "VBP":
            return " ".join([words[0], "do", *words[1:k], *words[k:]])
        if tg.startswith("VB"):
            return None
    return None


def refusal(question: str | None, tokens: Sequence[tuple[str, str, int]] = (), names: frozenset[str] = frozenset()
            ) -> str | None:
    """Why a title question is not a client's question, or None. `tokens`: the tagger's reading of `question`;
    `names`: the speaker's name words (`speaker_names`)."""
    if question is None:
        return "not_a_question"
    body = re.findall(r"[a-z']+", question.lower())
    if len(body) < MIN_WORDS:
        return "too_short"
    if len(body) > MAX_WORDS:
        return "too_long"
    if DEICTIC.search(question):
        return "points_at_nothing"
    if body[-1] in FUNCTION_WORDS:
        return "cut_mid_phrase"
    content = [w for w in body if len(w) > 3 and w not in FUNCTION_WORDS]
    if len(set(content)) < len(content):
        return "subtitle_left"  # a content word twice: the title's subtitle is still in it
    if names and any(w in names for w in body):
        return "name_left"  # the speaker's own name ("how to calm the voice inside eckhart tolle teachings")
    tags = [tg for _, tg, _ in tokens if tg not in {".", ","}]
    if tags and not any(tg in {"NN", "NNS"} for tg in tags):
        return "no_topic"  # "How do I speak?"
    if tags and tags[-1] in {"VB", "VBP", "VBZ"}:
        return "cut_mid_phrase"  # "Why does shame affect?"
    words = [w.lower() for w, tg, _ in tokens if tg not in {".", ","}]
    # finite verbs, not counting the auxiliary of the question itself ("Why do people become ...")
    # finite verbs (a base form straight after its subject counts: "... others pay the price"), not counting the
    # auxiliary of the question itself ("Why do people become ...")
    finite = [k for k, tg in enumerate(tags)
              if (tg in {"VBZ", "VBP", "VBD", "MD"} or (tg == "VB" and k > 1 and tags[k - 1] in {"NN", "NNS", "PRP"}
                                                        and tags[k - 2] not in {"VBZ", "VBP", "VBD", "MD"}))
              and not (k <= 2 and words[k] in AUXILIARIES | {"do", "ca", "wo"})]
    for a, b in zip(finite, finite[1:]):
        if not any(tg in JOINING_TAGS for tg in tags[a + 1:b]):
            return "two_clauses"  # "What happens when a narcissist is triggered others pay the price?"
    return None


def speaker_names(source: str, vocabulary: frozenset[str]) -> frozenset[str]:
    """The words of a channel id that are not English words: the speaker's name ("eckhart_tolle" -> eckhart, tolle)."""
    return frozenset(w for w in re.split(r"[_\W]+", str(source).lower()) if len(w) > 2 and w not in vocabulary)


def title_questions(files_by_source: dict[str, Sequence[str]]) -> dict[str, tuple[str | None, str]]:
    """file -> (the client's question of its title, or None; "ok" or why not), for every file of every channel.

    A channel's tail words are learned from all its titles, so the whole table of files goes in at once.
    """
    from pixel_pipeline.core.tagger import tag
    from pixel_pipeline.curation.text import english_vocabulary
    from pixel_pipeline.prompts.talk_questions import client_voice

    vocabulary = english_vocabulary()
    out: dict[str, tuple[str | None, str]] = {}
    for source, files in files_by_source.items():
        files = sorted(set(files))
        titles = [title_words(f) for f in files]
        tails = channel_tails(titles, vocabulary)
        proper = [title_proper(t, tails, vocabulary, _merged(toks)[1]) for t, toks in zip(titles, tag(titles))]
        forms = [question_form(p, toks) for p, toks in zip(proper, tag(proper))]
        forms = [f.replace(" and how to ", " and how do I ") if f else None for f in forms]
        asked = [f for f in forms if f]
        voiced = dict(zip(asked, (client_voice(f, toks) for f, toks in zip(asked, tag(asked)))))
        questions = [voiced.get(f) if f else None for f in forms]
        tagged = dict(zip([q for q in questions if q], tag([q for q in questions if q])))
        names = speaker_names(source, vocabulary)
        for file, q in zip(files, questions):
            why = refusal(q, tagged.get(q, ()), names)
            out[file] = (q if why is None else None, why or "ok")
    return out
