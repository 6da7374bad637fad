"""Style-specific question forms in the client's voice, filled with a segment's own key concepts.

Slots `{a}`, `{b}`, `{c}` take the segment's concepts (most relevant first, permuted between candidates). Each
style has many forms so that thousands of segments do not share a handful of sentences; the forms carry the style
(therapeutic: trauma, healing, recovery; educational: explain, understand; empathetic: pain, validation, first
person; practical: concrete steps), the concepts carry what the answer is about.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

STYLE_FORMS: dict[str, list[str]] = {
    "therapeutic": [
        "How do I heal from {a} when I still struggle with {b} every day?",
        "I think my past still affects me through {a}, especially around {b}. How do I begin to heal?",
        "Since what happened to me, I keep running into {a} and {b}. What does recovery actually look like?",
        "My therapist mentioned {a}, and I keep thinking about {b}. How does healing from trauma work with that?",
        "I've been stuck with {a} for years. Can someone really recover, and what role does {b} play?",
        "What part does {a} play in trauma recovery, and how should I work with {b}?",
        "I'm trying to recover, but I keep getting pulled back by {a} and {b}. Why does that happen and how do I heal?",
        "Is it possible to heal from {a} after living with {b} for so long?",
        "When I notice {a} in myself, I feel stuck. How does {b} relate to healing from my past?",
        "What would a healing path look like for someone struggling with {a} and {b}?",
        "I'm in recovery and I keep coming back to {a}. How can I understand it in terms of {b}?",
        "Why do I react so strongly to {a}, and how can working on {b} help me heal?",
        "I've been working through {a}, {b} and {c}. How do these fit together in healing from trauma?",
        "My past left me dealing with {a}, and now {b} and {c} show up everywhere. Where does recovery start?",
        "How can I recover from trauma when {a}, {b} and {c} all seem tangled together?",
        "In my healing journey I keep running into {a}. What do {b} and {c} have to do with it?",
        "I'm afraid I'll never get past {a}. How do {b} and {c} fit into recovering from what I went through?",
        "I'd like to understand my own healing better. What role do {a} and {b} play in it?",
    ],
    "educational": [
        "Can you explain the idea of {a} and how it relates to {b}?",
        "I keep hearing about {a}. What does it actually mean, and why does {b} matter?",
        "What is the mechanism behind {a}, and what is its connection to {b}?",
        "What's the difference between {a} and {b}, and why does it matter for my mental health?",
        "I want to understand {a} better. What's really going on with {b}?",
        "Could you help me understand the causes of {a} and the role of {b}?",
        "What does the research say about {a}, especially when it comes to {b}?",
        "Why do people experience {a}, and what does {b} have to do with it?",
        "Can you walk me through the science of {a} and how it connects to {b}?",
        "What should I know about {a} if I want to understand {b}?",
        "How would you explain {a} to someone who has never heard of {b}?",
        "I'm trying to make sense of {a}. How is it connected to {b}?",
        "I'd like to understand the bigger picture. How do {a}, {b} and {c} relate to each other?",
        "Can you explain the link between {a}, {b} and {c} in plain language?",
        "I'm learning about {a}. What should I understand about {b} and {c}?",
        "What is actually happening with {a}, and how do {b} and {c} come into it?",
        "What ties {a} so closely to {b}, and what does {c} add to the picture?",
    ],
    "empathetic": [
        "I feel so alone with {a}, and nobody seems to understand {b}. Is it normal to feel this way?",
        "Lately I've been having a really hard time with {a}, and thinking about {b} makes it worse. Am I wrong to feel like this?",
        "I'm hurting because of {a}, and I can't stop thinking about {b}. Is something wrong with me?",
        "Everyone tells me to move on from {a}, but everything about {b} still hurts. Why can't I just let it go?",
        "I feel ashamed about {a} and about {b}. Is it okay to feel this way?",
        "I'm exhausted from dealing with {a}. Does anyone else struggle with {b} like this?",
        "I cry when I think about {a}, and thinking about {b} doesn't help. Is my pain valid?",
        "Why do I still hurt so much over {a}, even when I try to focus on {b}?",
        "I've never told anyone about {a} or {b}. Will it ever feel less heavy?",
        "I feel defined by {a}, and my struggle with {b} only makes it worse. How do I stop feeling this way?",
        "I feel like a mess whenever I think about {a}, and I'm scared of {b}. Is that a normal reaction?",
        "Sometimes I feel invisible because of {a}, especially around {b}. How do I stop feeling so broken?",
        "Between {a}, {b} and {c}, I feel completely overwhelmed. Is it okay that I'm struggling this much?",
        "I'm so tired of {a}, {b} and {c} weighing on me. Will I ever feel okay again?",
        "Nobody around me understands {a}, and I feel so alone with {b} and {c}. Is what I feel valid?",
        "My heart hurts whenever I think about {a}, and {b} and {c} make it worse. Am I too sensitive?",
        "I feel guilty for struggling with {a}. Is it wrong that {b} and {c} still affect me?",
    ],
    "practical": [
        "What are concrete steps I can take to deal with {a}, especially when I'm also dealing with {b}?",
        "What can I do day to day to work on {a} and {b}?",
        "Could you give me a practical plan for handling {a}, and for the moments when I run into {b}?",
        "What exercises help with {a}, and how often should I practise them for {b}?",
        "Where do I start if I want to work on {a}? Is there a simple routine for {b}?",
        "I want to work on {a} this week. What specific things can I try around {b}?",
        "How do I set up habits that help with {a} and keep {b} under control?",
        "When I'm in the middle of {a}, what should I actually do, and how does {b} fit in?",
        "What are some tools I can use at home for {a} and {b}?",
        "How can I work on {a} in real life when I'm also dealing with {b}?",
        "What's a realistic first step with {a}, and what should I do about {b}?",
        "Can you break down how to handle {a} step by step, including {b}?",
        "What practical steps can I take for {a}, {b} and {c}?",
        "I need a plan: how do I handle {a}, {b} and {c} in my daily routine?",
        "What should I try first for {a}, and how do I keep working on {b} and {c}?",
        "Which small daily actions help with {a}, {b} and {c}?",
        "If I only have ten minutes a day, how should I work on {a}, {b} and {c}?",
    ],
}

# Used when a segment yields a single concept.
SINGLE_CONCEPT_FORMS: dict[str, list[str]] = {
    "therapeutic": [
        "I've been struggling with {a} since a painful time in my life. How do I begin to heal from it?",
        "What does recovery from {a} look like for someone who has been through trauma?",
    ],
    "educational": [
        "Can you explain what {a} is and why it affects people the way it does?",
        "I keep hearing the term {a}. What does it actually mean for my mental health?",
    ],
    "empathetic": [
        "I feel so alone with {a}, like nobody understands what it's like. Is it okay to feel this way?",
        "I'm hurting because of {a} and I don't know who to talk to. Is my pain valid?",
    ],
    "practical": [
        "What are some concrete steps I can take to work on {a} in my daily life?",
        "Where should I start if I want to handle {a} better this week?",
    ],
}

_SLOTS = re.compile(r"\{([abc])\}")
# Orders in which the top concepts fill {a}, {b}, {c}: candidate i uses PERMUTATIONS[i % len].
PERMUTATIONS = [(0, 1, 2), (1, 0, 2), (0, 2, 1), (2, 0, 1), (1, 2, 0), (0, 1, 3), (0, 3, 1), (2, 1, 0)]


def forms_for(style: str | None) -> list[str]:
    if style in STYLE_FORMS:
        return STYLE_FORMS[style]
    return [f for forms in STYLE_FORMS.values() for f in forms]


def slot_count(form: str) -> int:
    return len(set(_SLOTS.findall(form)))


_SECOND_PERSON = {"your": "my", "yours": "mine", "yourself": "myself", "you": "me"}
_SECOND_PERSON_RE = re.compile(r"\b(your|yours|yourself|you)\b")


def in_client_voice(concept: str) -> str:
    """The educator says "missing your mother"; the client asks about "missing my mother"."""
    return _SECOND_PERSON_RE.sub(lambda m: _SECOND_PERSON[m.group(1)], concept)


def fill_templates(concepts: Sequence[str], style: str | None, n_candidates: int, rng: random.Random) -> list[tuple[str, tuple[str, ...]]]:
    """Up to `n_candidates` distinct (question, concepts used) pairs for one segment."""
    concepts = [in_client_voice(c) for c in concepts if c]
    if not concepts:
        return []
    if len(concepts) == 1:
        pool = SINGLE_CONCEPT_FORMS.get(style) or [f for fs in SINGLE_CONCEPT_FORMS.values() for f in fs]
    else:
        pool = [f for f in forms_for(style) if slot_count(f) <= len(concepts)]
    forms = rng.sample(pool, k=min(n_candidates, len(pool)))
    out: list[tuple[str, tuple[str, ...]]] = []
    seen: set[str] = set()
    for i, form in enumerate(forms):
        order = [j for j in PERMUTATIONS[i % len(PERMUTATIONS)] if j < len(concepts)]
        order += [j for j in range(len(concepts)) if j not in order]
        slots = dict(zip("abc", (concepts[j] for j in order)))
        used = tuple(slots[s] for s in sorted(set(_SLOTS.findall(form))))
        question = _SLOTS.sub(lambda m: slots[m.group(1)], form)
        question = question[0].upper() + question[1:]
        if question not in seen:
            seen.add(question)
            out.append((question, used))
    return out
