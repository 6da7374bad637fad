"""A small on-disk score cache keyed by content hash (SQLite), for per-text measures that cost a model call.

Language detection uses it: re-runs and new transcripts only score texts that are new. Keys include a namespace
(what was computed and with which settings), so changing a setting never returns stale values.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pixel_pipeline.core.ids import sha256_hex


class ScoreCache:
    def __init__(self, path: str | os.PathLike, namespace: str):
        self.path = Path(path)
        self.namespace = namespace
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute("CREATE TABLE IF NOT EXISTS scores (key TEXT PRIMARY KEY, value TEXT)")
        self.stats = {"hits": 0, "computed": 0}

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=60)
        con.execute("PRAGMA journal_mode=WAL")
        return con

    def key(self, text: str) -> str:
        return sha256_hex(f"{self.namespace}\x00{text}")

    def map(self, texts: Sequence[str], compute: Callable[[str], Any]) -> list[Any]:
        """compute(text) for each text, reading and writing the cache (JSON values); duplicates computed once."""
        keys = [self.key(t) for t in texts]
        found: dict[str, Any] = {}
        unique = list(dict.fromkeys(keys))
        with self._connect() as con:
            for start in range(0, len(unique), 900):
                chunk = unique[start : start + 900]
                marks = ",".join("?" * len(chunk))
                for k, v in con.execute(f"SELECT key, value FROM scores WHERE key IN ({marks})", chunk):
                    found[k] = json.loads(v)
        self.stats["hits"] += sum(1 for k in keys if k in found)
        new: dict[str, Any] = {}
        for k, t in zip(keys, texts):
            if k not in found and k not in new:
                new[k] = compute(t)
        if new:
            with self._connect() as con:
                con.executemany("INSERT OR REPLACE INTO scores (key, value) VALUES (?, ?)",
                                [(k, json.dumps(v)) for k, v in new.items()])
            self.stats["computed"] += len(new)
        found.update(new)
        return [found[k] for k in keys]
