"""Three-level dedup: exact (normalised text hash), near (MinHash + LSH on word shingles), semantic (cosine).

Near-dup at scale: MinHash signatures are computed for many documents at once with numpy (one affine permutation
family over 64-bit shingle hashes, min-reduced per document), then indexed with datasketch's `MinHashLSH` using
recall-leaning bands (default 20 bands x 6 rows for a 0.8 threshold); every LSH candidate pair is verified with the
exact Jaccard of the two shingle sets, so precision does not depend on the LSH parameters. Everything is linear in
corpus size apart from the candidate pairs, which are few for real text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from datasketch import LeanMinHash, MinHashLSH
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from pixel_pipeline.curation.text import ngram_hashes, normalise_for_hash, word_hashes, words

KIND_PRIORITY = {"exact": 0, "near": 1, "semantic": 2, "prompt": 3}
EDGE_COLUMNS = ["i", "j", "kind", "similarity"]


# ---- exact --------------------------------------------------------------------------------------------------
def exact_keys(texts: Sequence[str]) -> list[str]:
    return [hashlib.sha256(normalise_for_hash(t or "").encode("utf-8")).hexdigest()[:16] for t in texts]


def exact_pairs(texts: Sequence[str]) -> pd.DataFrame:
    """Edges from every member of an exact group to its first member."""
    keys = pd.Series(exact_keys(texts))
    first = keys.groupby(keys).transform(lambda s: s.index[0])
    idx = np.flatnonzero(first.to_numpy() != np.arange(len(keys)))
    return pd.DataFrame({"i": first.to_numpy()[idx].astype(int), "j": idx.astype(int), "kind": "exact", "similarity": 1.0},
                        columns=EDGE_COLUMNS)


# ---- near: MinHash + LSH ----------------------------------------------------------------------------------------
def shingle_sets(texts: Sequence[str], shingle_words: int = 3) -> list[np.ndarray]:
    """Sorted unique 64-bit hashes of the word n-grams of each text (lower-cased, punctuation ignored)."""
    out = []
    for t in texts:
        h = word_hashes(words(t or ""))
        if len(h) < shingle_words:
            out.append(np.unique(ngram_hashes(h, len(h))) if len(h) else np.zeros(0, np.uint64))
        else:
            out.append(np.unique(ngram_hashes(h, shingle_words)))
    return out


def permutations(num_perm: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Affine permutations h -> a*h + b (mod 2^64) with odd a: bijective on 64-bit hashes."""
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
    return a, b


def minhash_signatures(shingles: Sequence[np.ndarray], num_perm: int = 128, seed: int = 1,
                       chunk_shingles: int = 200_000) -> np.ndarray:
    """(n, num_perm) uint64 MinHash signatures, computed in vectorised chunks of documents.

    Empty documents get the all-ones signature (they never match anything that has shingles).
    """
    a, b = permutations(num_perm, seed)
    n = len(shingles)
    sig = np.full((n, num_perm), np.iinfo(np.uint64).max, dtype=np.uint64)
    lengths = np.fromiter((len(s) for s in shingles), dtype=np.int64, count=n)
    start = 0
    with np.errstate(over="ignore"):
        while start < n:
            stop, total = start, 0
            while stop < n and (total + lengths[stop] <= chunk_shingles or stop == start):
                total += lengths[stop]
                stop += 1
            docs = [i for i in range(start, stop) if lengths[i] > 0]
            if docs:
                flat = np.concatenate([shingles[i] for i in docs])
                offsets = np.concatenate(([0], np.cumsum(lengths[docs])[:-1]))
                permuted = flat[:, None] * a[None, :] + b[None, :]
                sig[docs] = np.minimum.reduceat(permuted, offsets, axis=0)
            start = stop
    return sig


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) == 0 and len(b) == 0:
        return 1.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)


@dataclass(frozen=True)
class NearDupSettings:
    near_threshold: float = 0.8
    num_perm: int = 128
    shingle_words: int = 3
    lsh_bands: int = 20  # bands x rows <= num_perm; 20 x 6 finds pairs at J=0.8 with p=0.998, at J=0.7 with 0.92
    lsh_rows: int = 6
    seed: int = 1


def near_pairs(shingles: Sequence[np.ndarray], s: NearDupSettings = NearDupSettings(),
               signatures: np.ndarray | None = None) -> tuple[pd.DataFrame, dict]:
    """Verified near-duplicate edges (exact shingle Jaccard >= near_threshold) and LSH statistics."""
    if s.lsh_bands * s.lsh_rows > s.num_perm:
        raise ValueError(f"lsh_bands * lsh_rows ({s.lsh_bands}x{s.lsh_rows}) exceeds num_perm ({s.num_perm})")
    sig = minhash_signatures(shingles, s.num_perm, s.seed) if signatures is None else signatures
    lsh = MinHashLSH(threshold=s.near_threshold, num_perm=s.num_perm, params=(s.lsh_bands, s.lsh_rows))
    minhashes = {}
    for i, sh in enumerate(shingles):
        if len(sh) == 0:
            continue
        m = LeanMinHash(seed=s.seed, hashvalues=sig[i])
        minhashes[i] = m
        lsh.insert(i, m, check_duplication=False)
    candidates = set()
    for i, m in minhashes.items():
        for j in lsh.query(m):
            if j > i:
                candidates.add((i, j))
    edges = []
    for i, j in candidates:
        jac = jaccard(shingles[i], shingles[j])
        if jac >= s.near_threshold:
            edges.append((i, j, "near", round(jac, 4)))
    stats = {"candidate_pairs": len(candidates), "verified_pairs": len(edges)}
    return pd.DataFrame(edges, columns=EDGE_COLUMNS), stats


# ---- semantic ---------------------------------------------------------------------------------------------------
def semantic_pairs(vectors: np.ndarray, semantic_threshold: float = 0.95, block: int = 2048) -> pd.DataFrame:
    """Pairs with cosine >= threshold (vectors L2-normalised), by blocked matrix products (O(n^2 d) time, O(block n) memory)."""
    n = len(vectors)
    rows = []
    vectors = np.asarray(vectors, dtype=np.float32)
    for start in range(0, n, block):
        sims = vectors[start : start + block] @ vectors.T
        ii, jj = np.nonzero(sims >= semantic_threshold)
        gi = ii + start
        keep = jj > gi
        for a, b, c in zip(gi[keep], jj[keep], sims[ii[keep], jj[keep]]):
            rows.append((int(a), int(b), "semantic", round(float(c), 4)))
    return pd.DataFrame(rows, columns=EDGE_COLUMNS)


# ---- clusters and the best member ---------------------------------------------------------------------------
def resolve_clusters(n: int, edges: pd.DataFrame, member_score: Sequence[float], ids: Sequence[str]) -> pd.DataFrame:
    """Per row: dup_cluster (None for singletons), keep (bool), kept_index, kind, similarity.

    Rows joined by any edge form one cluster (connected components); the member with the highest `member_score`
    is kept (ties: the smaller id, so the choice is stable). Dropped rows carry the strongest edge kind they have.
    """
    out = pd.DataFrame({"dup_cluster": [None] * n, "keep": True, "kept_index": np.arange(n), "kind": None,
                        "similarity": np.nan})
    if n == 0 or edges.empty:
        return out
    i, j = edges["i"].to_numpy(int), edges["j"].to_numpy(int)
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    score = np.asarray(member_score, dtype=float)
    frame = pd.DataFrame({"label": labels, "score": score, "id": list(ids), "row": np.arange(n)})
    sizes = frame.groupby("label")["row"].transform("size").to_numpy()
    best = (frame.sort_values(["label", "score", "id"], ascending=[True, False, True])
            .groupby("label")["row"].first())
    kept_index = best.reindex(labels).to_numpy()
    # strongest edge per row
    both = pd.concat([edges.assign(row=i), edges.assign(row=j)])
    both["priority"] = both["kind"].map(KIND_PRIORITY)
    strongest = both.sort_values(["row", "priority", "similarity"], ascending=[True, True, False]).groupby("row").first()
    in_cluster = sizes > 1
    out["kept_index"] = np.where(in_cluster, kept_index, np.arange(n))
    out["keep"] = out["kept_index"].to_numpy() == np.arange(n)
    ids_arr = np.asarray(list(ids), dtype=object)
    out["dup_cluster"] = [f"dup-{ids_arr[k]}" if c else None for k, c in zip(out["kept_index"], in_cluster)]
    out.loc[strongest.index, "kind"] = strongest["kind"].to_numpy()
    out.loc[strongest.index, "similarity"] = strongest["similarity"].to_numpy()
    return out


def remaining_duplicate_rate(texts: Sequence[str], s: NearDupSettings = NearDupSettings()) -> dict:
    """Share of rows that still have an exact or near duplicate (the blocking check after dedup)."""
    n = len(texts)
    if n == 0:
        return {"rows": 0, "rows_with_duplicate": 0, "rate": 0.0}
    e = exact_pairs(texts)
    nr, _ = near_pairs(shingle_sets(texts, s.shingle_words), s)
    involved = set(e["i"]) | set(e["j"]) | set(nr["i"]) | set(nr["j"])
    return {"rows": n, "rows_with_duplicate": len(involved), "rate": round(len(involved) / n, 4)}
