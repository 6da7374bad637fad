"""The `splits` and `fine_tuning_exports` assets over fixture Parquets of their upstream tables."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from pixel_pipeline.core.io import read_jsonl, read_parquet
from pixel_pipeline.defs.resources import PixelStorage
from pixel_pipeline.defs.splits import fine_tuning_exports, splits
from pixel_pipeline.testing.splits_corpus import build_corpus
from pixel_pipeline.training.base_model import embedded_model_dir, ensure_embedded_model


@pytest.fixture(scope="module")
def built_base_model(tmp_path_factory):
    """The embedded base model + tokenizer, built once for the module (building it takes ~10 s)."""
    return ensure_embedded_model(tmp_path_factory.getbasetemp() / "splits_base_model")  # shared with test_splits_exports


@pytest.fixture
def paths(tmp_paths, built_base_model):
    """tmp_paths whose models folder already holds the embedded tokenizer (linked, not rebuilt)."""
    target = embedded_model_dir(tmp_paths.models_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(built_base_model, target_is_directory=True)
    return tmp_paths


# the synthetic corpora here are tiny: training_data_sizes asks only one train pair per stage and expert
TINY_CORPUS_SIZES = {"min_stage_train": 1, "min_stage_validation": 0, "min_expert_train": 1, "min_expert_validation": 0}


def _run(assets, run_config=None, raise_on_error=True):
    run_config = run_config or {}
    if fine_tuning_exports in assets:
        op = run_config.setdefault("ops", {}).setdefault("fine_tuning_exports", {})
        op["config"] = {**TINY_CORPUS_SIZES, **op.get("config", {})}
    return dg.materialize(
        assets, resources={"storage": PixelStorage()}, run_config=run_config, raise_on_error=raise_on_error
    )


def _checks(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def _materialization(result, key: str):
    return next(e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(key))


def _assignments(paths) -> dict[tuple, str]:
    table = read_parquet(paths.table("splits"))
    ids = table["segment_id"].fillna(table["record_id"])
    return dict(zip(zip(table["dataset"], ids), table["split"]))


def test_splits_and_exports_pass_every_check(paths):
    build_corpus(n_transcripts=14, n_questions=8, n_cot=6).write(paths)
    result = _run([splits, fine_tuning_exports])
    checks = _checks(result)
    assert set(checks) == {"no_group_leakage", "every_expert_in_validation", "split_ratios_within_tolerance",
                           "row_accounting", "chain_accounting", "pairs_within_max_length", "training_data_sizes"}
    for name in ("no_group_leakage", "every_expert_in_validation", "row_accounting", "chain_accounting",
                 "training_data_sizes"):
        assert checks[name].passed, (name, checks[name].description)

    table = read_parquet(paths.table("splits"))
    assert {"split", "stage", "split_group"} <= set(table.columns)
    rejects = read_parquet(paths.rejects("splits"))
    assert len(rejects) and set(rejects["reasons"].map(tuple)) == {("reviewer_rejected",)}

    meta = _materialization(result, "fine_tuning_exports").materialization.metadata
    assert meta["dagster/row_count"].value == sum(
        len(read_jsonl(paths.exports_dir / "messages" / f"{s}.jsonl")) for s in ("train", "validation")
    )
    assert "data:image/png;base64" in meta["token_length_histogram"].value
    assert meta["base_model"].value and (paths.report_dir("fine_tuning_exports") / "token_lengths.png").exists()
    summary = json.loads(Path(meta["report_path"].value).read_text())
    assert summary["pairs"] == meta["dagster/row_count"].value and summary["base_model"] == meta["base_model"].value
    assert summary["rows_per_split"] == meta["rows_per_split"].value and summary["hub"] == {"pushed": False}
    assert Path(summary["accounting"]) == paths.report_dir("fine_tuning_exports") / "accounting.json"
    splits_meta = _materialization(result, "splits").materialization.metadata
    splits_summary = json.loads(Path(splits_meta["report_path"].value).read_text())
    assert splits_summary["rows_per_split"] == splits_meta["rows_per_split"].value
    assert splits_summary["previous_assignments"] == splits_meta["previous_assignments"].value
    rejected = read_jsonl(paths.exports_dir / "rejected.jsonl")
    assert {line["stage"] for line in rejected} >= {"raw_segments", "curated_segments", "deduplicated_pairs", "splits"}


def test_adding_a_transcript_keeps_every_existing_assignment(paths):
    build_corpus(n_transcripts=10, n_questions=6, n_cot=4).write(paths)
    _run([splits])
    before = _assignments(paths)
    build_corpus(n_transcripts=13, n_questions=8, n_cot=5).write(paths)  # new transcripts, questions, cases
    result = _run([splits])
    after = _assignments(paths)
    assert set(after) > set(before)
    assert {k: after[k] for k in before} == before
    assert "kept from the previous splits table" in _materialization(result, "splits").materialization.metadata[
        "previous_assignments"].value
    # a different seed is a deliberate reshuffle: the previous table is not used
    result = _run([splits], {"ops": {"splits": {"config": {"seed": 99}}}})
    assert "ignored" in _materialization(result, "splits").materialization.metadata["previous_assignments"].value


def test_accounting_check_blocks_when_a_stage_loses_its_rejects(paths):
    build_corpus(n_transcripts=8, n_questions=4, n_cot=3).write(paths)
    paths.rejects("curated_segments").unlink()  # rows dropped at curation with no record of why
    result = _run([splits, fine_tuning_exports], raise_on_error=False)
    check = _checks(result)["chain_accounting"]
    assert not check.passed and "segments" in check.description
    report = json.loads((paths.report_dir("fine_tuning_exports") / "accounting.json").read_text())
    assert report["segments"]["lost"] > 0 and report["segments"]["examples"][0]["id"]
    assert report["counseling"]["balanced"] and report["cot"]["balanced"]


def test_missing_expert_fails_the_validation_check(paths):
    corpus = build_corpus(n_transcripts=8, n_questions=4, n_cot=3)
    pairs = corpus.tables["deduplicated_pairs"]
    corpus.tables["deduplicated_pairs"] = pairs[pairs["style"] != "practical"].reset_index(drop=True)
    corpus.write(paths)
    result = _run([splits], raise_on_error=False)
    check = _checks(result)["every_expert_in_validation"]
    assert not check.passed and "practical" in check.description
    assert check.severity == dg.AssetCheckSeverity.ERROR


def test_push_to_hub_is_configured_by_env_var_and_redacted(paths, monkeypatch):
    from datasets import DatasetDict

    secret = "hf_SECRETvalue987"
    monkeypatch.setenv("MY_HUB_TOKEN", secret)
    calls = []

    def fake_push(self, repo_id, token=None, private=None, **kwargs):
        calls.append((repo_id, token, private, sorted(self)))
        return type("CommitInfo", (), {"oid": "deadbeef"})()

    monkeypatch.setattr(DatasetDict, "push_to_hub", fake_push)
    build_corpus(n_transcripts=6, n_questions=3, n_cot=3).write(paths)
    _run([splits])
    result = _run([fine_tuning_exports], {"ops": {"fine_tuning_exports": {"config": {
        "hub_repo_id": "someone/pixel-data", "hub_token_env_var": "MY_HUB_TOKEN"}}}})
    assert calls == [("someone/pixel-data", secret, True, ["train", "validation"])]
    events = result.all_events
    assert events and not any(secret in str(e) for e in events)
    summary = (paths.report_dir("fine_tuning_exports") / "summary.json").read_text()
    hub = json.loads(summary)["hub"]
    assert hub["repo_id"] == "someone/pixel-data" and hub["pushed"] is True and secret not in summary
    manifest = (paths.exports_dir / "manifest.json").read_text()
    assert secret not in manifest and "MY_HUB_TOKEN" in manifest


def test_missing_upstream_table_is_a_clear_error(paths):
    with pytest.raises(FileNotFoundError, match="materialize `deduplicated_pairs` first"):
        _run([splits])


def test_empty_pairs_give_empty_exports(paths):
    corpus = build_corpus(n_transcripts=0, n_questions=0, n_cot=0, with_verdicts=False)
    assert corpus.tables["deduplicated_pairs"].empty
    corpus.write(paths)
    result = _run([splits, fine_tuning_exports], raise_on_error=False)
    checks = _checks(result)
    assert checks["no_group_leakage"].passed and checks["chain_accounting"].passed
    assert not checks["every_expert_in_validation"].passed  # no data is not a usable dataset
    assert read_jsonl(paths.exports_dir / "messages" / "train.jsonl") == []
