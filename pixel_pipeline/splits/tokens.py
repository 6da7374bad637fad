"""Sequence lengths with the base model's own tokenizer and chat template.

Lengths are counted on the fully rendered chat (system + user + assistant, special tokens included), exactly what
the trainer feeds the model, so "exceeds max_seq_length" here means the trainer will have to cut or drop it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def sequence_lengths(tokenizer, conversations: Sequence[Sequence[Mapping[str, str]]], batch_size: int = 512) -> list[int]:
    """Token count of each chat rendered with the tokenizer's chat template."""
    lengths: list[int] = []
    for start in range(0, len(conversations), batch_size):
        chunk = conversations[start : start + batch_size]
        texts = [tokenizer.apply_chat_template(list(m), tokenize=False) for m in chunk]
        encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
        lengths.extend(len(ids) for ids in encoded)
    return lengths


def length_summary(lengths: Sequence[int], max_seq_length: int) -> dict[str, Any]:
    if not lengths:
        return {"rows": 0, "exceeding_max_length": 0}
    arr = np.asarray(lengths)
    return {
        "rows": int(arr.size),
        "tokens": int(arr.sum()),
        "mean": round(float(arr.mean()), 1),
        "p50": int(np.percentile(arr, 50)),
        "p95": int(np.percentile(arr, 95)),
        "p99": int(np.percentile(arr, 99)),
        "max": int(arr.max()),
        "exceeding_max_length": int((arr > max_seq_length).sum()),
    }


def histogram(lengths: Sequence[int], bins: int = 30) -> dict[str, list]:
    if not lengths:
        return {"bin_edges": [], "counts": []}
    counts, edges = np.histogram(np.asarray(lengths), bins=bins)
    return {"bin_edges": [int(round(e)) for e in edges.tolist()], "counts": counts.tolist()}


def token_statistics(
    lengths: Sequence[int], groups: Sequence[str], max_seq_length: int, over_length_policy: str
) -> dict[str, Any]:
    """Overall and per-group (e.g. `train/counseling`) summaries plus a histogram of all lengths."""
    by_group: dict[str, list[int]] = {}
    for length, group in zip(lengths, groups):
        by_group.setdefault(group, []).append(length)
    return {
        "max_seq_length": max_seq_length,
        "over_length_policy": over_length_policy,
        "overall": length_summary(lengths, max_seq_length),
        "by_group": {g: length_summary(v, max_seq_length) for g, v in sorted(by_group.items())},
        "histogram": histogram(lengths),
    }


def histogram_png(lengths_by_dataset: Mapping[str, Sequence[int]], max_seq_length: int) -> bytes:
    """PNG of the length histogram per dataset with the max length marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pixel_pipeline.core.plots import figure_to_png_bytes

    fig, ax = plt.subplots(figsize=(6, 3.2))
    every = [v for values in lengths_by_dataset.values() for v in values]
    bins = np.histogram_bin_edges(every, bins=30) if every else 30  # shared bins: bars comparable across datasets
    for name, values in lengths_by_dataset.items():
        if len(values):
            ax.hist(list(values), bins=bins, alpha=0.55, label=name)
    ax.axvline(max_seq_length, color="red", linestyle="--", label=f"max_seq_length={max_seq_length}")
    ax.set_title("tokens per pair (chat template applied)")
    ax.set_xlabel("tokens")
    ax.set_ylabel("pairs")
    ax.legend(fontsize=7)
    return figure_to_png_bytes(fig)
