"""The embedding window: MiniLM reading 256 word pieces per text (its config, the chain's setting) against 128 (the
length it was trained at), on the same real segments, in one run.

    python benchmarks/bench_embedding_window.py --data-dir /tmp/realdev --texts 384

Segments are drawn (seeded) from --data-dir/training_segments/*.json. The two windows run on the same chunks in
alternation (256 first in even chunks, 128 in odd ones), each a fresh Embedder without cache, so load from other
processes hits both alike. Printed: texts/s of each window, the speed-up, and the cosine between a text's two
vectors (median, 10th percentile, min): how far the shorter window moves what every embedding rule reads. What
the decisions do with the shorter window (off_domain, the quality classifier) is measured by
`python scripts/train_quality_classifier.py --max-seq-length 128` (docs/speed.md, session 10).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _corpus import segment_texts  # noqa: E402  (benchmarks/ is sys.path[0] when run as a script)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pixel_pipeline.core.embeddings import Embedder  # noqa: E402


def drawn_segments(data_dir: Path, n: int, seed: int) -> list[str]:
    texts = [t for t in segment_texts(data_dir) if t.strip()]
    if not texts:
        raise SystemExit(f"no segments under {data_dir / 'training_segments'}")
    random.Random(seed).shuffle(texts)
    return texts[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[1] / "data")
    parser.add_argument("--texts", type=int, default=384)
    parser.add_argument("--chunk", type=int, default=64, help="texts per alternating chunk")
    parser.add_argument("--windows", type=int, nargs=2, default=(256, 128))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    texts = drawn_segments(args.data_dir, args.texts, args.seed)
    embedders = {w: Embedder(max_seq_length=w) for w in args.windows}
    for e in embedders.values():  # load and compile outside the timing
        e.encode(texts[:4])
    seconds = {w: 0.0 for w in args.windows}
    vectors = {w: [] for w in args.windows}
    for i, start in enumerate(range(0, len(texts), args.chunk)):
        chunk = texts[start : start + args.chunk]
        order = args.windows if i % 2 == 0 else args.windows[::-1]
        for w in order:
            t = time.perf_counter()
            vectors[w].append(embedders[w].encode(chunk))
            seconds[w] += time.perf_counter() - t
    long_w, short_w = args.windows
    a, b = np.concatenate(vectors[long_w]), np.concatenate(vectors[short_w])
    cos = (a * b).sum(axis=1)
    print(f"{len(texts)} real segments from {args.data_dir}")
    print("| window (word pieces) | texts/s |\n| ---: | ---: |")
    for w in args.windows:
        print(f"| {w} | {len(texts) / seconds[w]:.1f} |")
    print(f"speed-up {long_w} -> {short_w}: {seconds[long_w] / seconds[short_w]:.2f}x")
    print(f"cosine of a text's two vectors: median {np.median(cos):.3f}, p10 {np.percentile(cos, 10):.3f}, "
          f"min {cos.min():.3f}")


if __name__ == "__main__":
    main()
