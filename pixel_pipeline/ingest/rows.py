"""Input files read record by record, so one bad line, item or byte costs that record only (never the file).

Each reader returns the file's records in order: a parsed value, or a `BrokenRecord` (its raw text and why it could
not be parsed), which the loaders turn into one reject row. rows in = len(records), counted while parsing.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from typing import Any


@dataclass
class BrokenRecord:
    """An input row that could not be parsed: its raw text and why (it becomes one reject row)."""

    raw: str
    reason: str


_LINE_RE = re.compile(r"[^\n]*\n|[^\n]+$")


def csv_records(text: str) -> list[Any]:
    """The data rows of a CSV text as dicts keyed by the header, each unparseable or ragged row as a BrokenRecord.

    Parsed with the csv module in strict mode (RFC 4180 quoting; no index column guessed): a row with more fields
    than the header, or fewer, is broken, never shifted; a quote that does not close where a field must end (or at
    all) breaks the row it opens on, and parsing resumes on the next line, so it cannot swallow later rows.
    """
    lines = _LINE_RE.findall(text)
    parsed: list[tuple[int, list[str] | None, str, str]] = []  # (first line, fields or None, raw text, problem)
    pos = 0
    while pos < len(lines):
        reader = csv.reader(lines[pos:], strict=True)
        consumed = 0
        try:
            for fields in reader:
                start, consumed = pos + consumed, reader.line_num
                if fields:
                    parsed.append((start + 1, fields, "".join(lines[start : pos + consumed]), ""))
            pos = len(lines)
        except csv.Error as exc:
            start = pos + consumed
            parsed.append((start + 1, None, lines[start], f"malformed_csv_row: line {start + 1}: {exc}"))
            pos = start + 1
    if not parsed:
        return []
    _, header, header_raw, header_problem = parsed[0]
    if header is None:  # no usable header: every data row is rejected for it (the header alone when there are none)
        why = f"malformed_csv_header: {header_problem}"
        return [BrokenRecord(raw, why) for _, _, raw, _ in parsed[1:]] or [BrokenRecord(header_raw, why)]
    records: list[Any] = []
    for line, fields, raw, problem in parsed[1:]:
        if fields is None:
            records.append(BrokenRecord(raw, problem))
        elif len(fields) != len(header):
            kind = "extra_fields" if len(fields) > len(header) else "missing_fields"
            records.append(BrokenRecord(raw, f"{kind}: line {line} has {len(fields)} fields, the header has {len(header)}"))
        else:
            records.append(dict(zip(header, fields)))
    return records


def jsonl_records(text: str) -> list[Any]:
    """One record per non-blank line; a line that is not valid JSON is a BrokenRecord."""
    records: list[Any] = []
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except (json.JSONDecodeError, RecursionError) as exc:
            records.append(BrokenRecord(line, f"invalid_json_line: line {lineno}: {getattr(exc, 'msg', exc)}"))
    return records


def json_list_records(text: str, what: str = "objects", columns_ok: bool = True) -> tuple[list[Any], str | None]:
    """The items of a JSON list one by one (a broken item is a BrokenRecord and parsing resumes at the next item
    that starts a line at the first item's indentation, or after the next `},`); an object of equal-length column
    lists is read as rows when `columns_ok`. (records, None) or ([], why the text is no JSON list at all)."""
    decoder = json.JSONDecoder()
    body = text.lstrip()
    if body.startswith("{"):
        try:
            parsed = json.loads(body)
        except (json.JSONDecodeError, RecursionError) as exc:
            return [], f"not valid JSON: {getattr(exc, 'msg', exc)}"
        if columns_ok and isinstance(parsed, dict) and parsed and all(isinstance(v, list) for v in parsed.values()):
            n = max(len(v) for v in parsed.values())
            return [{k: (v[i] if i < len(v) else None) for k, v in parsed.items()} for i in range(n)], None
        return [], f"expected a JSON list of {what}, got a JSON {type(parsed).__name__}"
    if not body.startswith("["):
        return [], f"expected a JSON list of {what}"
    records: list[Any] = []
    pos, n = len(text) - len(body) + 1, len(text)
    ws = re.compile(r"\s*")
    item_indent: str | None = None
    list_start = scanned = pos - 1  # the "[", and how far back the search for a line start has looked
    while True:
        pos = ws.match(text, pos).end()
        if pos >= n:
            records.append(BrokenRecord("", "truncated_json: the list is not closed"))
            return records, None
        if text[pos] == "]" and not records:
            return records, None
        if item_indent is None:  # pretty-printed: items start lines at one indentation; compact: items follow "},"
            # only the text since the last item is searched: a compact list of 100k items stays linear
            line_start = text.rfind("\n", scanned, pos) + 1
            item_indent = text[line_start:pos] if line_start > list_start else None
            scanned = pos
        try:
            item, end = decoder.raw_decode(text, pos)
            after = ws.match(text, end).end()
            if after < n and text[after] not in ",]":
                raise json.JSONDecodeError("expected ',' or ']' after an item", text, after)
        except (json.JSONDecodeError, RecursionError) as exc:
            resume = _next_item_start(text, pos + 1, item_indent)
            where = getattr(exc, "lineno", "?")
            records.append(BrokenRecord(text[pos:resume].rstrip().rstrip(","), f"invalid_json_item: line {where}: {getattr(exc, 'msg', exc)}"))
            if resume >= n:
                return records, None
            pos = resume
            continue
        records.append(item)
        if after >= n:
            records.append(BrokenRecord("", "truncated_json: the list is not closed"))
            return records, None
        if text[after] == "]":
            trailing = text[after + 1 :].strip()
            if trailing:
                records.append(BrokenRecord(trailing, "invalid_json_item: text after the closing bracket"))
            return records, None
        pos = after + 1


def _next_item_start(text: str, start: int, indent: str | None) -> int:
    """Where the next list item probably starts: a line `<indent>{` in a pretty-printed list, else the `{` after the
    next `},` (in a compact list that may be a nested object: it is then rejected as a row of its own)."""
    pattern = "\n" + re.escape(indent) + r"\{" if indent is not None else r"\}\s*,\s*\{"
    match = re.search(pattern, text[start:])
    return start + match.end() - 1 if match else len(text)


def decode_text(data: bytes) -> str:
    """UTF-8 with or without a BOM; invalid bytes kept as surrogates so only the rows holding them are rejected."""
    return data.decode("utf-8-sig", errors="surrogateescape")


