"""A small on-disk score cache keyed by content hash (SQLite), for per-text measures.

Language detection and every per-text curation rule use it (`rules.RuleScores`): re-runs and new transcripts only
score texts that are new. Keys include a namespace (what was computed, with which settings and which version of the
rule code), so changing a setting or a rule never returns stale values.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Any

from pixel_pipeline.core.ids import sha256_hex
from pixel_pipeline.core.kvstore import SqliteKeyValueStore


class ScoreCache:
    def __init__(self, path: str | os.PathLike, namespace: str, store: SqliteKeyValueStore | None = None):
        self.store = store or SqliteKeyValueStore(path, "scores")
        self.path = self.store.path
        self.namespace = namespace
        self.stats = {"hits": 0, "computed": 0}

    def scoped(self, namespace: str) -> "ScoreCache":
        """The same file under another namespace (its own hit/compute counts)."""
        return ScoreCache(self.path, f"{self.namespace}|{namespace}", store=self.store)

    def key(self, text: str) -> str:
        return sha256_hex(f"{self.namespace}\x00{text}")

    def map(self, texts: Sequence[str], compute: Callable[[str], Any]) -> list[Any]:
        """compute(text) for each text, reading and writing the cache (JSON values); duplicates computed once."""
        return self.map_batch(texts, lambda missing: [compute(t) for t in missing])

    def map_batch(self, texts: Sequence[str], compute: Callable[[list[str]], list[Any]]) -> list[Any]:
        """Like `map`, with one compute(missing texts) call for everything not cached (vectorised rules)."""
        keys = [self.key(t) for t in texts]
        found: dict[str, Any] = {k: json.loads(v) for k, v in self.store.get_many(keys).items()}
        self.stats["hits"] += sum(1 for k in keys if k in found)
        missing = {k: t for k, t in zip(keys, texts) if k not in found}  # a dict: duplicates computed once
        if missing:
            values = compute(list(missing.values()))
            new = dict(zip(missing, values))
            self.store.put_many({k: json.dumps(v, default=_plain) for k, v in new.items()})
            self.stats["computed"] += len(new)
            # through JSON, so a first run returns exactly what a cached re-run will read
            found.update({k: json.loads(json.dumps(v, default=_plain)) for k, v in new.items()})
        return [found[k] for k in keys]


def _plain(value: Any) -> Any:
    """numpy scalars and arrays in rule measures -> JSON types."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
