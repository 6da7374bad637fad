"""The Embedder: order, duplicates, the content-hash cache, and agreement of the fast path with plain float32."""

from __future__ import annotations

import numpy as np
import pytest

from pixel_pipeline.core.embeddings import (
    PACKAGED_MODEL,
    EmbeddingCache,
    Embedder,
    bf16_is_fast,
    load_sentence_transformer,
    resolve_backend,
    resolve_model_path,
    resolve_precision,
)
from pixel_pipeline.core.openvino_encoder import convert_transformer, openvino_available

needs_openvino = pytest.mark.skipif(not openvino_available(), reason="openvino is not installed")

TEXTS = [
    "When you notice your chest tightening, name five things you can see in the room.",
    "Trauma is not what happened to you; it is what happened inside you as a result.",
    "Boundaries are not walls. They are the gates you choose to open, and when.",
    "Sleep hygiene starts hours before bed: light, caffeine, and the stories we rehearse at night.",
    " ".join(["Grief comes in waves, and every wave eventually returns to the shore."] * 40),  # past the 256-token window
    "ok",
]


@pytest.fixture(scope="module")
def float32_vectors() -> np.ndarray:
    """Plain SentenceTransformer.encode, the reference every precision is compared with."""
    model = load_sentence_transformer(resolve_model_path(PACKAGED_MODEL), None, "float32")
    return model.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)


def test_vectors_come_back_in_input_order_normalised_and_duplicates_are_computed_once(tmp_path):
    embedder = Embedder(cache_dir=tmp_path, precision="float32")
    texts = [TEXTS[1], TEXTS[0], TEXTS[1], TEXTS[5]]
    vectors = embedder.encode(texts)
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(vectors[0], vectors[2])
    assert embedder.stats == {"requested": 4, "cache_hits": 0, "computed": 3}
    alone = Embedder(cache_dir=None, precision="float32").encode([TEXTS[0]])
    np.testing.assert_allclose(vectors[1], alone[0], atol=1e-5)


def test_a_second_embedder_on_the_same_cache_computes_nothing(tmp_path):
    first = Embedder(cache_dir=tmp_path, precision="float32")
    expected = first.encode(TEXTS[:3])
    again = Embedder(cache_dir=tmp_path, precision="float32")
    got = again.encode(list(reversed(TEXTS[:3])) + [TEXTS[3]])
    assert again.stats == {"requested": 4, "cache_hits": 3, "computed": 1}
    np.testing.assert_array_equal(got[:3], expected[::-1])
    assert EmbeddingCache(tmp_path / "embeddings.sqlite").count() == 4


def test_precisions_and_backends_are_cached_apart_so_a_cache_never_mixes_them(tmp_path):
    exact = Embedder(cache_dir=tmp_path, precision="float32", backend="torch")
    fast = Embedder(cache_dir=tmp_path, precision="bfloat16", backend="torch")
    assert exact.key(TEXTS[0]) != fast.key(TEXTS[0])
    exact.encode(TEXTS[:2])
    fast.encode(TEXTS[:2])
    assert fast.stats["computed"] == 2
    # float32 on torch keeps the original namespace: caches written before precision existed stay valid.
    assert exact.cache_namespace == f"{PACKAGED_MODEL}|default"
    if openvino_available():
        openvino = Embedder(cache_dir=tmp_path, precision="float32", backend="openvino")
        assert openvino.cache_namespace == f"{PACKAGED_MODEL}|default|openvino"
        openvino.encode(TEXTS[:2])
        assert openvino.stats["computed"] == 2


def _backends_and_precisions():
    combos = [("torch", "float32"), ("torch", "bfloat16")]
    if openvino_available():
        combos.append(("openvino", "float32"))
        if bf16_is_fast("cpu"):  # OpenVINO's bf16 hint needs bf16 units; elsewhere auto picks float32 anyway
            combos.append(("openvino", "bfloat16"))
    return combos


@pytest.mark.parametrize(("backend", "precision"), _backends_and_precisions())
def test_every_backend_and_precision_agrees_with_plain_sentence_transformers(backend, precision, float32_vectors):
    vectors = Embedder(cache_dir=None, precision=precision, backend=backend, batch_size=4).encode(TEXTS)
    cosine = np.sum(vectors * float32_vectors, axis=1)
    assert cosine.min() >= (0.9999 if precision == "float32" else 0.99), cosine


@needs_openvino
def test_openvino_backend_honours_the_token_window_like_sentence_transformers():
    """Truncation is the model's own tokenizer's: a 32-token window changes long texts the same way on both backends."""
    short_torch = Embedder(cache_dir=None, precision="float32", backend="torch", max_seq_length=32).encode(TEXTS)
    short_openvino = Embedder(cache_dir=None, precision="float32", backend="openvino", max_seq_length=32).encode(TEXTS)
    full = Embedder(cache_dir=None, precision="float32", backend="openvino").encode(TEXTS)
    assert np.sum(short_torch * short_openvino, axis=1).min() >= 0.9999
    assert np.sum(full[4] * short_openvino[4]) < 0.999  # the long text was really cut at 32 tokens


@needs_openvino
def test_converted_openvino_model_is_reused_from_disk_instead_of_traced_again(tmp_path, monkeypatch):
    import openvino as ov

    model = load_sentence_transformer(resolve_model_path(PACKAGED_MODEL), "cpu", "float32")
    convert_transformer(model, tmp_path)
    saved = list(tmp_path.glob("*/model.xml"))
    assert len(saved) == 1 and saved[0].with_suffix(".bin").stat().st_size > 80_000_000  # float32 weights, not fp16

    def no_tracing(*args, **kwargs):
        raise AssertionError("traced again although the IR was on disk")

    monkeypatch.setattr(ov, "convert_model", no_tracing)
    again = convert_transformer(model, tmp_path)
    assert [p.get_any_name() for p in again.inputs] == ["input_ids", "attention_mask", "token_type_ids"]


def test_backend_setting_resolves_from_argument_then_environment(monkeypatch):
    assert resolve_backend("torch") == "torch"
    assert resolve_backend("auto", "cuda:0") == "torch"  # OpenVINO here is a CPU path
    assert resolve_backend("auto", "cpu") == ("openvino" if openvino_available() else "torch")
    monkeypatch.setenv("PIXEL_EMBEDDING_BACKEND", "torch")
    assert Embedder(cache_dir=None).backend == "torch"
    with pytest.raises(ValueError, match="backend"):
        resolve_backend("onnx")
    with pytest.raises(ValueError, match="backend"):
        Embedder(cache_dir=None, backend="tensorrt")
    with pytest.raises(ValueError, match="CPU only"):
        resolve_backend("openvino", "cuda")


def test_empty_input_gives_an_empty_matrix_of_the_model_dimension():
    assert Embedder(cache_dir=None, precision="float32").encode([]).shape == (0, 384)


def test_precision_setting_resolves_from_argument_then_environment(monkeypatch):
    assert resolve_precision("float32") == "float32"
    assert resolve_precision("auto") in ("float32", "bfloat16")
    monkeypatch.setenv("PIXEL_EMBEDDING_PRECISION", "float32")
    assert Embedder(cache_dir=None).precision == "float32"
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("int4")
    with pytest.raises(ValueError, match="precision"):
        Embedder(cache_dir=None, precision="float16")


def test_progress_reports_every_batch_up_to_the_total():
    seen: list[tuple[int, int]] = []
    Embedder(cache_dir=None, precision="float32", batch_size=2).encode(TEXTS[:5], progress=lambda d, t: seen.append((d, t)))
    assert seen == [(2, 5), (4, 5), (5, 5)]
