"""Resources shared by every asset: where files live, and the embedding model."""

from __future__ import annotations

import os

import dagster as dg
from pydantic import PrivateAttr

from pixel_pipeline.core.embeddings import PACKAGED_MODEL, Embedder, resolve_model_path
from pixel_pipeline.core.static_embeddings import StaticEmbedder
from pixel_pipeline.core.settings import PipelinePaths
from pixel_pipeline.defs.settings import keyword_defaults


class PixelStorage(dg.ConfigurableResource):
    """Input and output folders. Empty values fall back to PIXEL_DATA_DIR / PIXEL_OUTPUT_DIR, then data/ and output/."""

    data_dir: str = ""
    output_dir: str = ""

    @property
    def paths(self) -> PipelinePaths:
        return PipelinePaths.from_env(self.data_dir or None, self.output_dir or None)


class EmbeddingModel(dg.ConfigurableResource):
    """The sentence-transformers model used for style, prompts, domain filtering and semantic dedup.

    `model_name_or_path` defaults to the packaged offline MiniLM; set PIXEL_EMBEDDING_MODEL or this field to use
    another model id or local folder. Vectors are cached on disk by content hash under the output folder's cache/
    (or `cache_dir` / PIXEL_CACHE_DIR, which tests use to share one cache). `precision`: auto (bf16 where the CPU/GPU
    has fast bf16 matrix units, else float32), float32 or bfloat16; empty falls back to PIXEL_EMBEDDING_PRECISION.
    `backend`: auto (OpenVINO on CPU, torch on GPU), torch or openvino; empty falls back to PIXEL_EMBEDDING_BACKEND.
    """

    model_name_or_path: str = ""
    device: str = ""
    batch_size: int = keyword_defaults(Embedder)["batch_size"]
    use_cache: bool = True
    cache_dir: str = ""
    precision: str = ""
    backend: str = ""

    _embedder: Embedder | None = PrivateAttr(default=None)
    _static: StaticEmbedder | None = PrivateAttr(default=None)

    def _model_name(self) -> str:
        return self.model_name_or_path or os.environ.get("PIXEL_EMBEDDING_MODEL") or PACKAGED_MODEL

    def _cache_dir(self, storage: PixelStorage) -> str:
        return str(self.cache_dir or os.environ.get("PIXEL_CACHE_DIR") or storage.paths.cache_dir)

    def static_embedder(self) -> StaticEmbedder:
        """The static model distilled from this model (built once per machine; core.static_embeddings)."""
        if self._static is None:
            self._static = StaticEmbedder(resolve_model_path(self._model_name()))
        return self._static

    def embedder(self, storage: PixelStorage) -> Embedder:
        if self._embedder is None:
            name = self._model_name()
            cache = self._cache_dir(storage) if self.use_cache else None
            self._embedder = Embedder(
                name,
                cache_dir=cache,
                device=self.device or None,
                batch_size=self.batch_size,
                precision=self.precision or None,
                backend=self.backend or None,
            )
        return self._embedder


def default_resources() -> dict[str, object]:
    return {"storage": PixelStorage(), "embedding_model": EmbeddingModel()}
