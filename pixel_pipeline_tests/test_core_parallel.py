"""core.parallel: pure per-item work over the cores gives exactly the serial result."""

import os

import pandas as pd
import pytest

from pixel_pipeline.core import parallel
from pixel_pipeline.curation.rules import RuleScores


def _pid_and_square(chunk):
    return [(os.getpid(), x * x) for x in chunk]


def test_a_large_batch_runs_in_worker_processes_and_keeps_the_serial_order():
    items = list(range(parallel.MIN_ITEMS_PER_WORKER * 2))
    out = parallel.map_batches(_pid_and_square, items, workers=2)
    assert [sq for _, sq in out] == [x * x for x in items]
    assert os.getpid() not in {pid for pid, _ in out}  # really run elsewhere


def test_a_small_batch_or_one_worker_runs_in_this_process():
    small = list(range(parallel.MIN_ITEMS_PER_WORKER * 2 - 1))
    assert {pid for pid, _ in parallel.map_batches(_pid_and_square, small, workers=2)} == {os.getpid()}
    big = list(range(parallel.MIN_ITEMS_PER_WORKER * 4))
    assert {pid for pid, _ in parallel.map_batches(_pid_and_square, big, workers=1)} == {os.getpid()}


def test_closures_reach_the_workers_and_a_nested_call_stays_in_its_worker():
    offset = 7
    items = list(range(parallel.MIN_ITEMS_PER_WORKER * 2))

    def nested(chunk):
        return [(pid, x + offset) for pid, x in parallel.map_batches(_pid_and_square, chunk, workers=2)]

    out = parallel.map_batches(nested, items, workers=2)
    assert [x for _, x in out] == [x * x + offset for x in items]


def test_a_batch_function_that_loses_items_is_an_error():
    with pytest.raises(ValueError, match="returned"):
        parallel.map_batches(lambda chunk: chunk[1:], list(range(parallel.MIN_ITEMS_PER_WORKER * 2)), workers=2)


def test_rule_scores_in_workers_equal_rule_scores_in_one_process():
    texts = [f"text number {i} " + "word " * (i % 13) for i in range(parallel.MIN_ITEMS_PER_WORKER * 3)]

    def rule(batch):
        return pd.DataFrame({"score": [len(t) for t in batch], "fired": [len(t) > 40 for t in batch],
                             "reason": [None] * len(batch), "measures": [{"n": len(t.split())} for t in batch]})

    serial, spread = RuleScores(None, workers=1), RuleScores(None, workers=2)
    pd.testing.assert_frame_equal(serial.rule("r", texts, rule), spread.rule("r", texts, rule))
    assert serial.each("e", texts, str.upper) == spread.each("e", texts, str.upper)


def test_where_forking_is_unsafe_the_work_runs_in_this_process(monkeypatch):
    monkeypatch.setattr(parallel.sys, "platform", "darwin")
    items = list(range(parallel.MIN_ITEMS_PER_WORKER * 4))
    assert {pid for pid, _ in parallel.map_batches(_pid_and_square, items, workers=2)} == {os.getpid()}
