"""The questions a talk poses itself ("So why do we keep going back?"), turned into the client's question.

Educators ask the question they are about to answer, and podcast hosts ask the educator. The transcripts carry no
question marks (captions are punctuated with full stops only), so a question is recognised by its shape: after
leading discourse words ("so", "and", "now"), it opens with a question word followed by an auxiliary ("why do",
"how can", "what happens") or with an inverted auxiliary ("do you", "can we", "is there").

A posed question becomes a prompt only when a reader would take it as a question someone asks and the rest of the
segment as its answer: it is early enough that most of the segment follows it, it names a topic of the field
(field vocabulary) instead of pointing back at the talk ("what does that look like"), it is not about third
persons of a story ("does she stand up to dad"), and it reads cleanly (no restarts, no talk-show asides).
The audience's generic "you" becomes the client's "I" ("How do you know if you're in a trauma bond" ->
"How do I know if I'm in a trauma bond?"); a question the host addresses to the educator keeps "you".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pixel_pipeline.prompts.text import normalise_quotes

_SENTENCE = re.compile(r"[^.!?]+[.!?]*")
_LEAD = re.compile(
    r"^(?:(?:so|and|but|now|well|okay|ok|then|or|because|like|right|yeah|um|uh|oh|and so|you know)\b[,\s]*)+", re.I
)
_AUX = r"do|does|did|is|are|was|were|can|could|should|would|will|have|has|am|don't|doesn't|can't|isn't|aren't"
_QUESTION = re.compile(
    rf"^(?:(?:why|how|what|when|where|who)(?:'s)?\s+(?:{_AUX}|happens|makes|causes|drives|keeps)\b"
    rf"|how\s+(?:much|many|long|often)\b"
    rf"|why\b"
    rf"|(?:{_AUX})\s+(?:i|you|we|people|someone|there)\b)",
    re.I,
)
# Questions about the talk itself, not about anything a client brings.
_META = re.compile(
    r"\b(this video|today|episode|podcast|book|chapter|slide|talk about today|i mean|you mean|did i|do you guys|"
    r"you know what|guess what|make sense|right now|last week|next week|this weekend|comment|subscribe|"
    r"what's up|how are you|remember|want to know|guess)\b",
    re.I,
)
# Third persons of a story or a single speaker's anecdote: the client cannot ask about them. "They" counts only as
# the question's subject ("how do they engender loyalty"); later it usually refers back inside the question.
_STORY_PRONOUNS = re.compile(r"\b(he|she|him|her|his|hers|himself|herself|mom|dad)\b|^\w+\s+(?:\w+\s+)?(they|them|their)\b", re.I)
# How a talk introduces a question it was asked: "A lot of you ask me, ...", "Someone wrote to me: ...".
_ASKED_INTRO = re.compile(
    r"^(?:(?:a lot of|many of|some of)\s+(?:you|people)|people|someone|somebody|a client|clients|a listener|listeners)"
    r"\s+(?:often\s+|always\s+)?(?:ask|asks|asked|wrote|write|writes|wrote in)(?:\s+(?:to\s+)?me)?(?:\s+this)?[:,]?\s+"
    r"|^(?:the|a)\s+question\s+(?:i\s+get(?:\s+asked)?|people ask|is)(?:\s+(?:a lot|all the time|most))?[:,]?\s+",
    re.I,
)
# A question resting on "that" / "this" / "it" alone points back at the talk ("how does that affect your behaviour").
_ANAPHOR = re.compile(r"^(?:\w+\s+){0,3}(?:that|this|it|these|those)\b(?!\s+(?:is|are)\s+\w+ing)", re.I)
# Later in the question a demonstrative standing alone ("put boundaries around that if ...") or pointing at a kind
# ("in that type of relationship") also rests on what the talk said before: the client never said it.
_DANGLING_DEMONSTRATIVE = re.compile(
    r"\b(?:that|this|these|those)(?:\s*$|\s+(?:if|when|because|and|or|but|so|while|without|after|before)\b)"
    r"|\b(?:that|this|these|those)\s+(?:type|types|kind|kinds|sort|sorts)\s+of\b",
    re.I,
)


# "What can happen ... is you can have flashbacks": a statement shaped like a question (a pseudo-cleft).
_STATEMENT_SHAPE = re.compile(
    r"^(?!(?:what|how|why|where|who)\s+(?:is|are|was|were)\b)\w+\s+\w+\s+.*\b(?:is|was)\s+"
    r"(?:you|we|i|they|that|to|the|a|it|when|because|as|if|how|what|at)\b"
    r"|^what\b(?!\s+(?:is|are|was|were)\b).*\s(?:is|was)\s",
    re.I,
)
_TWO_COPULAS = re.compile(r"^\w+.*\b(?:is|was)\b.*\b(?:is|was)\b", re.I)  # "What is wild about this is that ..."
# "Did you go no contact because ...": the speaker asks the audience about their own past, not a client's question.
_TO_THE_AUDIENCE = re.compile(r"^(?:did|were|have|had)\s+you\b", re.I)
_BAD_AGREEMENT = re.compile(r"^(?:is|was)\s+(?:i|you|we)\b|^are\s+i\b|^am\s+(?:you|we)\b|^how many of (?:you|us)\b", re.I)


@dataclass(frozen=True)
class PosedQuestion:
    text: str  # the sentence as spoken, leading discourse words removed, no final punctuation
    start: int  # character offset of the sentence in the segment
    end: int
    words_before: int
    words_after: int
    follows: str = ""  # the 150 words after the question: where its answer is


def posed_questions(text: str) -> list[PosedQuestion]:
    """Every sentence of `text` shaped like a question (no filtering for quality)."""
    text = normalise_quotes(str(text))
    spans = [(m.start(), m.end()) for m in _SENTENCE.finditer(text) if m.group().strip()]
    counts = [len(text[s:e].split()) for s, e in spans]
    total = sum(counts)
    out, before = [], 0
    for (s, e), n in zip(spans, counts):
        sentence = text[s:e].strip()
        core = _LEAD.sub("", _ASKED_INTRO.sub("", _LEAD.sub("", sentence).strip())).strip().rstrip(".!?").strip()
        if core and _QUESTION.match(core):
            out.append(PosedQuestion(core, s, e, before, total - before - n, " ".join(text[e:].split()[:150])))
        before += n
    return out


def question_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the posed questions: the part of a response that restates its question, not the answer."""
    return [(q.start, q.end) for q in posed_questions(text)]


@dataclass(frozen=True)
class TalkQuestionRules:
    min_words: int = 5
    max_words: int = 25
    min_words_after: int = 80  # the answer that follows
    max_words_before: int = 200  # the question opens the segment; said later, the segment is not its answer
    topic_returns: int = 2  # the question's field topic is named this often in the 150 words after it


def screen(question: PosedQuestion, rules: TalkQuestionRules, field_terms) -> str | None:
    """Why a posed question cannot be the client's question (None when it can).

    `field_terms(text) -> Counter` counts the field vocabulary's terms (concepts.term_mentions)."""
    n = len(question.text.split())
    if n < rules.min_words:
        return "too_short"
    if n > rules.max_words:
        return "too_long"
    if question.words_after < rules.min_words_after:
        return "no_answer_follows"
    if question.words_before > rules.max_words_before:
        return "late_in_segment"
    if _META.search(question.text):
        return "about_the_talk"
    if _STORY_PRONOUNS.search(question.text):
        return "third_person_story"
    if _ANAPHOR.match(question.text) or _DANGLING_DEMONSTRATIVE.search(question.text):
        return "points_back"
    if _TO_THE_AUDIENCE.match(question.text):
        return "addressed_to_the_audience"
    terms = field_terms(question.text)
    if not terms:
        return "no_field_topic"
    after = field_terms(question.follows)
    if max(after.get(t, 0) for t in terms) < rules.topic_returns:
        return "topic_not_answered"
    words = question.text.lower().split()
    if any(a == b for a, b in zip(words, words[1:])):
        return "repeated_word"
    if _STATEMENT_SHAPE.match(question.text) or _BAD_AGREEMENT.search(question.text) or _TWO_COPULAS.search(question.text):
        return "not_a_real_question"
    return None


_SUBJECT_SWAP = {
    "you're": "I'm",
    "you've": "I've",
    "you'd": "I'd",
    "you'll": "I'll",
    "your": "my",
    "yours": "mine",
    "yourself": "myself",
    "yourselves": "myself",
}
_VERB_AFTER_I = {"are": "am", "were": "was", "aren't": "am not", "weren't": "wasn't", "'re": "'m"}
AUXILIARY_WORDS = frozenset(_AUX.split("|"))  # also what prompts.titles inverts
_AUXILIARIES = AUXILIARY_WORDS | {"are", "were", "may", "might", "must"}
# "Can you talk about ...", "What do you think ...": a question put to the educator keeps its "you".
_TO_THE_EDUCATOR = re.compile(
    r"^(?:(?:can|could|would|will)\s+you\s+(?:talk|tell|explain|share|describe|say|walk|help|give|unpack|expand|speak)"
    r"|(?:what|how|why)?\s*(?:do|did)\s+you\s+(?:think|believe|see|find|mean|recommend|suggest)|have\s+you\s+(?:seen|found|noticed|ever)"
    r"|.*\b(?:you've seen|your (?:practice|work|research|book|clients|patients|career|experience|own story))"
    r")\b",
    re.I,
)


def client_voice(question: str, tokens: Sequence[tuple[str, str, int]]) -> str | None:
    """The question in the client's first person, or None when the tags show it is not clean speech.

    `tokens` are the tagger's (text, tag, offset) for `question`. "you" as a subject becomes "I" (its verb agrees:
    "are you" -> "am I"), after a verb or preposition it becomes "me". A capitalised word in the middle that the
    tagger does not call a name is a restart ("Is that Are you optimistic"): not clean.
    """
    keep_you = bool(_TO_THE_EDUCATOR.match(question)) or any(
        w.lower() == "you" and k + 1 < len(tokens) and tokens[k + 1][1] in {"VBD"} for k, (w, _, _) in enumerate(tokens)
    )
    out: list[str] = []
    prev_tag = ""
    for k, (word, tg, _) in enumerate(tokens):
        low = word.lower()
        if k > 0 and word[:1].isupper() and word != "I" and tg not in {"NNP", "NNPS"} and not word.startswith("I'"):
            return None
        if tg in {"NNP", "NNPS"} and k > 0:
            return None  # a name: the client's question is not about a person of the talk
        if keep_you:
            out.append(word) if not (word.startswith("'") or low == "n't") or not out else out.__setitem__(-1, out[-1] + word)
        elif low in _SUBJECT_SWAP:
            out.append(_SUBJECT_SWAP[low])
        elif low == "you":
            prev = out[-1].lower() if out else ""
            nxt_word, nxt_tag = (tokens[k + 1][0], tokens[k + 1][1]) if k + 1 < len(tokens) else ("", "")
            subject = nxt_word.startswith("'") or nxt_tag.startswith(("VB", "MD")) or nxt_tag == "RB"
            if not subject and prev_tag in {"IN", "TO"} or (prev_tag.startswith("VB") and prev not in _AUXILIARIES):
                out.append("me")
            else:
                out.append("I")
                if out[-2:-1] and out[-2].lower() in _VERB_AFTER_I:
                    out[-2] = _VERB_AFTER_I[out[-2].lower()].capitalize() if k == 1 else _VERB_AFTER_I[out[-2].lower()]
        elif low in _VERB_AFTER_I and out and out[-1] == "I":
            if low.startswith("'"):
                out[-1] = "I" + _VERB_AFTER_I[low]
                prev_tag = tg
                continue
            out.append(_VERB_AFTER_I[low])
        elif low == "n't" and out:
            out[-1] = out[-1] + "n't"
            prev_tag = tg
            continue
        elif low.startswith("'") and out:
            out[-1] = out[-1] + word
            prev_tag = tg
            continue
        else:
            out.append(word)
        prev_tag = tg
    if not out:
        return None
    text = " ".join(out)
    text = re.sub(r"\s+([,;:])", r"\1", text).strip(" ,;:")
    text = re.sub(r"\s*-\s*", "-", text)
    return text[0].upper() + text[1:] + "?"
