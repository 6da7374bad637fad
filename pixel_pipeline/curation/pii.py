"""PII redaction with typed placeholders ([EMAIL], [PHONE], [URL], [ADDRESS], [HANDLE], [NAME]).

Regex-based and linear: one pass per type, in an order where the more specific patterns (emails, URLs) go first so
that their parts are not re-matched as handles or phone numbers. Crisis lines (988, 741741, 1-800-273-8255, 116 123,
...) are public resources, not personal data: they are kept by default (`keep_crisis_lines`).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence

PLACEHOLDERS = {
    "email": "[EMAIL]",
    "url": "[URL]",
    "phone": "[PHONE]",
    "address": "[ADDRESS]",
    "handle": "[HANDLE]",
    "name": "[NAME]",
}
PII_TYPES = tuple(PLACEHOLDERS)

CRISIS_LINES = ("988", "741741", "1-800-273-8255", "1-800-273-talk", "800-273-8255", "116 123", "116123",
                "1-800-656-4673", "1-800-799-7233", "111", "999", "911", "112")

EMAIL_RE = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}\b", re.IGNORECASE)
URL_RE = re.compile(
    r"\b(?:https?://|www\.)[^\s<>\"')\]]+[^\s<>\"')\].,;:!?]"
    r"|\b[a-z0-9][a-z0-9-]{1,62}\.(?:com|org|net|io|co|info|me|us|uk|ca|au|de|health|life|coach|online)(?:/[^\s<>\"')\]]*)?\b",
    re.IGNORECASE,
)
# North American, international (+CC ...), and separated digit groups; at least 7 digits in all.
PHONE_RE = re.compile(
    r"(?<![\w@])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?|\d{2,4}[\s.-])\d{3,4}[\s.-]?\d{3,4}(?![\w-])"
    r"|(?<![\w@])\d{3}[.-]\d{4}(?![\w-])"
    r"|(?<![\w@])1-8\d\d-[A-Z0-9]{3}-[A-Z0-9]{4}(?![\w-])",
)
STREET_SUFFIX = (r"(?i:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|way|place|pl|terrace|"
                 r"parkway|pkwy|circle|highway|hwy)")
ADDRESS_RE = re.compile(
    rf"\b\d{{1,6}}\s+(?:[A-Z][a-z]+\s+){{1,3}}{STREET_SUFFIX}\b\.?(?:,?\s+(?i:suite|apt|unit|#)\s*\w+)?",
)
HANDLE_RE = re.compile(r"(?<![\w.@])@[A-Za-z0-9_](?:[A-Za-z0-9_.]{1,28}[A-Za-z0-9_])?\b")
# A person introducing themself: "my name is Sarah (Johnson)", "I'm called ...", "call me ...". The name must be
# capitalised, so "my name is not important" stays.
NAME_INTRO_RE = re.compile(
    r"\b(?P<lead>[Mm]y name is|[Mm]y name's|I am called|I'm called|[Cc]all me)\s+"
    r"(?P<name>[A-Z][a-z]+(?:[ -][A-Z][a-z]+){0,2})\b"
)
_NOT_NAMES = {"I", "It", "The", "This", "That", "Not", "Just", "Dr", "Doctor", "Mr", "Mrs", "Ms", "Because", "What",
              "When", "Why", "How", "Really", "So", "And", "But", "Today", "Episode", "Part", "Healing"}


def _is_crisis_line(match: str) -> bool:
    digits = re.sub(r"\D", "", match)
    return any(re.sub(r"\D", "", line) == digits for line in CRISIS_LINES if re.sub(r"\D", "", line))


def redact(text: str, keep_crisis_lines: bool = True, pii_types: Sequence[str] = PII_TYPES) -> tuple[str, Counter]:
    """(redacted text, counts per PII type)."""
    counts: Counter = Counter()
    if not text:
        return text, counts

    def sub(kind: str, rx: re.Pattern, repl=None) -> None:
        nonlocal text
        if kind not in pii_types:
            return

        def _replace(m: re.Match) -> str:
            if kind == "phone" and keep_crisis_lines and _is_crisis_line(m.group(0)):
                return m.group(0)
            if kind == "name":
                if m.group("name").split()[0] in _NOT_NAMES:
                    return m.group(0)
                counts[kind] += 1
                return f"{m.group('lead')} {PLACEHOLDERS[kind]}"
            counts[kind] += 1
            return PLACEHOLDERS[kind]

        text = rx.sub(_replace, text)

    sub("email", EMAIL_RE)
    sub("url", URL_RE)
    sub("phone", PHONE_RE)
    sub("address", ADDRESS_RE)
    sub("handle", HANDLE_RE)
    sub("name", NAME_INTRO_RE)
    return text, counts


def redact_many(texts: Iterable[str], keep_crisis_lines: bool = True) -> tuple[list[str], list[Counter]]:
    out, counts = [], []
    for t in texts:
        r, c = redact(t, keep_crisis_lines)
        out.append(r)
        counts.append(c)
    return out, counts


def redact_conversation_json(conversation: str | None, keep_crisis_lines: bool = True) -> tuple[str | None, Counter]:
    """Redact every turn's content of a standard-format conversation JSON string."""
    if not conversation:
        return conversation, Counter()
    total: Counter = Counter()
    try:
        obj = json.loads(conversation)
    except (TypeError, ValueError):
        red, c = redact(str(conversation), keep_crisis_lines)
        return red, c
    turns = obj.get("conversation", []) if isinstance(obj, dict) else obj
    for turn in turns if isinstance(turns, list) else []:
        if isinstance(turn, dict) and isinstance(turn.get("content"), str):
            turn["content"], c = redact(turn["content"], keep_crisis_lines)
            total.update(c)
    return json.dumps(obj, ensure_ascii=False), total


def counts_json(counts: Counter) -> str:
    """Stable JSON of the non-zero counts ({} when nothing was redacted)."""
    return json.dumps({k: int(v) for k, v in sorted(counts.items()) if v}, sort_keys=True)
