"""Shared fixtures: every test gets its own data and output folders through the env vars of docs/CONTRACTS.md."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pixel_pipeline.core.settings import PipelinePaths

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DATA_DIR = REPO_ROOT / "data"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture
def tmp_paths(tmp_path, monkeypatch) -> PipelinePaths:
    """Empty data and output folders, exported as PIXEL_DATA_DIR / PIXEL_OUTPUT_DIR."""
    data, out = tmp_path / "data", tmp_path / "output"
    data.mkdir()
    out.mkdir()
    monkeypatch.setenv("PIXEL_DATA_DIR", str(data))
    monkeypatch.setenv("PIXEL_OUTPUT_DIR", str(out))
    return PipelinePaths.from_env()


@pytest.fixture(scope="session")
def shared_embedding_cache(tmp_path_factory) -> Path:  # use as EmbeddingModel(cache_dir=str(...))
    """One embedding cache for the whole session, so the same texts are embedded once across tests."""
    return tmp_path_factory.mktemp("embedding_cache")
