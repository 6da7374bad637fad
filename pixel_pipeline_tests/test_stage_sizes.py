"""Empty stages say why: too little data per training stage or expert blocks training with the cause, while the
data exports are still written (a small corpus gets its files and a warning, never nothing)."""

from __future__ import annotations

import dagster as dg
import pytest

from pixel_pipeline.core.records import reject_row
from pixel_pipeline.defs.resources import PixelStorage, default_resources
from pixel_pipeline.defs.splits import fine_tuning_exports, splits
from pixel_pipeline.defs.training import LoraTraining, lora_stage1_counseling
from pixel_pipeline.splits import sizes
from pixel_pipeline.testing.splits_corpus import build_corpus
from pixel_pipeline.training.base_model import embedded_model_dir, ensure_embedded_model


def _duplicate_lines(n: int, record_id: str) -> list[dict]:
    return [{"dataset": "cot", "record_id": record_id, "stage": "cot_conversations", "source": "cot_reasoning.json",
             "reasons": [f"duplicate: same conversation as cot/cot_reasoning.json row 0"]} for _ in range(n)]


def test_the_cause_counts_rows_in_and_names_exact_repeats_of_one_conversation():
    cause = sizes.rejection_cause(_duplicate_lines(299, "abc"), "cot", 300)
    assert cause == "cot: 300 rows in, 299 rejected (duplicate: 299, exact repeats of 1 conversation)"
    lines = [{"dataset": "segments", "source": "tim", "reasons": ["housekeeping: promo"]}] * 3 + [
        {"dataset": "segments", "source": "other", "reasons": ["garbled"]}]
    assert sizes.rejection_cause(lines, "segments", 5, ["tim"]) == "segments of tim: 5 rows in, 3 rejected (housekeeping: 3)"


def test_a_stage_or_expert_under_its_minimum_is_named_with_its_counts_and_cause():
    rule = sizes.SizeRule(min_stage_train=10, min_stage_validation=1, min_expert_train=5, min_expert_validation=1)
    by_stage = {"stage1_counseling": {"train": 40, "validation": 5}, "stage2_reasoning": {"train": 1, "validation": 0}}
    by_expert = {"practical": {"train": 5, "validation": 1}, "empathetic": {"train": 4, "validation": 2}}
    problems = sizes.size_problems(by_stage, by_expert, rule, {"stage2_reasoning": "cot: 300 rows in, 299 rejected"})
    assert problems == [
        "stage2_reasoning: 1 pair in train, 0 in validation (needs >= 10 / >= 1): cot: 300 rows in, 299 rejected",
        "expert empathetic: 4 pairs in train, 2 in validation (needs >= 5 / >= 1)",
    ]
    assert sizes.size_problems(by_stage, by_expert, sizes.SizeRule(1, 0, 1, 0)) == []


@pytest.fixture
def paths(tmp_paths, tmp_path_factory):
    target = embedded_model_dir(tmp_paths.models_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(ensure_embedded_model(tmp_path_factory.getbasetemp() / "splits_base_model"), target_is_directory=True)
    return tmp_paths


def test_one_reasoning_conversation_repeated_blocks_training_but_the_exports_are_written(paths):
    corpus = build_corpus(n_transcripts=14, n_questions=8, n_cot=1, with_verdicts=False)
    rid = corpus.tables["cot_conversations"]["record_id"].iloc[0]
    corpus.rejects["cot_conversations"] += [
        reject_row("cot", rid, "cot_conversations", ["duplicate: same conversation as cot/cot.jsonl row 0"], {"row_index": i + 1}, "cot.jsonl")
        for i in range(299)
    ]
    corpus.write(paths)
    result = dg.materialize([splits, fine_tuning_exports, lora_stage1_counseling],
                            resources={**default_resources(), "storage": PixelStorage(), "lora_training": LoraTraining(),
                                       "pipes_training_client": dg.PipesSubprocessClient()}, raise_on_error=False)
    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "training_data_sizes")
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert ("stage2_reasoning: 1 pair in train, 0 in validation (needs >= 10 / >= 1): cot: 300 rows in, 299 rejected "
            "(duplicate: 299, exact repeats of 1 conversation)") in check.description
    assert check.description.startswith("training blocked (exports written)")
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {"splits", "fine_tuning_exports"}  # no training step ran
    assert (paths.exports_dir / "manifest.json").exists() and (paths.exports_dir / "stages" / "stage2_reasoning" / "train.jsonl").exists()
