"""A key -> value table in one SQLite file: the storage under every content-hash cache (embeddings, language
scores, prompt candidates). Callers choose the key (a content hash) and the value encoding; this only stores.

WAL journaling lets readers go on while the one writer writes, and lookups are chunked under SQLite's limit on
bound parameters, so a corpus of 100k texts is read in one call.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

_MAX_PARAMS = 900  # below SQLite's historical 999 bound-parameter limit
_TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


class SqliteKeyValueStore:
    def __init__(self, path: str | os.PathLike, table: str):
        if not _TABLE_NAME.match(table):
            raise ValueError(f"table name must be a plain identifier, got {table!r}")
        self.path = Path(path)
        self.table = table
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._connect() as con:
            con.execute(f"CREATE TABLE IF NOT EXISTS {table} (key TEXT PRIMARY KEY, value BLOB)")

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=60)
        con.execute("PRAGMA journal_mode=WAL")
        return con

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        """The stored value of every key that is present (absent keys are simply missing from the result)."""
        unique = list(dict.fromkeys(keys))
        found: dict[str, Any] = {}
        with self._connect() as con:
            for start in range(0, len(unique), _MAX_PARAMS):
                chunk = unique[start : start + _MAX_PARAMS]
                marks = ",".join("?" * len(chunk))
                found.update(con.execute(f"SELECT key, value FROM {self.table} WHERE key IN ({marks})", chunk))
        return found

    def put_many(self, items: Mapping[str, Any]) -> None:
        if not items:
            return
        with self._lock, self._connect() as con:
            con.executemany(f"INSERT OR REPLACE INTO {self.table} (key, value) VALUES (?, ?)", list(items.items()))

    def count(self) -> int:
        with self._connect() as con:
            return int(con.execute(f"SELECT COUNT(*) FROM {self.table}").fetchone()[0])
