"""Small text helpers shared by the ingest modules: decoding, word counts, file-name sanitising, snippets."""

from __future__ import annotations

import hashlib
import ntpath
import posixpath
import re

from pixel_pipeline.core.ids import ID_HEX_DIGITS

# C0 controls other than tab / newline / carriage return, plus DEL: never part of a transcript.
CONTROL_CHAR_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
SURROGATE_RE = re.compile(r"[\ud800-\udfff]")
# Invisible format characters with no place in English talk: zero-width space / non-joiner / joiner, word joiner,
# BOM / zero-width no-break space, soft hyphen, and the bidi controls (LRM, RLM, ALM, embeddings, overrides,
# isolates). They make equal-looking texts differ (dedup, ids) and bidi overrides make a text display other than it
# reads. Removed where ingestion cleans a text (transcripts, conversation turns); see docs/ingestion.md.
INVISIBLE_RE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]")
# Letters of scripts other than Latin that speech recognition splices into English text.
NON_LATIN_CHARS = (
    "\u0370-\u03ff"  # Greek
    "\u0400-\u052f"  # Cyrillic
    "\u0590-\u05ff"  # Hebrew
    "\u0600-\u06ff"  # Arabic
    "\u0900-\u097f"  # Devanagari
    "\u0e00-\u0e7f"  # Thai
    "\u3040-\u30ff"  # Hiragana / Katakana
    "\u3400-\u4dbf\u4e00-\u9fff"  # CJK
    "\uac00-\ud7af"  # Hangul
)
NON_LATIN_RUN_RE = re.compile(f"[{NON_LATIN_CHARS}]+(?:[\\s,.]+[{NON_LATIN_CHARS}]+)*")

SNIPPET_CHARS = 200


def strip_invisible(text: str) -> str:
    """The text without INVISIBLE_RE characters."""
    return INVISIBLE_RE.sub("", text)


def count_invisible(text: str) -> int:
    return len(INVISIBLE_RE.findall(text))


def word_count(text: str) -> int:
    """Whitespace-separated words (str.split is ~10x faster than a regex scan on long texts)."""
    return len(text.split())


def raw_bytes(text: str) -> bytes:
    """The bytes a decoded string came from; strings holding undecodable bytes (surrogates) round-trip too."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            return text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return text.encode("utf-8", "surrogatepass")


def bytes_id(data: bytes) -> str:
    """content_id of raw bytes (equal to core.ids.content_id(text) whenever the bytes are valid UTF-8)."""
    return hashlib.sha256(data).hexdigest()[:ID_HEX_DIGITS]


def text_id(text: str) -> str:
    """segment_id of a text as read, also for texts that carry invalid bytes (which go to the rejects)."""
    return bytes_id(raw_bytes(text))


def snippet(value: object, limit: int = SNIPPET_CHARS) -> str:
    """A short printable excerpt for reject details (never the whole 5 MB segment)."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) > limit:
        text = text[:limit] + f"... [{len(text) - limit} more chars]"
    return SURROGATE_RE.sub("\ufffd", text)


def non_latin_runs(text: str, min_chars: int = 3) -> list[str]:
    """Runs of non-Latin letters (Cyrillic, CJK, Greek, ...) of at least `min_chars` letters."""
    runs = []
    for match in NON_LATIN_RUN_RE.finditer(text):
        run = match.group(0)
        if sum(ch.isalpha() for ch in run) >= min_chars:
            runs.append(run)
    return runs


def max_repeat_run(text: str, max_ngram: int = 16) -> tuple[int, str]:
    """Most back-to-back repeats of one word n-gram, n <= max_ngram ("Amen. Amen. Amen." -> (3, "amen"); a stuck
    caption line repeated twenty times -> (20, that line)).

    Where token i equals token i-n for L positions in a row, an n-gram repeats (L + n) // n times; numpy finds the
    longest such stretch for every n at once per text.
    """
    import numpy as np

    tokens = [t.strip(".,!?;:\"'()").lower() for t in text.split()]
    tokens = [t for t in tokens if t]
    if len(tokens) < 2:
        return 1, ""
    vocab: dict[str, int] = {}
    ids = np.fromiter((vocab.setdefault(t, len(vocab)) for t in tokens), dtype=np.int64, count=len(tokens))
    best, best_gram = 1, ""
    for n in range(1, min(max_ngram, len(tokens) // 2) + 1):
        same = np.concatenate(([0], (ids[n:] == ids[:-n]).astype(np.int8), [0]))
        edges = np.flatnonzero(np.diff(same))
        if not len(edges):
            continue
        lengths = edges[1::2] - edges[::2]
        k = int(lengths.argmax())
        repeats = (int(lengths[k]) + n) // n
        if repeats > best:
            start = int(edges[::2][k])
            best, best_gram = repeats, " ".join(tokens[start : start + n])
    return best, best_gram


def sanitise_file_name(value: str) -> tuple[str, str | None]:
    """Base name of a `file` field, and why it was unsafe (None when it was a plain name or a benign path).

    `../../etc/passwd`, absolute paths and names with NUL bytes are unsafe: the caller rejects them. A benign
    relative path such as `talks/part_1.txt` is reduced to `part_1.txt` and kept.
    """
    raw = value.strip()
    if "\x00" in raw:
        return raw.replace("\x00", ""), "contains a NUL byte"
    parts = re.split(r"[\\/]+", raw)
    base = ntpath.basename(posixpath.basename(raw.replace("\\", "/")))
    if any(p == ".." for p in parts):
        return base, "path traversal ('..')"
    if raw.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:[\\/]", raw):
        return base, "absolute path"
    if base in ("", ".", ".."):
        return base, "no file name"
    return base, None
