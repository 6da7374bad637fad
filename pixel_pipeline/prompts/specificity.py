"""Specificity: does the prompt say what its answer is about?

Measured as BM25 recall@1: query all responses with the prompt and count how often the true response ranks first
(strictly above every other response). Topic-word templates score near zero on this; a prompt grounded in the
segment's own key phrases finds its answer. Scoring is rank_bm25's BM25Okapi (same idf floor, k1, b), laid out as a
sparse document-term matrix so thousands of queries against thousands of responses take seconds instead of the
per-query Python loop of `get_scores`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rank_bm25 import BM25Okapi
from scipy import sparse

from pixel_pipeline.prompts.text import STOP_WORDS, words


def bm25_tokens(text: str) -> list[str]:
    """Lowercase words minus English stop words: what BM25 indexes and queries with."""
    return [t for t in words(text) if t not in STOP_WORDS]


class BM25Index:
    """All responses of one table, queried by many prompts at once."""

    def __init__(self, documents: Sequence[str], k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25):
        tokenised = [bm25_tokens(d) or ["\x00empty"] for d in documents]  # BM25Okapi cannot take empty docs
        self.okapi = BM25Okapi(tokenised, k1=k1, b=b, epsilon=epsilon)
        self.vocabulary: dict[str, int] = {w: i for i, w in enumerate(self.okapi.idf)}
        rows, cols, vals = [], [], []
        doc_len = np.asarray(self.okapi.doc_len, dtype=np.float64)
        norm = k1 * (1 - b + b * doc_len / self.okapi.avgdl)
        for d, freqs in enumerate(self.okapi.doc_freqs):
            for term, f in freqs.items():
                rows.append(d)
                cols.append(self.vocabulary[term])
                vals.append(self.okapi.idf[term] * f * (k1 + 1) / (f + norm[d]))
        self.weights = sparse.csr_matrix((vals, (rows, cols)), shape=(len(tokenised), len(self.vocabulary)))

    def __len__(self) -> int:
        return self.weights.shape[0]

    def query_matrix(self, queries: Sequence[str]) -> sparse.csr_matrix:
        """Term counts of each query (a repeated query word counts again, as in BM25Okapi.get_scores)."""
        rows, cols = [], []
        for q, text in enumerate(queries):
            for t in bm25_tokens(text):
                j = self.vocabulary.get(t)
                if j is not None:
                    rows.append(q)
                    cols.append(j)
        return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(queries), len(self.vocabulary)))

    def scores(self, queries: Sequence[str]) -> np.ndarray:
        """Dense (n_queries, n_documents) BM25 scores."""
        return np.asarray((self.query_matrix(queries) @ self.weights.T).todense())

    def ranks(self, queries: Sequence[str], targets: Sequence[int], max_cells: int = 1 << 22) -> np.ndarray:
        """1-based rank of document targets[i] for query i; ties with the target count against it.

        A query sharing no word with the target gets rank len(index) (it cannot find its answer at all). Queries go
        in chunks of at most `max_cells` dense scores (32 MB), so memory stays flat as the corpus grows; the time is
        still queries x documents (docs/speed.md).
        """
        out = np.empty(len(queries), dtype=np.int64)
        targets = np.asarray(targets, dtype=np.int64)
        chunk_size = max(1, max_cells // max(1, len(self)))
        for start in range(0, len(queries), chunk_size):
            s = self.scores(queries[start : start + chunk_size])
            t = targets[start : start + chunk_size]
            own = s[np.arange(len(t)), t]
            rank = (s >= own[:, None]).sum(axis=1)  # counts the target itself, so the best possible rank is 1
            rank[own <= 0] = len(self)
            out[start : start + len(t)] = rank
        return out


def recall_at_1(prompts: Sequence[str], responses: Sequence[str]) -> float:
    """Share of pairs whose prompt ranks its own response first among all responses."""
    if not prompts:
        return 0.0
    ranks = BM25Index(responses).ranks(list(prompts), list(range(len(prompts))))
    return float(np.mean(ranks == 1))
