"""The one shape of a curation rule, and the adapter that runs an ordered list of them over a batch.

As in DataTrove, a rule judges one item (a text, or what shaping made of it) and returns a `Judgement`: keep, or
reject with a reason `<rule>: <why, with figures>`, plus the score kept as `score_<rule>` and the measures behind the
decision (kept in the rejects' details). Unlike DataTrove, every rule judges every row: a reject lists every rule that
fired, not only the first, and all scores are kept. Rules that compare a text with the rest of the batch (off_domain's
corpus centroid, the quality classifier over the embeddings) judge the whole batch at once (`judge_batch`).

A rule's result on a batch is a frame with RULE_COLUMNS, one row per item: `score`, `fired`, `reason`, `measures`.
Per-text results go through the rule cache (`RuleScores`), keyed by rule, thresholds, the rule code and the text.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from pixel_pipeline.core.ids import sha256_hex
from pixel_pipeline.core.parallel import map_batches
from pixel_pipeline.curation.cache import ScoreCache

RULE_COLUMNS = ["score", "fired", "reason", "measures"]


@dataclass(frozen=True)
class Judgement:
    """One rule's verdict on one item; `reason` (set when rejected) starts with the rule's name."""

    keep: bool
    reason: str | None = None
    measures: dict = field(default_factory=dict)
    score: float = math.nan

    def row(self) -> dict[str, Any]:
        return {"score": self.score, "fired": not self.keep, "reason": self.reason, "measures": self.measures}

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "Judgement":
        return cls(keep=not row["fired"], reason=row["reason"], measures=row["measures"], score=row["score"])


def judgements_frame(judgements: Iterable[Judgement]) -> pd.DataFrame:
    """The generic adapter's output: one RULE_COLUMNS row per judged item."""
    return pd.DataFrame([j.row() for j in judgements], columns=RULE_COLUMNS)


def not_scored(n: int) -> pd.DataFrame:
    """A rule that could not judge (no embedding model, switched off): keeps every row, score NaN."""
    return pd.DataFrame({"score": [np.nan] * n, "fired": [False] * n, "reason": [None] * n,
                         "measures": [{} for _ in range(n)]})


# ---- the rule cache ----------------------------------------------------------------------------------------------
RULE_MODULES = ("filters", "safety", "pii", "text", "shaping", "rules", "ruleset")


@functools.lru_cache(maxsize=1)
def rules_code_version() -> str:
    """Hash of the per-text rule modules' source: editing a rule invalidates its cached results."""
    import importlib

    modules = [importlib.import_module(f"pixel_pipeline.curation.{m}") for m in RULE_MODULES]
    return sha256_hex("".join(inspect.getsource(m) for m in modules))[:12]


class RuleScores:
    """Per-text rule results through the rule cache, so a re-run only scores texts it has not seen.

    Every per-text rule depends on the text and its thresholds alone; the cache key is (rule, thresholds, rule code,
    text). With no cache every call computes. What is computed is spread over `workers` processes (0 = one per
    core; core.parallel), since every rule is pure.
    """

    def __init__(self, cache: ScoreCache | None, workers: int = 0):
        self.cache = cache
        self.workers = workers
        self.stats = {"hits": 0, "computed": 0}

    def _scoped(self, name: str, settings: dict) -> ScoreCache:
        return self.cache.scoped(f"{name}|{json.dumps(settings, sort_keys=True, default=str)}|code={rules_code_version()}")

    def _count(self, scoped: ScoreCache) -> None:
        for key in self.stats:
            self.stats[key] += scoped.stats[key]

    def rule(self, name: str, texts: Sequence[str], compute: Callable[[list[str]], pd.DataFrame], **settings) -> pd.DataFrame:
        """`compute(texts)` -> one rule row (RULE_COLUMNS) per text."""
        texts = list(texts)
        if not texts:
            return compute(texts).reset_index(drop=True)

        def rows_of(chunk: list[str]) -> list[dict]:
            return compute(chunk).to_dict("records")

        if self.cache is None:
            return pd.DataFrame(map_batches(rows_of, texts, self.workers), columns=RULE_COLUMNS)
        scoped = self._scoped(name, settings)
        rows = scoped.map_batch(texts, lambda missing: map_batches(rows_of, missing, self.workers))
        self._count(scoped)
        return pd.DataFrame(rows, columns=RULE_COLUMNS)

    def each(self, name: str, texts: Sequence[str], compute: Callable[[str], Any], **settings) -> list[Any]:
        """`compute(text)` per text; values must survive JSON (lists, dicts, numbers, strings)."""
        texts = list(texts)

        def each_of(chunk: list[str]) -> list[Any]:
            return [compute(t) for t in chunk]

        if self.cache is None or not texts:  # through JSON: the same types as a cached read
            return [json.loads(json.dumps(v)) for v in map_batches(each_of, texts, self.workers)]
        scoped = self._scoped(name, settings)
        values = scoped.map_batch(texts, lambda missing: map_batches(each_of, missing, self.workers))
        self._count(scoped)
        return values


# ---- the shape ----------------------------------------------------------------------------------------------------
class Rule:
    """A curation rule: `name` is its reason key; `judge_batch` returns one RULE_COLUMNS row per row of the batch.

    The batch is what curation prepared (curate.SegmentEvidence, curate.ConversationBatch): the texts in each form,
    plus `rules`, the frames of the rules judged so far (a batch rule may read them)."""

    name: ClassVar[str]
    conversations: ClassVar[bool] = True  # conversation responses are judged by it too (else segments only)

    def judge_batch(self, batch: Any, scores: RuleScores) -> pd.DataFrame:
        raise NotImplementedError


class ItemRule(Rule):
    """A rule that judges one item at a time (DataTrove's filter shape); the generic adapter runs it over the batch.

    `reads` names the batch attribute holding the items (a list, one per row). `cache_settings()` returns the
    thresholds that, with the rule code and the text, key its cached results; None when it is cheap enough not to
    cache. A rule with a vectorised form overrides `judge_texts`."""

    reads: ClassVar[str] = "as_read"

    def judge(self, item: Any) -> Judgement:
        raise NotImplementedError

    def cache_settings(self) -> dict | None:
        return None

    def judge_texts(self, items: Sequence[Any]) -> pd.DataFrame:
        return judgements_frame(self.judge(x) for x in items)

    def judge_many(self, items: Sequence[Any], scores: RuleScores) -> pd.DataFrame:
        settings = self.cache_settings()
        if settings is None:
            return self.judge_texts(items).reset_index(drop=True)
        return scores.rule(self.name, items, self.judge_texts, **settings)

    def judge_batch(self, batch: Any, scores: RuleScores) -> pd.DataFrame:
        return self.judge_many(getattr(batch, self.reads), scores)


def judge_all(rules: Sequence[Rule], batch: Any, scores: RuleScores) -> dict[str, pd.DataFrame]:
    """Every rule over the batch once; returns `batch.rules` in the list's order (the order reasons are listed in).

    Item rules judge first, batch rules then in list order, so a batch rule can read any item rule's judgement
    (off_domain's reference segments are those that pass the cheap rules). A rule already in `batch.rules` is not
    judged again (housekeeping is judged while preparing the texts: its score decides what is stripped)."""
    item_rules_first = sorted(rules, key=lambda r: not isinstance(r, ItemRule))
    for rule in item_rules_first:
        if rule.name not in batch.rules:
            batch.rules[rule.name] = rule.judge_batch(batch, scores).reset_index(drop=True)
    batch.rules = {r.name: batch.rules[r.name] for r in rules}
    return batch.rules


@dataclass
class Decisions:
    """Which rules fired on which rows: a row is rejected when any rule fired."""

    rules: tuple[str, ...]
    fired: np.ndarray  # rows x rules, bool

    @classmethod
    def of(cls, judged: Mapping[str, pd.DataFrame], n: int) -> "Decisions":
        names = tuple(judged)
        if not n:
            return cls(names, np.zeros((0, len(names)), bool))
        return cls(names, np.column_stack([judged[r]["fired"].to_numpy(dtype=bool) for r in names]))

    @property
    def rejected(self) -> np.ndarray:
        return self.fired.any(axis=1) if len(self.fired) else np.zeros(0, bool)

    def fired_rules(self, i: int) -> list[str]:
        """The rules that fired on row i, in rule order (each one's reason is listed in the reject)."""
        return [r for j, r in enumerate(self.rules) if self.fired[i, j]]
