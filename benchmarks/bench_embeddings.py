"""Embedding throughput: the pipeline's Embedder against plain `SentenceTransformer.encode`, same texts, one run.

    python benchmarks/bench_embeddings.py --texts 1000

Texts are realistic segments (lognormal lengths around ~390 words, 35-3,700 words) resampled from the sentences
of the corpus in --data-dir (default: the sample data in data/). The two encoders run on the same chunks of texts
in alternation (baseline first in even chunks, second in odd ones), so load from other processes on a shared
machine hits both alike. Printed, all measured in this run:
  - texts/s of plain SentenceTransformer.encode (float32, batch 32, normalize_embeddings=True),
  - texts/s of core.embeddings.Embedder with no cache (cold: every text computed), and the speed-up ratio,
  - cosine agreement of the two (min / mean / 1st percentile), target min >= 0.99,
  - texts/s of a second Embedder call over the same texts (warm SQLite cache).
Exit status 1 if the agreement target is missed; the speed target (>= 3x) is printed, not asserted.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _corpus import sentence_pool  # noqa: E402  (benchmarks/ is sys.path[0] when run as a script)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pixel_pipeline.core.embeddings import Embedder, load_sentence_transformer, resolve_model_path  # noqa: E402





def realistic_texts(n: int, pool: list[str], seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for i in range(n):
        target = int(min(3700, max(35, rng.lognormvariate(np.log(390), 0.5))))
        words: list[str] = []
        while len(words) < target:
            words.extend(rng.choice(pool).split())
        texts.append(" ".join(words[:target]) + f" ({i})")
    return texts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--chunk", type=int, default=128, help="texts per alternating chunk")
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[1] / "data")
    parser.add_argument("--model", default=None, help="model id or path (default: the packaged MiniLM)")
    parser.add_argument("--precision", default=None, help="Embedder precision (default: auto)")
    parser.add_argument("--backend", default=None, help="Embedder backend: auto, torch or openvino (default: auto)")
    args = parser.parse_args()

    texts = realistic_texts(args.texts, sentence_pool(args.data_dir))
    words = np.array([len(t.split()) for t in texts])
    print(f"{len(texts)} texts, words: median {int(np.median(words))}, p10 {int(np.percentile(words, 10))}, "
          f"p90 {int(np.percentile(words, 90))}, max {int(words.max())}")

    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} (other processes slow both encoders; compare ratios, not texts/s)")
    baseline_model = load_sentence_transformer(resolve_model_path(args.model), None, "float32")
    with tempfile.TemporaryDirectory() as cache_dir:
        embedder = Embedder(args.model, cache_dir=cache_dir, precision=args.precision, backend=args.backend)
        print(f"Embedder backend: {embedder.backend}, precision: {embedder.precision}, batch size {embedder.batch_size}")
        # Warm both up (model load, first-call allocations) on texts outside the measured set.
        warm = realistic_texts(16, sentence_pool(args.data_dir), seed=1)
        baseline_model.encode(warm, normalize_embeddings=True)
        t0 = time.perf_counter()
        embedder.encode(warm)  # also converts / compiles the OpenVINO model: a one-time cost, printed apart
        print(f"Embedder start-up (model load{', OpenVINO conversion + compile' if embedder.backend == 'openvino' else ''}"
              f" + 16 texts): {time.perf_counter() - t0:.1f} s")

        base_vecs, fast_vecs = [], []
        base_s = fast_s = 0.0
        for n, start in enumerate(range(0, len(texts), args.chunk)):
            chunk = texts[start : start + args.chunk]

            def run_base():
                t0 = time.perf_counter()
                v = baseline_model.encode(chunk, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
                return v, time.perf_counter() - t0

            def run_fast():
                t0 = time.perf_counter()
                v = embedder.encode(chunk)
                return v, time.perf_counter() - t0

            if n % 2 == 0:
                (bv, bt), (fv, ft) = run_base(), run_fast()
            else:
                (fv, ft), (bv, bt) = run_fast(), run_base()
            base_vecs.append(bv)
            fast_vecs.append(fv)
            base_s += bt
            fast_s += ft
            print(f"  chunk {n}: baseline {len(chunk) / bt:6.1f} texts/s, Embedder {len(chunk) / ft:6.1f} texts/s", flush=True)

        t0 = time.perf_counter()
        embedder.encode(texts)
        warm_s = time.perf_counter() - t0

    base = np.concatenate(base_vecs)
    fast = np.concatenate(fast_vecs)
    cosine = np.sum(base * fast, axis=1) / (np.linalg.norm(base, axis=1) * np.linalg.norm(fast, axis=1))
    ratio = base_s / fast_s
    print()
    print("| encoder | texts/s | seconds |")
    print("| --- | ---: | ---: |")
    print(f"| plain SentenceTransformer.encode (float32) | {len(texts) / base_s:.1f} | {base_s:.1f} |")
    print(f"| Embedder, cold ({embedder.backend}, {embedder.precision}, length-sorted) | {len(texts) / fast_s:.1f} | {fast_s:.1f} |")
    print(f"| Embedder, warm cache | {len(texts) / warm_s:.0f} | {warm_s:.2f} |")
    print()
    print(f"speed-up (cold): {ratio:.2f}x  (target >= 3x: {'met' if ratio >= 3 else 'NOT met'})")
    print(f"cosine agreement: min {cosine.min():.5f}, p1 {np.percentile(cosine, 1):.5f}, mean {cosine.mean():.6f}"
          f"  (target min >= 0.99: {'met' if cosine.min() >= 0.99 else 'NOT met'})")
    return 0 if cosine.min() >= 0.99 else 1


if __name__ == "__main__":
    raise SystemExit(main())
