"""A small on-disk score cache keyed by content hash (SQLite), for per-text measures that cost a model call.

Language detection uses it: re-runs and new transcripts only score texts that are new. Keys include a namespace
(what was computed and with which settings), so changing a setting never returns stale values.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Any

from pixel_pipeline.core.ids import sha256_hex
from pixel_pipeline.core.kvstore import SqliteKeyValueStore


class ScoreCache:
    def __init__(self, path: str | os.PathLike, namespace: str):
        self.store = SqliteKeyValueStore(path, "scores")
        self.path = self.store.path
        self.namespace = namespace
        self.stats = {"hits": 0, "computed": 0}

    def key(self, text: str) -> str:
        return sha256_hex(f"{self.namespace}\x00{text}")

    def map(self, texts: Sequence[str], compute: Callable[[str], Any]) -> list[Any]:
        """compute(text) for each text, reading and writing the cache (JSON values); duplicates computed once."""
        keys = [self.key(t) for t in texts]
        found: dict[str, Any] = {k: json.loads(v) for k, v in self.store.get_many(keys).items()}
        self.stats["hits"] += sum(1 for k in keys if k in found)
        new: dict[str, Any] = {}
        for k, t in zip(keys, texts):
            if k not in found and k not in new:
                new[k] = compute(t)
        if new:
            self.store.put_many({k: json.dumps(v) for k, v in new.items()})
            self.stats["computed"] += len(new)
        found.update(new)
        return [found[k] for k in keys]
