"""Near-duplicate detection at scale: time, peak memory, recall and precision against planted duplicates.

    python benchmarks/bench_dedup.py                 # 100,000 generated segments (~390 words each)
    python benchmarks/bench_dedup.py --n 10000       # quicker
    python benchmarks/bench_dedup.py --corpus output/tables/raw_segments.parquet   # real texts, cycled to --n

The corpus: segments of realistic length (log-normal around 390 words, 35-3,700) drawn Zipf-wise from a 21k-word
English vocabulary, or real texts when --corpus is given. Planted:
- near duplicates: for `--dup-share` of the segments, a light edit (about 1 % of words substituted, 0.5 % deleted,
  0.5 % inserted, a few words trimmed at either end as if cut at another boundary, case and punctuation changed);
- hard negatives: pairs that share a long window (40 % of their words, like overlapping cuts of one transcript),
  which are *not* duplicates at the 0.8 threshold.
Recall = planted pairs found / planted; precision = found pairs that are planted / found pairs.
Baseline, on the same subsample: datasketch's own per-document MinHash (`MinHash.update_batch`, SHA-1 per shingle)
feeding the same LSH, reported as a time ratio.
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pixel_pipeline.curation.dedup import (  # noqa: E402
    NearDupSettings,
    jaccard,
    lsh_candidates,
    minhash_signatures,
    near_pairs,
    shingle_sets,
)
from pixel_pipeline.curation.text import english_vocabulary  # noqa: E402


def generate(n: int, rng: np.random.Generator, corpus: str | None) -> list[str]:
    if corpus:
        import pandas as pd

        path = Path(corpus)
        texts = (pd.read_parquet(path)["text"].tolist() if path.suffix == ".parquet"
                 else [line for line in path.read_text(encoding="utf-8").split("\n\n") if line.strip()])
        base = [t for t in texts if len(t.split()) >= 35]
        # cycle with a per-copy word shuffle of one sentence window so cycled copies are not duplicates
        out = []
        for i in range(n):
            w = base[i % len(base)].split()
            if i >= len(base):
                rng.shuffle(w)
            out.append(" ".join(w))
        return out
    vocab = np.array(sorted(english_vocabulary()))
    ranks = np.arange(1, len(vocab) + 1)
    p = 1.0 / ranks**1.07
    p /= p.sum()
    lengths = np.clip(rng.lognormal(np.log(390), 0.45, n).astype(int), 35, 3700)
    ids = rng.choice(len(vocab), size=int(lengths.sum()), p=p)
    out, pos = [], 0
    for k in lengths:
        out.append(" ".join(vocab[ids[pos : pos + k]]))
        pos += k
    return out


def light_edit(text: str, rng: np.random.Generator, vocab: np.ndarray) -> str:
    w = text.split()
    trim_start, trim_end = rng.integers(0, 4), rng.integers(0, 4)
    w = w[trim_start : len(w) - trim_end]
    out = []
    for word in w:
        r = rng.random()
        if r < 0.005:
            continue  # delete
        if r < 0.015:
            word = str(vocab[rng.integers(len(vocab))])  # substitute
        if rng.random() < 0.005:
            out.append(str(vocab[rng.integers(len(vocab))]))  # insert
        if rng.random() < 0.03:
            word = word.capitalize() + rng.choice([",", ".", ""])
        out.append(word)
    return " ".join(out)


def plant(texts: list[str], dup_share: float, neg_share: float, rng: np.random.Generator):
    vocab = np.array(sorted(english_vocabulary()))
    n = len(texts)
    n_dup, n_neg = int(n * dup_share), int(n * neg_share)
    chosen = rng.choice(n, size=n_dup + 2 * n_neg, replace=False)
    dup_src, neg_a, neg_b = chosen[:n_dup], chosen[n_dup : n_dup + n_neg], chosen[n_dup + n_neg :]
    planted = set()
    texts = list(texts)
    for s in dup_src:
        texts.append(light_edit(texts[s], rng, vocab))
        planted.add((int(s), len(texts) - 1))
    for a, b in zip(neg_a, neg_b):
        wa, wb = texts[a].split(), texts[b].split()
        k = int(0.4 * min(len(wa), len(wb)))
        texts[b] = " ".join(wa[len(wa) - k :] + wb[k:])  # b starts with a's last 40 %
    return texts, planted


def run_near(texts: list[str], s: NearDupSettings):
    gc.collect()
    tracemalloc.start()
    t0 = time.perf_counter()
    sh = shingle_sets(texts, s.shingle_words)
    t1 = time.perf_counter()
    sig = minhash_signatures(sh, s.num_perm, s.seed)
    t2 = time.perf_counter()
    edges, stats = near_pairs(sh, s, signatures=sig)
    t3 = time.perf_counter()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    found = {(min(i, j), max(i, j)) for i, j in zip(edges["i"], edges["j"])}
    return found, {"shingles_s": t1 - t0, "signatures_s": t2 - t1, "lsh_verify_s": t3 - t2, "total_s": t3 - t0,
                   "peak_traced_mb": peak / 2**20, **stats}


def baseline(texts: list[str], s: NearDupSettings) -> tuple[float, set]:
    """datasketch used the usual way: MinHash.update_batch per document + MinHashLSH insert / query, timed.

    Fed the same shingle hashes, so the candidate sets must agree with the vectorised path (checked below).
    """
    from datasketch import LeanMinHash, MinHash, MinHashLSH

    t0 = time.perf_counter()
    sh = shingle_sets(texts, s.shingle_words)
    lsh = MinHashLSH(threshold=s.near_threshold, num_perm=s.num_perm, params=(s.lsh_bands, s.lsh_rows))
    mhs = []
    for i, x in enumerate(sh):
        m = MinHash(num_perm=s.num_perm, seed=s.seed, scheme="affine64", hashfunc=int)
        m.update_batch(x.tolist())
        lm = LeanMinHash(m)
        mhs.append(lm)
        lsh.insert(i, lm, check_duplication=False)
    cands = {(min(i, j), max(i, j)) for i, m in enumerate(mhs) for j in lsh.query(m) if j != i}
    return time.perf_counter() - t0, cands


def score(found: set, planted: set) -> tuple[float, float]:
    tp = len(found & planted)
    recall = tp / len(planted) if planted else 1.0
    precision = tp / len(found) if found else 1.0
    return recall, precision


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="segments before planting (default 100000)")
    ap.add_argument("--dup-share", type=float, default=0.02)
    ap.add_argument("--neg-share", type=float, default=0.01)
    ap.add_argument("--baseline-n", type=int, default=5000, help="subsample for the datasketch baseline")
    ap.add_argument("--corpus", default=None)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)

    t0 = time.perf_counter()
    texts, planted = plant(generate(args.n, rng, args.corpus), args.dup_share, args.neg_share, rng)
    words_total = sum(len(t.split()) for t in texts)
    print(f"corpus: {len(texts):,} segments, {words_total / len(texts):.0f} words mean, {len(planted):,} planted "
          f"near-duplicate pairs, {int(args.n * args.neg_share):,} hard-negative overlaps (built in {time.perf_counter() - t0:.1f}s)")

    s = NearDupSettings()
    found, m = run_near(texts, s)
    recall, precision = score(found, planted)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nnear-dup (num_perm={s.num_perm}, {s.lsh_bands}x{s.lsh_rows} bands, {s.shingle_words}-word shingles, "
          f"Jaccard >= {s.near_threshold}):")
    print(f"  time {m['total_s']:.1f}s  (shingles {m['shingles_s']:.1f}s, signatures {m['signatures_s']:.1f}s, "
          f"LSH + verify {m['lsh_verify_s']:.1f}s)")
    print(f"  peak memory: {m['peak_traced_mb']:.0f} MB traced allocations, {rss_mb:.0f} MB max RSS (process)")
    print(f"  candidates {m['candidate_pairs']:,}, verified {m['verified_pairs']:,}")
    sh_all = shingle_sets(texts, s.shingle_words)
    planted_j = np.array([jaccard(sh_all[a], sh_all[b]) for a, b in planted])
    at_threshold = {p for p, j in zip(planted, planted_j) if j >= s.near_threshold}
    print(f"  planted pairs' true Jaccard: min {planted_j.min():.3f}, 5% {np.quantile(planted_j, 0.05):.3f}, "
          f"median {np.median(planted_j):.3f}; {len(at_threshold)}/{len(planted)} are >= {s.near_threshold}")
    print(f"  recall among those at/above the threshold: {len(found & at_threshold) / max(1, len(at_threshold)):.4f}")
    print(f"  recall {recall:.4f}  precision {precision:.4f}  (targets: recall >= 0.95 at precision >= 0.99)")

    # smaller-permutation config on the full corpus
    small = NearDupSettings(num_perm=64, lsh_bands=16, lsh_rows=4)
    found_s, ms = run_near(texts, small)
    r_s, p_s = score(found_s, planted)
    print(f"\nsmaller config (num_perm=64, 16x4 bands): time {ms['total_s']:.1f}s, recall {r_s:.4f}, "
          f"precision {p_s:.4f}, candidates {ms['candidate_pairs']:,}")

    # baseline: datasketch's own MinHash + MinHashLSH on a subsample; ours on the same subsample
    pair_docs = [k for p in sorted(planted)[: args.baseline_n // 10] for k in p]
    others = [k for k in range(args.baseline_n) if k not in set(pair_docs)]
    sub = [texts[k] for k in (pair_docs + others)[: args.baseline_n]]
    t_base, cand_base = baseline(sub, s)
    t0 = time.perf_counter()
    sh_sub = shingle_sets(sub, s.shingle_words)
    cand_ours = lsh_candidates(minhash_signatures(sh_sub, s.num_perm, s.seed), s.lsh_bands, s.lsh_rows,
                               np.array([len(x) > 0 for x in sh_sub]))
    t_ours = time.perf_counter() - t0
    same = cand_base == {(int(i), int(j)) for i, j in cand_ours}
    print(f"\nbaseline on {len(sub):,} segments: datasketch MinHash.update_batch + MinHashLSH insert/query "
          f"{t_base:.1f}s vs vectorised {t_ours:.1f}s -> {t_base / max(t_ours, 1e-9):.1f}x faster; "
          f"identical candidate pairs: {same} ({len(cand_base)} pairs); "
          f"baseline extrapolated to {len(texts):,}: ~{t_base * len(texts) / len(sub):.0f}s")


if __name__ == "__main__":
    main()
