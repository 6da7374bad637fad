"""What makes a generated prompt acceptable as the client's question (issue 3).

A prompt is a natural client question: 6-60 words; its last sentence is a question, and statements before it are
the client speaking about themselves (at least one of them in the first person: "My husband drinks. He yells. What
do I do?" is a client; "Trauma changes people. How ...?" is a lecture); it copies no run of 6 words from
the response (the model must not learn to echo its own answer); it is not a bare topic keyword ("What about
trauma?"). Each rule has a name so rejects and candidate lists can say which one a candidate broke.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pixel_pipeline.prompts.talk_questions import question_spans
from pixel_pipeline.prompts.text import content_words, is_first_person, ngrams, normalise_quotes, sentences, words

# Words that frame a question without saying what it is about: a prompt made only of these plus one topic word
# is a bare keyword.
QUESTION_FRAME_WORDS = frozenset(
    """
    anything approach approaches ask best cope coping deal dealing explain feel good handle help know like mean
    means need okay ok question questions say something talk tell thing things think thoughts understand way ways
    work works try trying effective most tips advice
    """.split()
)

TOO_SHORT = "too_short"
TOO_LONG = "too_long"
NOT_A_QUESTION = "not_a_question"
STATEMENT_NOT_FIRST_PERSON = "statement_not_first_person"
COPIED_NGRAM = "copied_ngram"
BARE_KEYWORD = "bare_keyword"


@dataclass(frozen=True)
class PromptRules:
    min_words: int = 6
    max_words: int = 60
    copied_ngram_words: int = 6
    min_topic_words: int = 2

    def violations(self, prompt: str, response: str | None = None, response_ngrams: set | None = None) -> list[str]:
        """Names of the rules `prompt` breaks (empty when it is acceptable).

        Pass `response_ngrams` (from `self.response_ngrams(response)`) when checking many prompts against one
        response, so the response is tokenised once.
        """
        found: list[str] = []
        tokens = words(prompt)
        if len(tokens) < self.min_words:
            found.append(TOO_SHORT)
        if len(tokens) > self.max_words:
            found.append(TOO_LONG)
        parts = sentences(prompt)
        if not parts or not parts[-1].rstrip("\"')]").endswith("?"):
            found.append(NOT_A_QUESTION)
        else:
            statements = [p for p in parts[:-1] if not p.rstrip("\"')]").endswith("?")]
            if statements and not any(is_first_person(p) for p in statements):
                found.append(STATEMENT_NOT_FIRST_PERSON)
        if response_ngrams is None and response is not None:
            response_ngrams = self.response_ngrams(response)
        if response_ngrams and ngrams(tokens, self.copied_ngram_words) & response_ngrams:
            found.append(COPIED_NGRAM)
        topic = [t for t in content_words(tokens) if t not in QUESTION_FRAME_WORDS]
        if len(set(topic)) < self.min_topic_words:
            found.append(BARE_KEYWORD)
        return found

    def response_ngrams(self, response: str) -> set:
        """Word runs of the response's answer: a question the response itself poses ("So why do we keep going
        back?") may be restated by the prompt (the talk generator does exactly that); copying the answer may not."""
        return ngrams(words(answer_text(response)), self.copied_ngram_words)

    def copied_runs(self, prompt: str, response: str) -> list[str]:
        """The copied word runs themselves (for explaining a failure)."""
        shared = ngrams(words(prompt), self.copied_ngram_words) & self.response_ngrams(response)
        return sorted(" ".join(g) for g in shared)


def answer_text(response: str) -> str:
    """The response without the questions it poses itself (each replaced by a sentence break)."""
    text = normalise_quotes(str(response))
    spans = question_spans(text)
    if not spans:
        return text
    parts, last = [], 0
    for start, end in spans:
        parts.append(text[last:start])
        last = end
    parts.append(text[last:])
    return " . ".join(parts)


def has_copied_ngram(prompts: Sequence[str], responses: Sequence[str], n: int = 6) -> list[int]:
    """Indexes of pairs whose prompt shares an n-word run with its response."""
    rules = PromptRules(copied_ngram_words=n)
    return [i for i, (p, r) in enumerate(zip(prompts, responses)) if ngrams(words(p), n) & rules.response_ngrams(r)]
