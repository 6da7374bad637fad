"""Response shaping: the part of a segment a model should learn to say, cut at sentence boundaries.

A talk segment is cut out of a longer transcript by time, so it often starts inside a sentence, carries channel
talk ("in this video", "link in the description", a sponsor read), holds a caption loop ("and they tend to hide,
and they tend to hide, ...") or ends in speech-recognition noise. Shaping, per text:

1. split into sentences; say a caption's stutter once ("There's, there's"), give an inverted question its question
   mark back; mark each one as channel talk (the housekeeping patterns plus video talk), a repeat of an
   earlier sentence, a sentence cut mid-phrase (it ends on "as.", "the.", "very."), garbled (other-script run, or mostly non-words), or an unpunctuated caption run (60+ words
   with no sentence end);
2. collapse phrase loops inside a sentence to one occurrence;
3. drop channel talk and repeats; garbled and caption sentences *split* the text into passages, and the longest
   passage is kept (a garbled tail or a caption run is cut off, not glued across);
4. drop a first sentence that starts mid-thought (lower case or punctuation), then up to MAX_LEANING_OPENERS
   opening sentences that lean on the cut (a conjunction or pronoun first, a referring opener or a demonstrative
   in a short sentence, a stray tail, a verbless fragment, the talk's plan, a stranded relative clause, a list
   opener); a long list opener keeps its topic without the list reference ("Another common thing that happens in
   X is Y" -> "A common thing that happens in X is Y"); drop a last sentence with no sentence end and up to two
   closing sentences that point on to what the segment never reaches: the talk's next item or part ("Next one.",
   "Let's begin with the basics.", "Let's get the hard part out of the way first."), a bare list marker ("One other
   perspective."), a verbless caption scrap ("severe.");
   capitalise the first letter.

What was done is returned as measures (`ShapeResult`), kept as the `shaping` column and in the reject reasons, so a
reader sees why a response is shorter than its segment. Pure functions, linear in text length.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from pixel_pipeline.curation import filters
from pixel_pipeline.curation.text import english_vocabulary, sentences, words

# Video talk that the housekeeping patterns (promotion, sponsor reads, logistics) do not cover: a response should
# never refer to the medium it was cut from.
VIDEO_TALK_RE = re.compile(
    r"\b(welcome (back )?to (my|the|this|our) (channel|video|podcast|show|episode)|welcome back\b|"
    r"(hi|hey|hello),? (everybody|everyone|guys|friends|there)\b|"
    r"subscrib\w*|like and share|hit the bell|description (box )?below|in the description|"
    r"(did|made|do|make) (a|an|another) (whole |new |separate )?(video|episode)|"
    r"down (in|below) (the|in the) (description|comments?)|my (course|program|membership|patreon)\b|"
    r"sponsor(ed)? by|use (the )?code|(today'?s|this|last week'?s|next|previous|other|my last|a previous) (video|episode)|"
    r"(in|on) (this|my|our) (channel|podcast)|see you (next time|in the next)|thanks? (you )?for (watching|listening)|"
    r"leave a comment|comments? (section|below)|link (is )?(in|below|down)|(click|tap) (the|this|on)|"
    r"i'?ll put (a|the) link|check out my|on (my|our) website|"
    # what the viewer sees: a response cannot point at a picture
    r"(a|this|the|that|my) (diagram|chart|graph|whiteboard)s?\b|on (the|your|my) (screen|board)\b|"
    r"(as )?you can see (here|on|in this)|"
    # the talk's own schedule and sign-offs: a response is not one evening of a series
    r"\b(last|next) (week|time|friday|sunday|session)('s)? (we|i|and the)\b|(see|talk to) you (all )?next (week|friday|sunday|session)|"
    r"\b(in|for) (the|this) (next|last|final) (part|session|episode)\b|\b(a|this|our|the) (new )?series\b|"
    r"\b(today|tonight),? (we're|we are|i'm|i am|i want|we want|i'd like) (going )?to (talk|be talking|look|start|continue|finish)|"
    r"thanks? (you )?(to |for )?(all|everybody|everyone) (who|for) (came|joined|joining|coming|being here)|"
    r"\bjoined us (online|tonight|today)|\b(that's|that is) (the end of|all) (our|the) time\b|"
    r"\b(that's|that is) all (for|we have time for) (today|tonight|now)\b|see you back here\b)",
    re.IGNORECASE,
)
FOREIGN_SCRIPT_RE = filters.FOREIGN_SCRIPT_RE
STARTS_MID_RE = re.compile(r"^\s*([a-z]|[,;:.)\]\-–—…'’])")
# A lower-case first word that usually opens a sentence ("the most common myth I hear ...", "so why do we ..."):
# caption text without capitals, not a cut in the middle of a sentence. Anything else lower case ("blamed for
# everything ...", "of the people who ...") is where the cut fell.
SENTENCE_OPENERS = frozenset("""a an the this that these those there here it its i i'm i've we we're our you you're
your my he she they their so but now when what why how if because one some many most people
today yes no okay ok well let let's another every all sometimes maybe imagine remember first second next then
also even just there's that's it's what's here's don't do does is are can""".split())
ENDS_SENTENCE_RE = re.compile(r"[.!?…][\"'”’)]*\s*$")
# a phrase of 2-15 words said 3+ times back to back, or of 5-15 words said twice ("and they pull away from people,
# and they pull away from people"); word-level so punctuation between the copies does not hide it
LOOP_MIN_REPEATS = {2: 3, 3: 3, 4: 3}
LOOP_MAX_PERIOD = 15
# A caption cut mid-phrase leaves a sentence ending in a word no English sentence ends on ("That's very common as.",
# "And they give up all their."): such a sentence teaches a model to stop mid-thought, so it is dropped. Stranded
# prepositions ("someone to talk to.") end sentences in speech and stay.
CUT_END_WORDS = frozenset("the a an and or but as very than my your our their its because whose".split())
# Captions lose the question mark: "How do you protect yourself." / "Would it be better to suppress it." An inverted
# auxiliary before a subject is a question; the mark is put back (the prompt stage reads a talk's own questions).
INVERTED_QUESTION_RE = re.compile(
    r"^(?:(?:so|and|but|now|well|okay),?\s+)?(?:(?:how|why|what|where|when|who)\s+)?"
    r"(?:do|does|did|is|are|was|were|can|could|would|should|will|have|has|am)(?:n't)?\s+"
    r"(?:i|you|we|they|he|she|it|people|there|that|this|anyone|anybody|someone|somebody)\b[^.?!]*\.$",
    re.IGNORECASE,
)
# "There's, there's a shame" / "I, I think": a caption's stutter, said once
STUTTER_RE = re.compile(r"\b(\w+(?:['’]\w+)?)(?:,\s+\1\b)+", re.IGNORECASE)


@dataclass(frozen=True)
class ShapingSettings:
    max_unpunctuated_words: int = 60  # a "sentence" longer than this is caption text without punctuation
    max_sentence_non_word_share: float = 0.5  # a sentence of 8+ words with more non-words than this is garbled
    min_words: int = 30  # the kept passage must still say something on its own (curation's min_words)


@dataclass
class ShapeResult:
    text: str
    original_words: int
    kept_words: int
    channel_talk_sentences: int = 0
    repeated_sentences: int = 0
    loops_collapsed: int = 0
    garbled_sentences: int = 0
    unpunctuated_sentences: int = 0
    cut_sentences: int = 0  # sentences ending on a word no sentence ends on (CUT_END_WORDS), dropped
    questions_marked: int = 0  # caption questions given back their question mark
    dropped_head_words: int = 0  # words before the kept passage (garbled / caption text, a partial first sentence)
    dropped_tail_words: int = 0  # words after it
    actions: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.actions)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "ShapeResult":
        return cls(**d)


# A first sentence that leans on what came before the cut ("And then you say ...", "That is how quickly ...", "They
# have been known to ...", "Same with ...", "Another one is ...", "For example, ...", "All of those ...") reads as the
# middle of a thought even with a capital: up to MAX_LEANING_OPENERS such sentences are dropped at the segment's start.
# "So" stays out: it opens most of a talk's own questions ("So why do we keep going back?").
LEANING_OPENERS = frozenset("""and but or because which that that's then also same plus whereas although though
it it's its they they're them their he she him her his these those""".split())
# Openers that refer to an earlier item ("Another one is ...", "For example, ...", "All of those ..."), and a
# demonstrative pointing back: dropped only in a short sentence (<= MAX_REFERRING_WORDS), since a long first
# sentence that starts this way usually carries its own content ("This one came in last night: someone wrote ...").
REFERRING_OPENERS = frozenset("""this another others again instead otherwise however therefore thus hence likewise
similarly moreover furthermore besides meanwhile secondly thirdly lastly finally""".split())
LEANING_OPENER_PAIRS = frozenset(("for example", "for instance", "all of", "both of", "each of", "none of",
                                  "like i", "as i", "the other", "the second", "the third", "the fourth", "the last",
                                  "the next", "the same", "in addition", "on top", "after that", "in that", "at that",
                                  "number two", "number three", "number four", "number five"))
MAX_REFERRING_WORDS = 20
MAX_LEANING_OPENERS = 5  # a cut can fall before several short sentences of the previous thought
MIN_REWORDED_WORDS = 10  # a list opener this long carries its own topic and is reworded; a shorter one is dropped
# Discourse words a speaker puts before anything ("Now, ...", "So ...", "And also ..."): skipped by the opener tests.
DISCOURSE_WORDS = ("now", "so", "okay", "ok", "well", "and", "alright", "also", "but")
_DISCOURSE = r"^(?:(?:" + "|".join(DISCOURSE_WORDS) + r")\b\s*,?\s*)*"
# what a talk lists: "another thing", "the next step", "the second reason"
_ITEM_WORDS = ("thing step point area piece part level sign trait characteristic stage reason way type kind category "
               "question example issue pattern factor aspect layer component dynamic")
_ITEM = r"(?:things|one|ones|signs|ways|" + "|".join(_ITEM_WORDS.split()) + ")"
# A first sentence that goes on with a list the talk started, at any length: "Another common thing that happens
# within complex trauma is ...", "Next thing I think is important ...", "Now, a couple other things are happening
# with ...", "The list goes on and on ...". However much it says, it says "and here is one more".
CONTINUATION_RE = re.compile(
    _DISCOURSE + r"(?:another\b|next\s*,|additionally\b|furthermore\b|moreover\b|secondly\b|thirdly\b|lastly\b|finally\b|"
    r"(?:the\s+|my\s+|our\s+)?(?:next|second|third|fourth|fifth|last|final|other)\s+(?:\w+\s+)?" + _ITEM + r"\b|"
    r"(?:one|a\s+couple(?:\s+of)?|a\s+few|two|three|some)\s+(?:more|other)\b|the\s+list\s+goes\s+on\b|"
    r"(?:number|point|step)\s+(?:two|three|four|five|six|seven|eight|nine|ten|\d+)\b)",
    re.IGNORECASE,
)
_SINGULAR_ITEM = re.compile(r"(?:" + "|".join(_ITEM_WORDS.split()) + ")$", re.IGNORECASE)


def _capital(text: str) -> str:
    return text[0].upper() + text[1:] if text else text


# "One thing is that it gets worse at night": after the item, a pronoun that points back: nothing stands on its own
_POINTS_BACK_AFTER_ITEM = re.compile(
    r"^(?:\w+\s+){1,3}(?:is|are|was)\s+(?:that\s+)?(?:it|this|that|they|he|she|them)\b", re.IGNORECASE)


def reword_continuation(sentence: str) -> str | None:
    """The first sentence without its reference to the list before the cut, or None when nothing stands without it.

    "Another common thing that happens ... is X" -> "A common thing that happens ... is X"; "Next thing that happens
    is X" -> "One thing that happens is X"; "Now, a couple other things are happening with X" -> "A couple of things
    are happening with X"; "Secondly, X" -> "X"; "Number four, if X" -> "If X". The topic sentence stays (dropping it
    leaves the next sentence leaning on it); "Another one is X", "The list goes on" and plural items say nothing
    without the list, so they go.
    """
    reworded = _reword_continuation(sentence)
    return None if reworded is None or _POINTS_BACK_AFTER_ITEM.match(reworded) else reworded


def _reword_continuation(sentence: str) -> str | None:
    body = re.sub(_DISCOURSE, "", sentence.strip(), flags=re.IGNORECASE)
    m = re.match(r"(?:additionally|furthermore|moreover|secondly|thirdly|lastly|finally|also|next)\s*,\s*(.+)", body,
                 re.IGNORECASE) or re.match(r"(?:number|point|step)\s+\w+\s*[,:]\s*(.+)", body, re.IGNORECASE)
    if m:
        rest = m.group(1)
        return _capital(rest) if len(rest.split()) > MAX_STRAY_WORDS else None
    m = re.match(r"another\s+(\w[\w'-]*)\b(.*)", body, re.IGNORECASE)
    if m:
        word, rest = m.group(1), m.group(2)
        if word.lower() in ("one", "ones", "is", "was", "of", "would", "will", "thing's", "one's"):
            return None
        if _SINGULAR_ITEM.match(word):
            return f"One {word}{rest}"
        return f"{'An' if word[0].lower() in 'aeio' else 'A'} {word}{rest}"
    m = re.match(r"(?:the\s+|my\s+|our\s+)?(?:next|other|second|third|fourth|fifth)\s+(\w+)\b(.*)", body, re.IGNORECASE)
    if m:
        first, rest = m.groups()
        if _SINGULAR_ITEM.match(first):  # "Next thing that happens ..."
            return f"One {first}{rest}"
        second = re.match(r"\s+(\w+)\b(.*)", rest)  # "The next big thing ..."
        if second and _SINGULAR_ITEM.match(second.group(1)):
            return f"One {first} {second.group(1)}{second.group(2)}"
        return None
    m = re.match(r"(one|a\s+couple(?:\s+of)?|a\s+few|two|three|some)\s+(?:more|other)\s+(.+)", body, re.IGNORECASE)
    if m:
        quantity = "a couple of" if m.group(1).lower().startswith("a couple") else m.group(1).lower()
        return _capital(f"{quantity} {m.group(2)}")
    return None


# The talk's plan for the evening as its first sentence ("Let me start by just helping you get an intro ...", "I want
# to talk tonight about ...", "We're going to start on the outside ..."): the talk, not an answer.
TALK_PLAN_RE = re.compile(
    _DISCOURSE + r"(?:(?:today|tonight|here)\s*,?\s+)?(?:i\s+want\s+to|i'd\s+like\s+to|i\s+wanna|let\s+me|let's|"
    r"we're\s+going\s+to|we\s+are\s+going\s+to|we're\s+gonna|i'm\s+going\s+to|i'm\s+gonna|i\s+am\s+going\s+to)\s+"
    r"(?:(?:just|kind\s+of|quickly|briefly|first|now|also|then|again)\s+)*"
    r"(?:start|begin|talk|look\s+at|go\s+(?:through|over|into|back)|dive|cover|teach|walk|continue|move\s+on|finish|"
    r"wrap|get\s+into|jump|introduce|review|recap)\b",
    re.IGNORECASE,
)
# A relative clause left at the cut ("Where they don't even realize what they're doing."), and a first sentence that
# ends pointing back ("... and a lot of people struggle because of that.").
RELATIVE_OPENERS = frozenset("where whereby whom whose".split())
_AUXILIARIES = frozenset("do does did is are was were can could would should will have has am don't doesn't".split())
POINTS_BACK_END_RE = re.compile(r"\b(?:of|to|about|from|with|like|by|on)\s+(?:that|this|those|these)\s*[.!]\W*$",
                                re.IGNORECASE)


MAX_STRAY_WORDS = 4  # "Do you see that." "It is." "Fixed." at the cut: the tail of a thought, not an opening
# A demonstrative in the first words points at what came before the cut ("If you relate to that, ...", "Over time,
# this creates ...", "If a lot of this sounds familiar ..."); not "those who ..." (generic), and not in a question
# (a talk's own question may say "So why do we do this?" and the prompt stage needs it).
POINTS_BACK_RE = re.compile(r"^(?:\S+\s+){0,7}?(?:this|these|those)\b(?!\s+(?:who|which|that|week|weekend|year|month|"
                            r"morning|afternoon|evening|night|time|moment|day|days|season)\b)|"
                            r"^(?:\S+\s+){0,7}?that\s*[,.;:!]", re.IGNORECASE)


def is_fragment(sentence: str, tags: Sequence[str] | None = None) -> bool:
    """A first sentence with no verb that can carry a clause (tagger) is a title or the tail of the previous thought
    ("The different types of boundaries."); a question is left to the prompt stage."""
    from pixel_pipeline.core.tagger import has_clause_verb  # spaCy loads only where a text is shaped

    return (len(sentence.split()) > MAX_STRAY_WORDS and not sentence.rstrip().endswith("?")
            and not has_clause_verb(sentence, tags))


def ends_cut(sentence: str) -> bool:
    """A sentence that ends on a word no sentence ends on: the caption cut it mid-phrase."""
    tail = sentence.rstrip().rstrip("\"'”’)")
    if not tail.endswith("."):
        return False
    last = re.findall(r"[\w']+", tail.lower())
    return bool(last) and last[-1] in CUT_END_WORDS


def mark_question(sentence: str) -> tuple[str, bool]:
    """The sentence with its question mark back when it is an inverted question that ends in a full stop."""
    s = sentence.rstrip()
    if INVERTED_QUESTION_RE.match(s):
        return s[:-1] + "?", True
    return sentence, False


def leans_on_before(sentence: str) -> bool:
    first_two = [re.sub(r"[^\w']", "", w.lower()) for w in sentence.split()[:2]]
    if not first_two or " ".join(first_two) in ("those who", "these who"):  # generic: "Those who grew up ..."
        return False
    n_words = len(sentence.split())
    if first_two[0] in LEANING_OPENERS or n_words <= MAX_STRAY_WORDS:
        return True
    question = sentence.rstrip().endswith("?")
    relative = first_two[0] in RELATIVE_OPENERS and len(first_two) > 1 and first_two[1] not in _AUXILIARIES
    if not question and (relative or CONTINUATION_RE.match(sentence)
                         or TALK_PLAN_RE.match(sentence) or POINTS_BACK_END_RE.search(sentence)):
        return True
    if n_words > MAX_REFERRING_WORDS:
        return False
    return (first_two[0] in REFERRING_OPENERS or " ".join(first_two) in LEANING_OPENER_PAIRS
            or (not sentence.rstrip().endswith("?") and bool(POINTS_BACK_RE.search(sentence))))


# A last sentence that only announces the talk's next item ("Next one.", "I'll just give you one last one.", "Let's
# look at the next one."): the response would end by pointing at something it does not say.
ANNOUNCES_NEXT_RE = re.compile(
    _DISCOURSE + r"(?:(?:the\s+)?next\s+one|i'll\s+(?:just\s+)?give\s+you\s+(?:one|another)|"
    r"let(?:'s|\s+me|\s+us)\s+(?:look\s+at|go\s+to|move\s+on\s+to|do)\s+(?:the\s+next|another|one\s+more)|"
    r"(?:here's|there's)\s+(?:one\s+more|another\s+one|the\s+next\s+one)|one\s+(?:more|last)\s+(?:thing|one))\b",
    re.IGNORECASE,
)
MAX_ANNOUNCE_WORDS = 8
# ... or opens the next item in a short sentence ("The next one we get into are behavior changes."): the answer
# would stop where the next one starts (the talk's plan at the end is closes_on_next's)
NEXT_ITEM_RE = re.compile(_DISCOURSE + r"(?:the\s+)?next\s+(?:\w+\s+)?" + _ITEM + r"\b", re.IGNORECASE)
MAX_NEXT_ITEM_WORDS = 10  # "Next one is you feel very confused at times about ..." is an item of the answer
# at the end, only the speaker's plan for the audience: "I want to go back to what soothes me." is often quoted
_FIRST_PERSON_PLAN = re.compile(_DISCOURSE + r"i(?:'m|\s+am|'d|\s+want|\s+wanna)\b", re.IGNORECASE)


def announces_next(sentence: str) -> bool:
    s, n = sentence.strip(), len(sentence.split())
    return ((n <= MAX_ANNOUNCE_WORDS and bool(ANNOUNCES_NEXT_RE.match(s)))
            or (n <= MAX_NEXT_ITEM_WORDS and bool(NEXT_ITEM_RE.match(s))))


# At the end, more that points on to what the segment never reaches: the talk's plan in a longer sentence ("Let's
# talk about what becomes of these children, because ..."), clearing the way for it ("Let's get the
# bad stuff out of the way first."), a bare list marker ("One other perspective."), and a few words without a verb
# that a caption split off a sentence ("severe.").
MAX_CLOSING_PLAN_WORDS = 30
OUT_OF_THE_WAY_RE = re.compile(_DISCOURSE + r"let(?:'s|\s+me|\s+us)\s+get\b.*\bout\s+of\s+the\s+way\b", re.IGNORECASE)
LIST_MARKER_RE = re.compile(_DISCOURSE + r"(?:that\s+was\s+)?(?:one\s+other|another|one\s+more)\s+(?:\w+\s+)?"
                            r"(?:perspective|example|thing|point|way|area|piece|one|idea|reason|sign|trait)s?\W*$",
                            re.IGNORECASE)
MAX_LIST_MARKER_WORDS = 6


def closes_on_next(sentence: str) -> bool:
    """A last sentence that leaves the answer where the next part of the talk would start."""
    s = re.sub(r"^[\s,;:]+", "", sentence)  # ", , let's talk about ...": commas where the caption dropped a filler
    n = len(s.split())
    if announces_next(s):
        return True
    if n <= MAX_CLOSING_PLAN_WORDS and not _FIRST_PERSON_PLAN.match(s) and (TALK_PLAN_RE.match(s) or OUT_OF_THE_WAY_RE.match(s)):
        return True
    if n <= MAX_LIST_MARKER_WORDS and LIST_MARKER_RE.match(s):
        return True
    if n <= MAX_STRAY_WORDS and s[:1].islower():  # "they fragment." is a sentence the caption left lower-case
        from pixel_pipeline.core.tagger import has_clause_verb

        return not has_clause_verb(s)
    return False


def starts_mid_thought(sentence: str) -> bool:
    """Punctuation first, or a lower-case first word that does not usually open a sentence."""
    if not STARTS_MID_RE.match(sentence):
        return False
    first = sentence.split()[0].lower().strip(",;:") if sentence.split() else ""
    return not (sentence[0].isalpha() and first in SENTENCE_OPENERS)


def _tidy(sentence: str) -> str:
    """Stray commas where a caption dropped a filler word (", , how do we"), and a capital to start the sentence."""
    s = re.sub(r"(?:\s*,){2,}", ",", sentence)
    s = re.sub(r"^[\s,;:]+", "", s)
    s = STUTTER_RE.sub(r"\1", s)
    return s[0].upper() + s[1:] if s and s[0].islower() and len(s.split()) > 1 else s


def _norm(sentence: str) -> str:
    return " ".join(words(sentence))


def _loop_at(hashes: np.ndarray, i: int) -> tuple[int, int] | None:
    """(repeats, period) of the longest back-to-back phrase loop starting at word i, if any."""
    best = None
    for p in range(2, min(LOOP_MAX_PERIOD, (len(hashes) - i) // 2) + 1):
        reps = 1
        while i + (reps + 1) * p <= len(hashes) and np.array_equal(hashes[i + reps * p:i + (reps + 1) * p], hashes[i:i + p]):
            reps += 1
        if reps >= LOOP_MIN_REPEATS.get(p, 2) and (best is None or reps * p > best[0] * best[1]):
            best = (reps, p)
    return best


def collapse_loops(sentence: str) -> tuple[str, int]:
    """The sentence with back-to-back repeats of a phrase kept once; how many loops were collapsed."""
    tokens = sentence.split()
    if len(tokens) < 4:
        return sentence, 0
    # equality within one text only, so the process's own str hash is enough (and 20x cheaper than a stable hash)
    hashes = np.fromiter((hash(re.sub(r"[^\w']", "", t.lower())) for t in tokens), dtype=np.int64, count=len(tokens))
    # a loop of period p needs hashes[i] == hashes[i + p]: look only where some such pair exists (most sentences: none)
    candidates = set()
    for p in range(2, min(LOOP_MAX_PERIOD, len(tokens) // 2) + 1):
        candidates.update(np.flatnonzero(hashes[p:] == hashes[:-p]).tolist())
    if not candidates:
        return sentence, 0
    collapsed, i, out = 0, 0, []
    while i < len(tokens):
        loop = _loop_at(hashes, i) if i in candidates else None
        if loop:
            reps, p = loop
            end = i + reps * p
            # a last, partial copy ("..., and they pull away from people.") ends the phrase with its punctuation
            if end + p - 1 <= len(tokens) and np.array_equal(hashes[end:end + p - 1], hashes[i:i + p - 1]):
                out.extend(tokens[end:end + p - 1])
                end += p - 1
            else:
                out.extend(tokens[i:i + p])
            i = end
            collapsed += 1
        else:
            out.append(tokens[i])
            i += 1
    return (" ".join(out), collapsed) if collapsed else (sentence, 0)


def _garbled_sentence(sentence: str, settings: ShapingSettings) -> bool:
    if FOREIGN_SCRIPT_RE.search(sentence):
        return True
    toks = [w for w in words(sentence) if w.isascii()]
    if len(toks) < 8:
        return False
    vocab = english_vocabulary()
    return sum(w not in vocab for w in toks) / len(toks) > settings.max_sentence_non_word_share


def channel_talk(sentence: str) -> bool:
    """Video talk or a housekeeping sentence (promotion, sponsor read, logistics)."""
    return bool(VIDEO_TALK_RE.search(sentence)) or any(rx.search(sentence) for rx in filters._HOUSEKEEPING_RES.values())


def _mark(sents: list[str], result: ShapeResult, settings: ShapingSettings) -> list[tuple[str, bool]]:
    """(sentence, bad) in order, with channel talk and repeats dropped and loops collapsed; bad sentences (garbled,
    caption runs) split the text into passages."""
    marked: list[tuple[str, bool]] = []
    seen: set[str] = set()
    joined = " ".join(sents)
    any_talk = bool(VIDEO_TALK_RE.search(joined) or filters._HOUSEKEEPING_ANY.search(joined))  # most texts: none
    for s in sents:
        s, loops = collapse_loops(_tidy(s))
        result.loops_collapsed += loops
        key = _norm(s)
        if any_talk and channel_talk(s):
            result.channel_talk_sentences += 1
        elif ends_cut(s):
            result.cut_sentences += 1
        elif key and key in seen and len(key.split()) >= 3:
            result.repeated_sentences += 1
        elif len(s.split()) >= settings.max_unpunctuated_words:  # no sentence end in 60+ words: caption text
            result.unpunctuated_sentences += 1
            marked.append((s, True))
        elif _garbled_sentence(s, settings):
            result.garbled_sentences += 1
            marked.append((s, True))
        else:
            marked.append((s, False))
        seen.add(key)
    return marked


def _longest_passage(marked: list[tuple[str, bool]]) -> tuple[int, int]:
    """[a, b) of the run of good sentences with the most words."""
    best, start = (0, 0, 0), None
    for i, (_, bad) in enumerate(marked + [("", True)]):
        if not bad and start is None:
            start = i
        elif bad and start is not None:
            n = sum(len(x.split()) for x, _ in marked[start:i])
            if n > best[0]:
                best = (n, start, i)
            start = None
    return best[1], best[2]


def shape(text: str, settings: ShapingSettings = ShapingSettings()) -> ShapeResult:
    original_words = len(text.split())
    result = ShapeResult(text=text, original_words=original_words, kept_words=original_words)
    # a caption question gets its mark back first: the opening rules leave a talk's own question alone
    marked_questions = [mark_question(s) for s in sentences(text)]
    sents = [s for s, _ in marked_questions]
    result.questions_marked = sum(marked for _, marked in marked_questions)
    head_words = tail_words = 0
    # the cut points of the segment: a first sentence that starts mid-thought, a last one that never ends
    if sents and starts_mid_thought(sents[0]):
        head_words += len(sents.pop(0).split())
        result.actions.append("dropped a first sentence that starts mid-thought")
    leaning = 0
    while sents:
        long_continuation = len(sents[0].split()) >= MIN_REWORDED_WORDS and CONTINUATION_RE.match(sents[0])
        reworded = reword_continuation(sents[0]) if long_continuation else None
        if reworded:  # a long topic sentence stays, without its "another" / "next": it opens the answer now
            head_words += len(sents[0].split()) - len(reworded.split())
            sents[0] = reworded
            result.actions.append("reworded an opening that goes on with a list before the cut")
            break
        leans = leans_on_before(sents[0]) or ends_cut(sents[0]) or is_fragment(sents[0])
        if leaning >= MAX_LEANING_OPENERS or not leans:
            break
        head_words += len(sents.pop(0).split())
        leaning += 1
    if leaning:
        result.actions.append(f"dropped {leaning} opening sentence(s) that lean on what came before the cut")
    if sents and not ENDS_SENTENCE_RE.search(sents[-1]):
        tail_words += len(sents.pop().split())
        result.actions.append("dropped a last sentence with no sentence end")
    closing = 0
    while sents and closing < 2 and closes_on_next(sents[-1]):
        tail_words += len(sents.pop().split())
        closing += 1
    if closing:
        result.actions.append(f"dropped {closing} closing sentence(s) that announce the talk's next part")
    marked = _mark(sents, result, settings)
    a, b = _longest_passage(marked)
    passage = [s for s, _ in marked[a:b]]
    while passage and not ENDS_SENTENCE_RE.search(passage[-1]):  # a passage cut at a line break
        b -= 1
        passage.pop()
    head_words += sum(len(s.split()) for s, _ in marked[:a])
    tail_words += sum(len(s.split()) for s, _ in marked[b:])
    result.dropped_head_words, result.dropped_tail_words = head_words, tail_words
    for n, what in ((result.channel_talk_sentences, "channel-talk sentence(s) removed"),
                    (result.repeated_sentences, "repeated sentence(s) removed"),
                    (result.cut_sentences, "sentence(s) cut mid-phrase removed"),
                    (result.questions_marked, "question mark(s) restored"),
                    (result.loops_collapsed, "phrase loop(s) collapsed"),
                    (result.garbled_sentences, "garbled sentence(s) found"),
                    (result.unpunctuated_sentences, "unpunctuated caption run(s) found")):
        if n:
            result.actions.append(f"{n} {what}")
    if a > 0 or b < len(marked):
        result.actions.append(f"kept the longest clean passage (dropped {head_words} words before, {tail_words} after)")
    shaped = " ".join(passage).strip()
    result.text = shaped if result.actions or shaped != " ".join(sentences(text)) else text
    result.kept_words = len(result.text.split())
    return result


def stands_alone(result: ShapeResult, settings: ShapingSettings = ShapingSettings()) -> str | None:
    """None when the shaped text can stand as an answer, or was too short before shaping (the length rule says so);
    else the reject reason."""
    if result.kept_words >= settings.min_words or result.original_words < settings.min_words:
        return None
    if result.unpunctuated_sentences and not result.garbled_sentences:
        why = "caption text without sentence punctuation"
    elif result.garbled_sentences:
        why = "garbled passages"
    elif result.channel_talk_sentences:
        why = "mostly channel talk"
    else:
        why = "no complete sentences"
    return (f"shaping: {result.kept_words} of {result.original_words} words left after shaping ({why}; "
            f"min {settings.min_words})")
