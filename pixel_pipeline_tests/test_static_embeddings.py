"""The static model distilled from the packaged MiniLM (core.static_embeddings) and the style encoders built on it."""

from __future__ import annotations

import numpy as np
import pytest

from pixel_pipeline.core.embeddings import resolve_model_path
from pixel_pipeline.core.static_embeddings import StaticEmbedder, ensure_static_model
from pixel_pipeline.ingest.style import STYLE_ENCODERS, build_style_classifier


@pytest.fixture(scope="module")
def static() -> StaticEmbedder:
    return StaticEmbedder(resolve_model_path(None))  # built once per machine, then read from its folder


def test_vectors_are_unit_length_deterministic_and_read_meaning(static):
    texts = ["Shame tells you that you are the problem.", "Guilt says you did something wrong and can repair it.",
             "The quarterly earnings beat analyst estimates on strong cloud revenue."]
    vectors = static.encode(texts)
    assert vectors.shape == (3, static.dimension) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(vectors, static.encode(texts))
    sims = vectors @ vectors.T
    assert sims[0, 1] > sims[0, 2] + 0.2  # shame is nearer guilt than earnings
    assert static.encode([]).shape == (0, static.dimension)


def test_the_whole_text_is_read_not_a_token_window(static):
    head = "Shame tells you that you are the problem. " * 40  # far past MiniLM's 256 word pieces
    a, b = static.encode([head + "Markets fell sharply today.", head + "Healing starts with naming it."])
    assert not np.array_equal(a, b)


def test_the_distilled_folder_is_built_once_and_reused(static):
    folder = static.folder
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert ensure_static_model(static.source_model_path) == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    assert static.cache_namespace == f"static:{folder.name}"


def test_each_style_encoder_has_its_measured_settings_and_an_unknown_one_is_an_error(static):
    classifier = build_style_classifier("static", sentence_embedder=None, static_embedder=static)
    assert classifier.embedder is static and classifier.settings == STYLE_ENCODERS["static"]
    assert STYLE_ENCODERS["static"].temperature < STYLE_ENCODERS["sentence"].temperature
    with pytest.raises(ValueError, match="style_encoder must be one of"):
        build_style_classifier("bag-of-words", None, static)
