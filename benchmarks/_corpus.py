"""Sentences of a corpus of the shape of data/, the raw material of the benchmarks' generated corpora."""

from __future__ import annotations

import json
import re
from pathlib import Path

SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def segment_texts(data_dir: Path) -> list[str]:
    """The text of every readable row of training_segments/*.json, in file order."""
    texts: list[str] = []
    for path in sorted((data_dir / "training_segments").glob("*.json")):
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            continue
        texts.extend(row["text"] for row in (rows if isinstance(rows, list) else [])
                     if isinstance(row, dict) and isinstance(row.get("text"), str))
    return texts


def sentence_pool(data_dir: Path, min_words: int = 3, include_transcripts: bool = True) -> list[str]:
    """Every sentence of at least `min_words` words in training_segments/*.json (and transcripts/*.txt)."""
    pool: list[str] = []
    for text in segment_texts(data_dir):
        pool.extend(s for s in SENTENCE_END.split(text) if len(s.split()) >= min_words)
    if include_transcripts:
        for path in sorted((data_dir / "transcripts").glob("*.txt")):
            text = path.read_text(encoding="utf-8", errors="replace")
            pool.extend(s for s in SENTENCE_END.split(text) if len(s.split()) >= min_words)
    if not pool:
        raise SystemExit(f"no sentences found under {data_dir}; point the benchmark at a corpus of the shape of data/")
    return pool
