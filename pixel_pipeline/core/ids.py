"""Stable ids (docs/CONTRACTS.md, "The shared contract": identity).

- segment_id: first 16 hex digits of SHA-256 of the segment's `text` exactly as read (UTF-8).
- record_id: the same digest of the canonical JSON of the conversation turns, i.e.
  json.dumps([{"role": r, "content": c}, ...], ensure_ascii=False, separators=(",", ":"), sort_keys=True)
  with roles already normalised to the standard format (client / therapist). Metadata is not part of the id, so the
  same conversation read from CSV, JSONL or the Hub gets the same id.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping

ID_HEX_DIGITS = 16


def sha256_hex(data: str | bytes) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def content_id(text: str) -> str:
    """segment_id of a text (also used for any other content-addressed key)."""
    return sha256_hex(text)[:ID_HEX_DIGITS]


def canonical_turns_json(turns: Iterable[Mapping[str, str]]) -> str:
    return json.dumps(
        [{"role": t["role"], "content": t["content"]} for t in turns],
        ensure_ascii=False,
        separators=(",", ":"),
        sort_keys=True,
    )


def record_id(turns: Iterable[Mapping[str, str]]) -> str:
    """record_id of a counseling or reasoning conversation."""
    return content_id(canonical_turns_json(turns))
