"""Per-segment cache of generated candidates, keyed by content hash.

Key = SHA-256 of (generator fingerprint, segment text, style, transcript file): a re-run, or a run after new transcripts arrived,
only generates for segments (or settings) it has not seen. Selection is not cached: it looks at all segments at once
(diversity across the table) and is cheap.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from pixel_pipeline.core.ids import sha256_hex
from pixel_pipeline.core.kvstore import SqliteKeyValueStore
from pixel_pipeline.prompts.generators import Candidate, PromptGenerator, Progress, SegmentInput


class CandidateCache:
    """Content hash of (generator fingerprint, style, segment text, file) -> that generator's candidates, as JSON."""

    def __init__(self, path: str | os.PathLike):
        self.store = SqliteKeyValueStore(path, "prompt_candidates")
        self.path = self.store.path

    @staticmethod
    def key(fingerprint: str, segment: SegmentInput) -> str:
        return sha256_hex(f"{fingerprint}\x00{segment.style or ''}\x00{segment.text}\x00{segment.file or ''}")

    def get_many(self, keys: Sequence[str]) -> dict[str, list[Candidate]]:
        return {k: [Candidate.from_dict(d) for d in json.loads(v)] for k, v in self.store.get_many(keys).items()}

    def put_many(self, items: dict[str, list[Candidate]]) -> None:
        self.store.put_many(
            {k: json.dumps([c.to_dict() for c in v], ensure_ascii=False) for k, v in items.items()}
        )


def generate_cached(
    generator: PromptGenerator,
    segments: Sequence[SegmentInput],
    cache: CandidateCache | None,
    progress: Progress | None = None,
) -> tuple[list[list[Candidate]], dict[str, int]]:
    """Candidates of `generator` for every segment, generating only the ones the cache lacks."""
    if cache is None:
        return generator.generate(segments, progress), {"cached": 0, "generated": len(segments)}
    fingerprint = generator.fingerprint()
    keys = [cache.key(fingerprint, s) for s in segments]
    found = cache.get_many(keys)
    missing_idx = [i for i, k in enumerate(keys) if k not in found]
    todo: dict[str, int] = {}
    for i in missing_idx:  # identical segments are generated once
        todo.setdefault(keys[i], i)
    if todo:
        fresh = generator.generate([segments[i] for i in todo.values()], progress)
        new = dict(zip(todo.keys(), fresh))
        cache.put_many(new)
        found.update(new)
    return [found[k] for k in keys], {"cached": len(segments) - len(missing_idx), "generated": len(todo)}
