"""Quality figures of a prompt table: distinctness, specificity, alignment, generator mix; markdown for the UI."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from pixel_pipeline.core.markdown import markdown_table

from pixel_pipeline.prompts.specificity import recall_at_1
from pixel_pipeline.prompts.text import distinct_n, distinct_ratio


def prompt_metrics(prompts: Sequence[str], responses: Sequence[str], alignment: Sequence[float] | None = None) -> dict:
    """specificity = BM25 recall@1 of the true response among all `responses` queried with its prompt."""
    prompts, responses = list(prompts), list(responses)
    out = {
        "pairs": len(prompts),
        "specificity_bm25_recall_at_1": round(recall_at_1(prompts, responses), 4),
        "distinct_prompts": round(distinct_ratio(prompts), 4),
        "distinct_2": round(distinct_n(prompts, 2), 4),
    }
    if alignment is not None and len(alignment):
        s = pd.Series(list(alignment), dtype="float64")
        out["alignment_mean"] = round(float(s.mean()), 4)
        out["alignment_p10"] = round(float(s.quantile(0.1)), 4)
    return out


def generator_distribution(table: pd.DataFrame) -> pd.DataFrame:
    """Rows: style; columns: generator; values: pairs won (plus a total column)."""
    if table.empty:
        return pd.DataFrame()
    dist = pd.crosstab(table["style"].fillna("unknown"), table["generator"])
    dist["total"] = dist.sum(axis=1)
    return dist




def sample_pairs_markdown(table: pd.DataFrame, responses: dict[str, str], per_style: int = 3, seed: int = 0) -> str:
    if table.empty:
        return "_(no pairs)_"
    picks = []
    for _style, group in table.groupby(table["style"].fillna("unknown"), sort=True):
        picks.append(group.sample(n=min(per_style, len(group)), random_state=seed))
    sample = pd.concat(picks)
    frame = pd.DataFrame(
        {
            "style": sample["style"],
            "generator": sample["generator"],
            "alignment": sample["alignment"].round(3),
            "prompt": sample["prompt"],
            "response (start)": [_clip(responses.get(s, ""), 40) for s in sample["segment_id"]],
        }
    )
    return markdown_table(frame, index=False)


def _clip(text: str, n_words: int) -> str:
    ws = str(text).split()
    return " ".join(ws[:n_words]) + (" ..." if len(ws) > n_words else "")


