"""Question forms for one concept, chosen by what the segment does with it.

A form holds one slot, `{a}`, for the segment's central concept (concepts.central_concepts). Which forms fit
depends on the kind of concept (one heals from a struggle, builds a practice, wants a topic explained: "How do I
heal from boundaries?" is the failure this avoids) and on what the segment does: a segment that explains where
something comes from answers "Where does shame come from?", one that gives steps answers "What can I do about
shame?", one that only talks about it answers "Can you talk about shame?". Agreement words follow the concept's
number: {is} is/are, {does} does/do, {has} has/have, {it} it/them, {it_s} it/they.
The filled question is tagged (tagger.slot_problem): a slot that does not read as a noun phrase is dropped.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from pixel_pipeline.prompts.concepts import Concept
from pixel_pipeline.prompts.text import normalise_quotes

# What the segment says about its concept, recognised in the sentences that name it ("{x}" is the concept's
# spelling, "{s}" a clause start: the concept is what the clause is about, "shame is ...", not "the shame is ...");
# checked in this order, the first with evidence wins. "steps" needs the segment's own how-to wording.
INTENTS: dict[str, str] = {
    "healing": r"\b(?:heal(?:ing)? from|recover(?:ing|y)? from|overcom(?:e|ing)|get(?:ting)? over|healing)\s+(?:(?:your|my|our)\s+)?{x}",
    "steps": r"\b(?:how to|ways? (?:of|to)|strategies (?:for|to)|steps? (?:for|to)|tools? (?:for|to)|wants? to|three things to)\s+"
    r"(?:deal(?:ing)? with|manag(?:e|ing)|handl(?:e|ing)|overcom(?:e|ing)|work(?:ing)? on|build(?:ing)?|set(?:ting)?|identify(?:ing)?)"
    r"\s+(?:(?:your|my|our|the|healthy)\s+)?{x}",
    "origin": r"{s}{x}\s+(?:comes?|came|stems?|grows?)\s+(?:from|out of)|\b(?:roots? of|causes? of|origins? of)\s+(?:(?:your|the|this)\s+)?{x}|{s}{x}\s+(?:develops?|starts?|begins?)\b",
    "definition": r"{s}{x}\s+(?:is|are|means?)\s+(?:a|an|the|when|about|basically|simply|really|actually|what|not)\b"
    r"|{s}{x}\s+(?:describes?|refers? to)\b|\bwhat (?:is|are)\s+{x}",
    "effects": r"{s}{x}\s+(?:makes?|causes?|leads?|affects?|keeps?|drives?|shapes?|destroys?|damages?|creates?)\b",
}
GENERAL = "general"

FORMS: dict[str, dict[str, list[str]]] = {
    "struggle": {
        "steps": [
            "What can I actually do about {a} when it starts to take over?",
            "What are some practical steps for dealing with {a}?",
            "Is there anything concrete I can do when {a} shows up in my life?",
            "How do I handle {a} from day to day without it swallowing me?",
            "Where do I start if I want to get a handle on {a}?",
            "What tools actually help with {a} in real life?",
        ],
        "healing": [
            "How does someone actually heal from {a}?",
            "What does recovery from {a} look like in practice?",
            "Can a person really get past {a}, and where does that start?",
            "How do I stop {a} from running my whole life?",
            "I've carried {a} for years. Is it possible to heal from {it}?",
            "What has to change in me to recover from {a}?",
        ],
        "definition": [
            "What exactly is {a}, and how would I recognise {it} in myself?",
            "What {does} {a} actually mean, beyond the buzzword?",
            "How would you define {a} for someone who struggles with {it}?",
        ],
        "effects": [
            "What {does} {a} do to a person over time?",
            "How {does} {a} affect the way someone lives and relates to others?",
            "What {does} {a} lead to in a person's life?",
        ],
        "origin": [
            "Where {does} {a} come from in the first place?",
            "What causes {a} to develop in someone's life?",
            "Why {does} {a} take hold of some people so deeply?",
            "How {does} {a} start, and why {does} {it_s} stick around for so long?",
            "What is really going on underneath {a} for most people?",
            "Why do some of us end up struggling with {a} more than others?",
        ],
        GENERAL: [
            "Can you talk about {a} and what {it_s} really {does} to people?",
            "What {does} {a} do to a person over time?",
            "Could you help me understand {a} and how {it_s} {does} damage?",
            "Why {does} {a} affect people so much, and what {is} {it_s} really about?",
            "Could you talk a little about {a} and what I should know?",
            "I've never really understood {a}. Can you explain {it}?",
            "What should I understand about {a} in my own life?",
            "I think {a} {is} part of what I'm dealing with. What would you want me to know?",
            "What's important to know about {a}?",
            "I'm trying to make sense of {a}. Could you say more about {it}?",
            "{a} {keeps} coming up for me. Where should I start in understanding {it}?",
            "People keep mentioning {a} to me. What {is} {it_s} really about?",
            "How would you explain {a} to someone who is just starting to look at {it}?",
            "What do you wish more people understood about {a}?",
            "Could you help me get my head around {a}?",
        ],
    },
    "practice": {
        "steps": [
            "How do I actually get better at {a} in everyday life?",
            "What are practical ways to start working on {a}?",
            "Where do I begin if I've never been good at {a}?",
            "What {does} {a} look like day to day for someone learning {it}?",
            "What small steps help someone build {a}?",
        ],
        "healing": [
            "What role {does} {a} play in healing from a painful past?",
            "How {does} {a} help someone recover from what they went through?",
            "Why {is} {a} such an important part of getting better?",
            "How {does} {a} fit into healing from trauma?",
        ],
        "definition": [
            "What {is} {a}, really, when you strip away the clichés?",
            "What {does} {a} actually mean in practice?",
        ],
        "effects": [
            "What changes in a person's life when {it_s} {has} {a}?",
            "Why {does} {a} make such a difference for mental health?",
        ],
        "origin": [
            "Why {is} {a} so hard for people who grew up in difficult homes?",
            "Why didn't I learn {a} growing up, and can I still learn {it} now?",
            "Why {does} {a} feel so difficult for some people?",
            "What gets in the way of {a} for people like me?",
        ],
        GENERAL: [
            "Can you talk about {a} and why {it_s} {is} so important?",
            "What does healthy {a} actually look like in a person's life?",
            "Why {does} {a} matter so much for mental health?",
            "What should someone know about {a} before working on {it}?",
            "I've never really understood {a}. Can you explain {it}?",
        ],
    },
    "topic": {
        "steps": [
            "How do I deal with {a} in my own life?",
            "What can I do differently once I understand {a}?",
            "What practical advice would you give about {a}?",
        ],
        "healing": [
            "What part {does} {a} play in someone's healing?",
            "How does understanding {a} help a person heal?",
            "Where {does} {a} come into recovery from trauma?",
        ],
        "definition": [
            "What exactly {is} {a}, in plain words?",
            "How would you explain what {a} {is} to someone new to this?",
        ],
        "effects": [
            "How {does} {a} shape the way a person thinks and acts?",
            "What {does} {a} do to someone's relationships?",
        ],
        "origin": [
            "Where {does} {a} come from, and how {does} {it_s} develop?",
            "How {does} {a} develop over someone's life?",
            "What shapes {a} early in a person's life?",
        ],
        GENERAL: [
            "Can you explain {a} in a way that makes sense?",
            "What should a person understand about {a}?",
            "Can you talk about {a} and why {it_s} {matters}?",
            "I keep hearing about {a}. What should I know about {it}?",
        ],
    },
    "person": {  # someone the client deals with: no form refers back to them as "it"
        "steps": [
            "How do I deal with {a} without losing myself?",
            "How do I protect myself from {a}?",
            "What can I do when I have to deal with {a} every day?",
        ],
        "healing": [
            "How do I heal after years of dealing with {a}?",
            "What does recovery look like after growing up with {a}?",
        ],
        "definition": [
            "How would I recognise {a} in my own family?",
            "What are the signs that I'm dealing with {a}?",
        ],
        "effects": [
            "What does growing up with {a} do to a person?",
            "How {does} {a} affect the people closest to them?",
        ],
        "origin": [
            "Why {does} {a} behave this way?",
            "What is really going on underneath the behaviour of {a}?",
        ],
        GENERAL: [
            "What should I know before I confront {a} in my life?",
            "Why {is} {a} so hard to deal with?",
            "How do I deal with {a} without losing myself?",
            "What is really going on with {a}?",
        ],
    },
}

# Two concepts the segment's opening links in one sentence (concepts.linked_concept): {a} the central one, {b} the
# other. Read in session 9 (docs/prompts.md): "What's the connection ..." and "How are ... connected?" were answered
# 9 times in 15; "Can you explain how {a} ties in with {b}?" (2 of 6) and "Why do {a} and {b} so often show up
# together?" (1 of 3) were not kept.
LINKED_FORMS: list[str] = [
    "What's the connection between {a} and {b}?",
    "How are {a} and {b} connected?",
]

_AGREEMENT = {
    False: {"is": "is", "does": "does", "has": "has", "it": "it", "it_s": "it", "matters": "matters", "keeps": "keeps"},
    True: {"is": "are", "does": "do", "has": "have", "it": "them", "it_s": "they", "matters": "matter", "keeps": "keep"},
}


def opening(text: str, n_words: int) -> str:
    """The first `n_words` words: what a reader of the pair sees answer the question first."""
    return " ".join(normalise_quotes(str(text)).lower().split()[:n_words])


_CLAUSE_START = r"(?:^|[.!?;:,]\s*|\b(?:and|but|so|because|that)\s+)(?:(?:chronic|toxic|your|my|our)\s+)?"


def segment_intent(text: str, term: str, within_words: int = 50) -> str | None:
    """What the segment's opening says about `term`: the first intent with evidence in the first `within_words`
    words (the rest of the segment develops the claim); GENERAL when the opening names the term without a claim
    about it; None when the opening does not name it at all."""
    lowered = opening(text, within_words)
    spelling = r"[\s-]+".join(re.escape(w) for w in re.split(r"[\s-]+", term))
    for name, pattern in INTENTS.items():
        if re.search(pattern.replace("{s}", _CLAUSE_START).replace("{x}", spelling), lowered):
            return name
    return GENERAL if re.search(rf"\b{spelling}\b", lowered) else None


def in_client_voice(concept: str) -> str:
    """The educator says "your inner child"; the client asks about "my inner child"."""
    return re.sub(r"\b(your|yours|yourself)\b", lambda m: {"your": "my", "yours": "mine", "yourself": "myself"}[m.group(1)], concept)


def _place(text: str, marker: str, term: str) -> tuple[str, tuple[int, int]]:
    """`text` with its `marker` replaced by `term`, and the term's character span."""
    start = text.index(marker)
    return text.replace(marker, term), (start, start + len(term))


def fill(form: str, concept: Concept) -> tuple[str, tuple[int, int]]:
    """The filled question and the character span of the concept in it."""
    filled = form.format(**dict(_AGREEMENT[concept.plural], a="\x00"))
    text, span = _place(filled, "\x00", in_client_voice(concept.asked))
    return text[0].upper() + text[1:], span


def fill_linked(form: str, concept: Concept, other: Concept) -> tuple[str, list[tuple[int, int]]]:
    """A linked form filled with both concepts, and the character span of each (both are tagged as slots)."""
    text, first = _place(form.format(a="\x00", b="\x01"), "\x00", in_client_voice(concept.asked))
    text, second = _place(text, "\x01", in_client_voice(other.asked))
    return text[0].upper() + text[1:], [first, second]


def concept_forms(concept: Concept, intent: str, n: int, rng: random.Random) -> list[tuple[str, tuple[int, int]]]:
    """Up to `n` distinct filled forms for one concept: forms of the segment's intent first, general ones after."""
    by_intent = FORMS[concept.kind]
    if intent == "healing" and concept.term in {"healing", "recovery"}:
        intent = GENERAL  # "How does healing fit into healing from trauma?"
    pool = list(by_intent.get(intent, by_intent[GENERAL]))
    rng.shuffle(pool)
    return [fill(f, concept) for f in pool[:n]]


def all_forms() -> list[tuple[str, str, str]]:
    """(kind, intent, form) for every form."""
    return [(k, i, f) for k, intents in FORMS.items() for i, forms in intents.items() for f in forms]


def forms_used(kind: str, intents: Sequence[str] | None = None) -> list[str]:
    return [f for i, fs in FORMS[kind].items() if intents is None or i in intents for f in fs]
