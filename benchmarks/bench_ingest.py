"""Ingestion at scale: load + validate + combine N segments, the style classifier's throughput, and a cached re-run.

    python benchmarks/bench_ingest.py --segments 5000 --embed-segments 300

Generates `--segments` segments of realistic length (lognormal around ~390 words, 35-3,700) in 10 segment files
plus a few bad rows, by resampling sentences from the sample corpus in data/. It prints, measured in this run:
  1. parsing + validation + duplicate handling of every file (no model: a hashing embedder stands in),
  2. the MiniLM style classifier on `--embed-segments` of them (windows/s, segments/s, extrapolated to N),
  3. a re-run over unchanged files (per-file cache) against the first run: the ratio is the incremental saving.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pixel_pipeline.core.embeddings import Embedder  # noqa: E402
from pixel_pipeline.core.records import STYLES  # noqa: E402
from pixel_pipeline.ingest import segments as seg  # noqa: E402
from pixel_pipeline.ingest.cache import FileCache  # noqa: E402
from pixel_pipeline.ingest.style import StyleClassifier, text_windows  # noqa: E402
from pixel_pipeline.ingest.transcripts import split_sentences  # noqa: E402


class HashEmbedder:
    cache_namespace = "hash"

    def encode(self, texts, progress=None):
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for i, t in enumerate(texts):
            out[i, int(hashlib.md5(t[:64].encode()).hexdigest(), 16) % 64] = 1.0
        return out


def sentences_from(data_dir: Path) -> list[str]:
    pool: list[str] = []
    for path in sorted((data_dir / "training_segments").glob("*.json")):
        try:
            for row in json.loads(path.read_text(encoding="utf-8")):
                if isinstance(row, dict) and isinstance(row.get("text"), str):
                    pool.extend(split_sentences(row["text"]))
        except (ValueError, UnicodeDecodeError):
            continue
    return pool or ["We notice the breath and let the body settle into the present moment."]


def make_corpus(root: Path, n: int, pool: list[str], seed: int = 0) -> int:
    rng = random.Random(seed)
    folder = root / "training_segments"
    folder.mkdir(parents=True)
    per_file = -(-n // 10)
    written = 0
    for f in range(10):
        rows = []
        for _ in range(min(per_file, n - written)):
            target = int(min(3700, max(35, rng.lognormvariate(np.log(390), 0.5))))
            words: list[str] = []
            while len(words) < target:
                words.extend(rng.choice(pool).split())
            rows.append({"text": " ".join(words[:target]) + f" ({written})", "style": rng.choice(STYLES), "confidence": round(rng.uniform(0, 9.9), 2), "quality": round(rng.random(), 2), "source": f"channel_{rng.randrange(90)}", "file": f"talk_{rng.randrange(400)}.txt"})
            written += 1
        rows += [{"text": "", "style": "practical"}, {"text": rows[0]["text"], "style": "practical"}, {"style": "x", "confidence": float("nan")}]
        style = STYLES[f % 4]
        (folder / f"{style}_{['high', 'medium'][f % 2]}_quality_{f}.json").write_text(json.dumps(rows), encoding="utf-8")
    return written


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--segments", type=int, default=5000)
    parser.add_argument("--embed-segments", type=int, default=300, help="segments classified with the real model (0: skip)")
    parser.add_argument("--data-dir", default="data")
    args = parser.parse_args()
    settings = seg.SegmentSettings()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        n = make_corpus(root / "data", args.segments, sentences_from(Path(args.data_dir)))
        files, _ = seg.list_segment_inputs(root / "data", settings)
        size_mb = sum(f.path.stat().st_size for f in files) / 1e6

        classifier = StyleClassifier(HashEmbedder())
        cache = FileCache(root / "cache", "segments")
        (results, _), t_first = timed(lambda: seg.ingest_segment_files(files, settings, classifier, cache))
        (rows, rejects), t_combine = timed(lambda: seg.combine_file_results(results))
        acc = seg.accounting(results, rows, rejects)
        (again, stats), t_cached = timed(lambda: seg.ingest_segment_files(files, settings, classifier, cache))
        print(f"corpus: {n:,} segments + {len(rejects)} bad rows in {len(files)} files ({size_mb:.1f} MB)")
        print(f"{'step':<48}{'seconds':>10}{'rows/s':>12}")
        print(f"{'load + validate + cache write (no model)':<48}{t_first:>10.2f}{acc['rows_in'] / t_first:>12,.0f}")
        print(f"{'combine + duplicates':<48}{t_combine:>10.2f}{acc['rows_in'] / max(t_combine, 1e-9):>12,.0f}")
        print(f"{'re-run, unchanged files (per-file cache)':<48}{t_cached:>10.2f}{acc['rows_in'] / t_cached:>12,.0f}")
        print(f"accounting balanced: {acc['balanced']} (in {acc['rows_in']} = kept {acc['kept']} + rejected {acc['rejected']}); "
              f"cached re-run / first run = {t_cached / t_first:.2%} ({stats['cache_hits']} of {stats['files']} files from cache)")

        if args.embed_segments:
            texts = rows["text"].head(args.embed_segments).tolist()
            model = StyleClassifier(Embedder(cache_dir=None))
            model.predict(["warm up the model"])
            windows = sum(len(text_windows(t, model.settings.window_words, model.settings.max_windows)) for t in texts)
            (_, conf), t_embed = timed(lambda: model.predict(texts))
            print(f"{'MiniLM style classifier, ' + str(len(texts)) + ' segments':<48}{t_embed:>10.2f}{len(texts) / t_embed:>12,.1f}"
                  f"   ({windows} windows, {windows / t_embed:.1f} windows/s; extrapolated to {n:,} segments: {n / (len(texts) / t_embed) / 60:.1f} min)")


if __name__ == "__main__":
    main()
