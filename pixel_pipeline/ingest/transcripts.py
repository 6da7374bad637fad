"""Transcript cleaning and sentence-boundary segmentation (pure text in, list of segment texts out).

Cleaning handles what caption exports contain: SRT/VTT headers, cue numbers and `00:01:02,500 --> ...` lines,
inline timestamps (`(00:12)`, `[01:02:03]`, `<00:00:01.000>`), sound tags (`[Music]`, `(applause)`, `♪`), HTML tags
and entities (`&amp;`, `&#39;`, `&nbsp;`), upper-case speaker labels (`DEV:`, `>> CARLA:`), rolling-caption repeats of the previous line, and spaces before
punctuation (" , it's"), and invisible format characters (zero-width, bidi controls: ingest.text.INVISIBLE_RE). One caption per line and wrapped paragraphs both become running text.
"""

from __future__ import annotations

import html
import re

from pixel_pipeline.ingest.text import strip_invisible

TIMESTAMP = r"\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d{1,3})?"
CUE_LINE_RE = re.compile(rf"^\s*{TIMESTAMP}\s*-->\s*{TIMESTAMP}.*$")
CUE_NUMBER_RE = re.compile(r"^\s*\d+\s*$")
VTT_HEADER_RE = re.compile(r"^\s*(WEBVTT|NOTE\b|Kind:|Language:|STYLE\b).*$")
INLINE_TIMESTAMP_RE = re.compile(rf"[\(\[<]\s*{TIMESTAMP}\s*[\)\]>]|^\s*{TIMESTAMP}\s+(?=\S)")
SOUND_TAG_RE = re.compile(
    r"[\[\(]\s*(?:music|applause|laughter|laughs|silence|inaudible|crosstalk|noise|sighs?|coughs?|"
    r"background music|upbeat music|soft music|foreign|no audio|static)\s*[\]\)]",
    re.IGNORECASE,
)
MUSIC_NOTES_RE = re.compile(r"[♪♫♬]+")
HTML_TAG_RE = re.compile(r"</?[a-zA-Z][^<>]{0,80}>")
# Upper-case speaker labels and caption speaker-change marks at a line start: "DEV: ...", ">> CARLA: ...", ">> ..."
SPEAKER_RE = re.compile(r"^\s*(?:>>\s*)?(?:[A-Z][A-Z0-9.'\-]*(?: [A-Z][A-Z0-9.'\-]*){0,3}:\s+)?")
SPACE_BEFORE_PUNCT_RE = re.compile(r"\s+([,.;:!?])")
REPEATED_PUNCT_RE = re.compile(r"([,;:])(?:\s*[,;:])+")
LEADING_PUNCT_RE = re.compile(r"^[\s,.;:!?]+")
WHITESPACE_RE = re.compile(r"\s+")

ABBREVIATIONS = {
    "dr", "mr", "mrs", "ms", "prof", "st", "jr", "sr", "vs", "etc", "e.g", "i.e", "eg", "ie", "no", "vol",
    "fig", "approx", "dept", "mt", "ft", "ph.d", "a.m", "p.m", "u.s", "u.k",
}
# A sentence ends at . ! ? (optionally followed by closing quotes/brackets) and whitespace.
SENTENCE_END_RE = re.compile(r"(?<=[.!?])[\"'”’)\]]*\s+")


def clean_transcript(raw: str) -> str:
    """Running text from a raw transcript (see the module docstring for what is removed)."""
    text = html.unescape(html.unescape(strip_invisible(raw)))  # captions are sometimes double-escaped
    text = strip_invisible(text)  # an entity may have spelled one (&#8203;)
    kept: list[str] = []
    for line in text.splitlines():
        if CUE_LINE_RE.match(line) or CUE_NUMBER_RE.match(line) or VTT_HEADER_RE.match(line):
            continue
        line = HTML_TAG_RE.sub(" ", line)
        line = INLINE_TIMESTAMP_RE.sub(" ", line)
        line = SOUND_TAG_RE.sub(" ", line)
        line = MUSIC_NOTES_RE.sub(" ", line)
        line = SPEAKER_RE.sub("", line)
        line = WHITESPACE_RE.sub(" ", line.replace("\u00a0", " ")).strip()
        if not line or (kept and line == kept[-1]):  # rolling captions repeat the previous line
            continue
        kept.append(line)
    text = " ".join(kept)
    text = SPACE_BEFORE_PUNCT_RE.sub(r"\1", text)
    text = REPEATED_PUNCT_RE.sub(r"\1", text)
    text = LEADING_PUNCT_RE.sub("", text)
    return WHITESPACE_RE.sub(" ", text).strip()


def split_sentences(text: str) -> list[str]:
    """Sentences at . ! ? boundaries, not after common abbreviations (Dr., e.g.) or initials (J.), and, in cased
    text, not before a lower-case word ('"Is it?" she asked.'). All-lower-case captions keep every boundary."""
    matches = list(SENTENCE_END_RE.finditer(text))
    starts = [text[m.end() : m.end() + 1] for m in matches]
    alpha = [c for c in starts if c.isalpha()]
    cased = bool(alpha) and sum(c.isupper() for c in alpha) / len(alpha) >= 0.3
    sentences: list[str] = []
    start = 0
    for match, nxt in zip(matches, starts):
        candidate = text[start : match.start()].rstrip()
        last_word = candidate.rsplit(" ", 1)[-1].rstrip(".!?\"'”’)]").lower()
        if candidate.endswith(".") and (last_word in ABBREVIATIONS or (len(last_word) == 1 and last_word.isalpha())):
            continue  # "Dr. Hart", "J. Smith"
        if cased and nxt.islower():
            continue  # '"Is that right?" she asked.'
        sentences.append(text[start : match.end()].strip())
        start = match.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return [s for s in sentences if s]


def split_long_sentence(sentence: str, max_sentence_words: int) -> list[str]:
    """Unpunctuated captions have no boundaries: cut runs longer than `max_sentence_words` into equal word runs."""
    words = sentence.split()
    if len(words) <= max_sentence_words:
        return [sentence]
    n_parts = -(-len(words) // max_sentence_words)
    size = -(-len(words) // n_parts)
    return [" ".join(words[i : i + size]) for i in range(0, len(words), size)]


def cut_segments(
    text: str, target_words: int = 350, min_tail_words: int = 100, max_words: int = 5000, max_sentence_words: int = 80
) -> list[str]:
    """Group whole sentences into segments of about `target_words` words.

    A segment closes before a sentence when stopping there is closer to the target than including it, or when
    including it would pass `max_words`. A last piece shorter than `min_tail_words` joins the previous segment.
    """
    units: list[tuple[str, int]] = []
    for sentence in split_sentences(text):
        for piece in split_long_sentence(sentence, max_sentence_words):
            units.append((piece, len(piece.split())))
    segments: list[list[str]] = []
    counts: list[int] = []
    current: list[str] = []
    count = 0
    for piece, n in units:
        closer_without = abs(count - target_words) <= abs(count + n - target_words)
        if current and (closer_without or count + n > max_words):
            segments.append(current)
            counts.append(count)
            current, count = [], 0
        current.append(piece)
        count += n
    if current:
        if segments and count < min_tail_words and counts[-1] + count <= max_words:
            segments[-1].extend(current)
        else:
            segments.append(current)
    return [" ".join(parts) for parts in segments]
