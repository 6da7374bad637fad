"""A static embedding model distilled from the packaged MiniLM: hundreds of times faster, for the decisions where it
agrees with MiniLM well enough (benchmarks/bench_static_embeddings.py measures each use).

Model2Vec's recipe (Tulkens & van Dongen 2024, github.com/MinishLab/model2vec): every token of the vocabulary is
passed through the sentence transformer on its own (as `[SEP] token [CLS]`, the order model2vec found best), the
output vectors are averaged per token, reduced with PCA, and weighted by an estimate of the token's rarity from its
rank (Zipf + SIF). A text's vector is the mean of its tokens' vectors, so it reads the *whole* text (no 256-token
window) at the cost of word order. Inference is model2vec's own `StaticModel`; the distillation is written here
because `model2vec[distill]` pins an older transformers than this project's. The distilled folder is built once per
source model and settings (about half a minute on two cores) and shared by every run and test of the machine:
`PIXEL_STATIC_MODEL_DIR`, else `$XDG_CACHE_HOME/pixel_pipeline/static`, else `~/.cache/pixel_pipeline/static`, one
`<fingerprint>/` folder per source weights and settings, written beside and renamed into place.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from pixel_pipeline.core.io import publish_folder

log = logging.getLogger(__name__)

STATIC_RECIPE_VERSION = 1


def distill(model_path: str, pca_dims: int = 256, sif_coefficient: float = 1e-4, batch_size: int = 1024):
    """(vectors (vocab, pca_dims) float32, tokenizers.Tokenizer) for the transformer in `model_path`."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    model_path = transformer_folder(model_path)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModel.from_pretrained(model_path).eval()
    vocab = len(tokenizer.get_vocab())
    ids = torch.arange(vocab)
    first, last = tokenizer.encode("A")[0], tokenizer.encode("A")[-1]  # the special tokens around a text ([CLS], [SEP])
    stacked = torch.stack([torch.full_like(ids, last), ids, torch.full_like(ids, first)], 1)
    out = []
    with torch.no_grad():
        for start in range(0, vocab, batch_size):
            batch = stacked[start : start + batch_size]
            inputs = {"input_ids": batch, "attention_mask": torch.ones_like(batch)}
            if "token_type_ids" in tokenizer.model_input_names:
                inputs["token_type_ids"] = torch.zeros_like(batch)
            hidden = model(**inputs).last_hidden_state
            out.append(hidden.float().mean(1).numpy())
    vectors = np.concatenate(out).astype(np.float64)
    vectors -= vectors.mean(0)
    # PCA through the SVD of the centred matrix: the first pca_dims principal axes
    _, _, components = np.linalg.svd(vectors, full_matrices=False)
    vectors = vectors @ components[:pca_dims].T
    inv_rank = 1.0 / np.arange(2, vocab + 2)
    proba = inv_rank / inv_rank.sum()
    vectors *= (sif_coefficient / (sif_coefficient + proba))[:, None]
    return vectors.astype(np.float32), tokenizer.backend_tokenizer


def transformer_folder(model_path: str) -> str:
    """The folder holding the transformer of a sentence-transformers model (its first module; often the root)."""
    modules = Path(model_path) / "modules.json"
    if modules.exists():
        first = json.loads(modules.read_text(encoding="utf-8"))[0].get("path", "")
        return str(Path(model_path) / first) if first else str(model_path)
    return str(model_path)


def _fingerprint(model_path: str, pca_dims: int, sif_coefficient: float) -> str:
    """Recipe, settings and the transformer's weights and vocabulary (the files distill() reads)."""
    digest = hashlib.sha256(f"{STATIC_RECIPE_VERSION}|{pca_dims}|{sif_coefficient}".encode())
    folder = Path(transformer_folder(model_path))
    for name in ("model.safetensors", "pytorch_model.bin", "tokenizer.json", "vocab.txt"):
        p = folder / name
        if p.exists():
            digest.update(name.encode())
            digest.update(str(p.stat().st_size).encode())
            with p.open("rb") as f:  # the first and last MiB identify a weights file without reading all of it
                digest.update(f.read(1 << 20))
                f.seek(max(0, p.stat().st_size - (1 << 20)))
                digest.update(f.read())
    return digest.hexdigest()[:16]


def static_models_root() -> Path:
    if os.environ.get("PIXEL_STATIC_MODEL_DIR"):
        return Path(os.environ["PIXEL_STATIC_MODEL_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pixel_pipeline" / "static"


def ensure_static_model(model_path: str, root: str | os.PathLike | None = None, pca_dims: int = 256,
                        sif_coefficient: float = 1e-4) -> Path:
    """The distilled folder for `model_path` under `root` (default static_models_root()), built on first use."""
    final = Path(root or static_models_root()) / _fingerprint(model_path, pca_dims, sif_coefficient)

    def write(tmp: Path) -> None:
        from model2vec import StaticModel

        log.info("distilling a static embedding model from %s into %s (once per machine)", model_path, final)
        vectors, tokenizer = distill(model_path, pca_dims, sif_coefficient)
        StaticModel(vectors, tokenizer, normalize=True, base_model_name=str(model_path)).save_pretrained(tmp)
        (tmp / "distilled_from.json").write_text(json.dumps(
            {"model_path": str(model_path), "pca_dims": pca_dims, "sif_coefficient": sif_coefficient,
             "recipe_version": STATIC_RECIPE_VERSION}, indent=1), encoding="utf-8")

    return publish_folder(final, write, complete=("config.json", "model.safetensors", "tokenizer.json"))


@functools.lru_cache(maxsize=2)
def load_static_model(folder: str):
    from model2vec import StaticModel

    return StaticModel.from_pretrained(folder)


class StaticEmbedder:
    """`encode(texts, progress)` like core.embeddings.Embedder, from a distilled static model: whole texts (no
    token window), L2-normalised float32. No vector cache: computing is faster than reading one back."""

    def __init__(self, source_model_path: str, root: str | os.PathLike | None = None, pca_dims: int = 256,
                 sif_coefficient: float = 1e-4):
        self.source_model_path = source_model_path
        self.root = root
        self.pca_dims = pca_dims
        self.sif_coefficient = sif_coefficient
        self.stats = {"requested": 0, "cache_hits": 0, "computed": 0}
        self._folder: Path | None = None

    @property
    def folder(self) -> Path:
        if self._folder is None:
            self._folder = ensure_static_model(self.source_model_path, self.root, self.pca_dims, self.sif_coefficient)
        return self._folder

    @property
    def cache_namespace(self) -> str:
        return f"static:{self.folder.name}"

    @property
    def dimension(self) -> int:
        return int(load_static_model(str(self.folder)).dim)

    def encode(self, texts: Sequence[str], progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        texts = [str(t) for t in texts]
        self.stats["requested"] += len(texts)
        self.stats["computed"] += len(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = load_static_model(str(self.folder)).encode(texts, max_length=None, use_multiprocessing=False)
        if progress:
            progress(len(texts), len(texts))
        vectors = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)
