"""Small matplotlib figures rendered to PNG and embedded in Dagster markdown metadata."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def figure_to_markdown(fig, title: str) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f"![{title}](data:image/png;base64,{data})"


def figure_to_png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def histogram_markdown(
    series: Mapping[str, Sequence[float]] | Sequence[float],
    title: str,
    xlabel: str,
    bins: int = 30,
) -> str:
    """Histogram of one series, or overlaid histograms of several named series (e.g. lengths by style)."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    named = series if isinstance(series, Mapping) else {"": series}
    for name, values in named.items():
        values = [float(v) for v in values]
        if values:
            ax.hist(values, bins=bins, alpha=0.55, label=name or None)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    if isinstance(series, Mapping) and len(series) > 1:
        ax.legend(fontsize=7)
    return figure_to_markdown(fig, title)


def bar_markdown(counts: Mapping[str, float], title: str, ylabel: str = "count") -> str:
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.bar([str(k) for k in counts], [float(v) for v in counts.values()])
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.tick_params(axis="x", rotation=30, labelsize=7)
    return figure_to_markdown(fig, title)


def line_markdown(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], title: str, xlabel: str, ylabel: str) -> str:
    """Overlaid (x, y) curves, e.g. train / validation loss per step."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for name, (xs, ys) in curves.items():
        ax.plot(list(xs), list(ys), marker="o" if len(xs) < 30 else None, markersize=3, label=name)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if curves:
        ax.legend(fontsize=7)
    return figure_to_markdown(fig, title)
