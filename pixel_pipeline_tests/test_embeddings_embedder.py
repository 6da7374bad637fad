"""The Embedder: order, duplicates, the content-hash cache, and agreement of the fast path with plain float32."""

from __future__ import annotations

import numpy as np
import pytest

from pixel_pipeline.core.embeddings import (
    PACKAGED_MODEL,
    EmbeddingCache,
    Embedder,
    load_sentence_transformer,
    resolve_model_path,
    resolve_precision,
)

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


def test_precisions_are_cached_apart_so_a_cache_never_mixes_them(tmp_path):
    exact = Embedder(cache_dir=tmp_path, precision="float32")
    fast = Embedder(cache_dir=tmp_path, precision="bfloat16")
    assert exact.key(TEXTS[0]) != fast.key(TEXTS[0])
    exact.encode(TEXTS[:2])
    fast.encode(TEXTS[:2])
    assert fast.stats["computed"] == 2
    # float32 keeps the original namespace: caches written before precision existed stay valid.
    assert exact.cache_namespace == f"{PACKAGED_MODEL}|default"


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_every_precision_agrees_with_plain_sentence_transformers(precision, float32_vectors):
    vectors = Embedder(cache_dir=None, precision=precision, batch_size=4).encode(TEXTS)
    cosine = np.sum(vectors * float32_vectors, axis=1)
    assert cosine.min() >= (0.9999 if precision == "float32" else 0.99), cosine


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
