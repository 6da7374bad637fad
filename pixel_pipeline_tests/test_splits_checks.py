"""The splits domain's check builders and decisions, called with tiny hand-made inputs (no Dagster, no files unless
the function reads them)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd

from pixel_pipeline.core.io import write_json, write_parquet
from pixel_pipeline.core.records import STYLES, VoiceChoice
from pixel_pipeline.core.verdicts import ERROR, WARN
from pixel_pipeline.splits import accounting as acct
from pixel_pipeline.splits import checks, previous, sizes
from pixel_pipeline.splits.assign import assign_splits
from pixel_pipeline.splits.exports import ExportResult
from pixel_pipeline.splits.reports import split_reports, validation_coverage

PARAMS = previous.split_params(seed=42, validation_ratio=0.1, test_ratio=0.0)


# ---- the split-reuse decision --------------------------------------------------------------------------------------
def test_previous_assignments_are_kept_when_seed_and_ratios_are_unchanged():
    assert previous.reuse_decision(True, dict(PARAMS), PARAMS) is None


def test_previous_assignments_are_ignored_when_the_seed_changed():
    assert previous.reuse_decision(True, {**PARAMS, "seed": 7}, PARAMS) == previous.SETTINGS_CHANGED


def test_no_previous_assignments_on_a_first_run_or_when_turned_off():
    assert previous.reuse_decision(True, None, PARAMS) == previous.NO_PREVIOUS
    assert previous.reuse_decision(False, dict(PARAMS), PARAMS) == previous.NO_PREVIOUS


def test_previous_assignments_are_read_from_the_last_table_under_the_same_settings(tmp_path):
    table, config_file = tmp_path / "splits.parquet", tmp_path / previous.SPLIT_CONFIG_FILE
    assert previous.read_previous_assignments(True, table, config_file, PARAMS) == ({}, previous.NO_PREVIOUS)
    write_parquet(pd.DataFrame({"group_node": ["segments:a", "segments:a", "cot:b"],
                                "split": ["train", "train", "validation"]}), table)
    write_json(PARAMS, config_file)
    kept, note = previous.read_previous_assignments(True, table, config_file, PARAMS)
    assert kept == {"segments:a": "train", "cot:b": "validation"}
    assert note == "2 groups kept from the previous splits table"
    assert previous.read_previous_assignments(True, table, config_file, {**PARAMS, "test_ratio": 0.1}) == (
        {}, previous.SETTINGS_CHANGED)


# ---- splits checks -------------------------------------------------------------------------------------------------
def _leakage(**leaking: int) -> dict:
    return {k: {"leaking_keys": n, "examples": [{"key": "k", "splits": ["train", "validation"]}] if n else []}
            for k, n in {"group_key": 0, "transcript": 0, **leaking}.items()}


def test_leakage_check_passes_when_no_key_is_in_two_splits():
    verdict = checks.leakage_verdict(_leakage())
    assert verdict.check_name == "no_group_leakage" and verdict.passed and verdict.severity == ERROR


def test_leakage_check_fails_when_a_group_is_in_two_splits():
    verdict = checks.leakage_verdict(_leakage(transcript=1))
    assert not verdict.passed
    assert verdict.metadata["leaking_keys"]["raw_value"] == {"group_key": 0, "transcript": 1}
    assert verdict.metadata["examples"]["raw_value"]["transcript"] == [{"key": "k", "splits": ["train", "validation"]}]


def _coverage(validation: dict[str, int]) -> dict:
    experts = {s: {"train": 5, "validation": validation.get(s, 1)} for s in STYLES}
    return {"experts": experts, "datasets": {}, "stages": {},
            "experts_missing_in_validation": [s for s, c in experts.items() if c["validation"] == 0]}


def test_expert_check_passes_when_every_expert_has_validation_rows():
    verdict = checks.expert_validation_verdict(_coverage({}), {})
    assert verdict.passed and verdict.description == "every expert has validation rows"


def test_expert_check_fails_and_names_the_expert_without_validation_rows():
    verdict = checks.expert_validation_verdict(_coverage({STYLES[0]: 0}), {f"expert:{STYLES[0]}": "only 1 split group(s)"})
    assert not verdict.passed and verdict.severity == ERROR
    assert verdict.description == f"missing in validation: {STYLES[0]}"
    assert verdict.metadata["strata_without_floor"]["raw_value"] == {f"expert:{STYLES[0]}": "only 1 split group(s)"}


def test_expert_check_fails_when_there_is_no_data_at_all():
    assert not checks.expert_validation_verdict(validation_coverage(pd.DataFrame()), {}).passed


def test_ratio_check_is_a_warning_that_follows_the_ratio_report():
    ratios = {"passed": False, "effective_groups": 3.0, "splits": {"validation": {"share": 0.5}}}
    verdict = checks.ratio_verdict(ratios)
    assert verdict.check_name == "split_ratios_within_tolerance" and verdict.severity == WARN and not verdict.passed
    assert verdict.description == "row shares vs targets over 3.0 effective groups"
    assert checks.ratio_verdict({**ratios, "passed": True}).passed


def test_splits_accounting_passes_when_pairs_in_are_kept_plus_rejected():
    verdict = checks.splits_accounting_verdict(10, 8, 2)
    assert verdict.passed and verdict.description == "10 pairs in = 8 kept + 2 reviewer-rejected"


def test_splits_accounting_fails_when_a_pair_is_lost():
    verdict = checks.splits_accounting_verdict(10, 7, 2)
    assert not verdict.passed and verdict.metadata == {"rows_in": 10, "kept": 7, "rejected": 2}


def _pairs() -> pd.DataFrame:
    rows = []
    for i in range(12):
        rows.append({"dataset": "counseling", "segment_id": None, "record_id": f"c{i}", "prompt": f"question {i}",
                     "response": f"answer {i}", "group_key": f"q{i}", "source": "counsel.json"})
    for i, style in enumerate(STYLES * 2):
        rows.append({"dataset": "segments", "segment_id": f"s{i}", "record_id": None, "prompt": f"ask {i}",
                     "response": f"talk {i}", "group_key": None, "source": "tim", "file": f"t{i}.txt", "style": style})
    return pd.DataFrame(rows)


def test_splits_verdicts_are_the_four_checks_of_the_splits_asset():
    pairs = _pairs()
    result = assign_splits(pairs, voice_sources=["tim"])
    verdicts = checks.splits_verdicts(pairs, result, split_reports(result.splits, 0.1, 0.0, 0.05))
    assert [v.check_name for v in verdicts] == [
        "no_group_leakage", "every_expert_in_validation", "split_ratios_within_tolerance", "row_accounting"]
    by_name = {v.check_name: v for v in verdicts}
    assert by_name["no_group_leakage"].passed and by_name["row_accounting"].passed
    assert by_name["every_expert_in_validation"].passed  # the floor gives every expert a validation group


def test_summary_tables_count_rows_per_dataset_and_per_stage():
    counted = pd.DataFrame({"dataset": ["cot", "cot", "segments"], "split": ["train", "validation", "train"],
                            "stage": pd.array([2, 2, None], dtype="Int64")})
    by_dataset = checks.rows_by_dataset_and_split(counted)
    assert by_dataset.to_dict("records") == [{"dataset": "cot", "train": 1, "validation": 1},
                                             {"dataset": "segments", "train": 1, "validation": 0}]
    assert dict(checks.rows_by_stage(counted).values.tolist()) == {"2": 2, "none (experts only)": 1}
    assert checks.rows_by_dataset_and_split(counted.iloc[:0]).empty and checks.rows_by_stage(counted.iloc[:0]).empty


def test_splits_metadata_keeps_the_headline_keys_and_the_summary_keeps_the_rest(tmp_path):
    pairs = _pairs()
    result = assign_splits(pairs, voice_sources=["tim"])
    reports = split_reports(result.splits, 0.1, 0.0, 0.05)
    voice = VoiceChoice(sources=("tim",), origin="detected", segments={"tim": 8}, total_segments=8)
    meta = checks.splits_metadata(result, reports, table_path=tmp_path / "t", rejects_path=tmp_path / "r",
                                  report_path=tmp_path / "s.json", previous_note="none")
    assert list(meta) == [
        "dagster/row_count", "path", "rejects_path", "report_path", "reviewer_rejected", "rows_per_split",
        "rows_by_dataset_and_split", "rows_by_expert_and_split", "rows_by_stage", "previous_assignments"]
    assert meta["dagster/row_count"] == len(pairs) and meta["path"] == {"type": "path", "raw_value": str(tmp_path / "t")}
    assert meta["report_path"]["raw_value"] == str(tmp_path / "s.json")
    assert sum(meta["rows_per_split"]["raw_value"].values()) == len(pairs)
    summary = checks.splits_summary({"seed": 42}, voice, result, reports, "none")
    assert summary["config"] == {"seed": 42} and summary["voice"]["sources"] == ["tim"]
    assert summary["previous_assignments"] == "none" and summary["rows_per_split"] == meta["rows_per_split"]["raw_value"]
    assert {"split_groups", "split_groups_by_rule", "floor_promotions", "rows_moved_by_merges"} <= set(summary["report"])
    assert {"leakage", "ratios", "coverage"} <= set(summary)
    assert sum(summary["rows_by_stage"].values()) == len(pairs)
    assert sum(r["train"] + r.get("validation", 0) for r in summary["rows_by_dataset_and_split"]) == len(pairs)
    assert summary["validation_rows_per_expert"] == checks.validation_rows_per_expert(reports["coverage"])
    json.dumps(summary, default=str)  # written with core.io.write_json


# ---- fine_tuning_exports checks ------------------------------------------------------------------------------------
def test_chain_accounting_passes_when_every_input_row_is_exported_or_rejected():
    report = acct.accounting({"cot": Counter({"a": 1, "b": 1})}, {"cot": Counter({"a": 1})}, {"cot": Counter({"b": 1})})
    verdict = checks.chain_accounting_verdict(report)
    assert verdict.passed and verdict.description == "rows in = exported + rejected for every dataset"


def test_chain_accounting_fails_and_names_the_dataset_that_lost_a_row():
    report = acct.accounting({"cot": Counter({"a": 1, "b": 1}), "segments": Counter({"s": 1})},
                             {"cot": Counter({"a": 1}), "segments": Counter({"s": 1})}, {})
    verdict = checks.chain_accounting_verdict(report)
    assert not verdict.passed and verdict.description == "accounting broken for: cot"
    assert verdict.metadata["mismatched_examples"]["raw_value"] == {
        "cot": [{"id": "b", "rows_in": 1, "exported": 0, "rejected": 0}]}
    assert "| cot | 2 | 1 | 0 | 1 | 0 |" in verdict.metadata["per_dataset"]["raw_value"]


def test_chain_accounting_counts_ingestion_rows_and_their_own_rejects_as_input(tmp_path):
    tables = {"cot_conversations": pd.DataFrame({"record_id": ["a", "b"]}), "raw_segments": None}
    rejects = pd.DataFrame({"dataset": ["cot", "cot"], "segment_id": [None, None], "record_id": ["c", "b"],
                            "dropped_by": ["cot_conversations", "splits"]})
    messages = tmp_path / "train.jsonl"
    messages.write_text(json.dumps({"metadata": {"dataset": "cot", "record_id": "a"}}) + "\n")
    rejected = [{"dataset": "cot", "record_id": "b"}, {"dataset": "cot", "record_id": "c"}]
    report = acct.chain_accounting(tables, rejects, ["cot_conversations"], [messages], rejected)
    assert report["cot"]["rows_in"] == 3 and report["cot"]["balanced"]
    # without the ingestion stage's rejects, the rejected row "c" is unexplained
    assert not acct.chain_accounting(tables, rejects, [], [messages], rejected)["cot"]["balanced"]


def _counts(by_stage: dict, by_expert: dict, by_source: dict | None = None) -> dict:
    return {"by_stage": by_stage, "by_expert": by_expert, "by_source": by_source or {}}


RULE = sizes.SizeRule(min_stage_train=2, min_stage_validation=1, min_expert_train=2, min_expert_validation=1)


def test_training_sizes_pass_when_every_stage_and_expert_has_its_minimum():
    counts = _counts({"stage1_counseling": {"train": 2, "validation": 1}}, {"practical": {"train": 3, "validation": 1}})
    verdict = checks.training_sizes_verdict(counts, RULE, {})
    assert verdict.passed and verdict.metadata["problems"]["raw_value"] == "_none_"


def test_training_sizes_fail_with_the_cause_of_the_shortfall():
    counts = _counts({"stage2_reasoning": {"train": 1, "validation": 0}}, {"practical": {"train": 3, "validation": 1}})
    verdict = checks.training_sizes_verdict(counts, RULE, {"stage2_reasoning": "cot: 300 rows in, 299 rejected"})
    assert not verdict.passed and verdict.severity == ERROR
    assert verdict.description == ("training blocked (exports written): stage2_reasoning: 1 pair in train, 0 in "
                                   "validation (needs >= 2 / >= 1): cot: 300 rows in, 299 rejected")


def test_training_sizes_fail_when_there_are_no_pairs():
    empty = {"train": 0, "validation": 0}
    assert not checks.training_sizes_verdict(_counts({"stage1_counseling": empty}, {"practical": empty}), RULE, {}).passed


def test_shortfall_causes_say_where_each_stage_and_expert_rows_went():
    counts = _counts({}, {"practical": {"train": 3, "validation": 1}, "empathetic": {"train": 0, "validation": 0}},
                     {"tim": 4, "other": 9})
    rejected = [{"dataset": "cot", "reasons": ["duplicate: same"], "record_id": "a"},
                {"dataset": "segments", "source": "tim", "reasons": ["garbled"]}]
    causes = sizes.shortfall_causes(counts, rejected, {"cot": {"rows_in": 2}}, ["tim"])
    assert causes["stage2_reasoning"] == "cot: 2 rows in, 1 rejected (duplicate: 1, exact repeats of 1 conversation)"
    assert causes["stage1_counseling"] == "counseling: 0 rows in, 0 rejected"
    assert causes["stage3_voice"] == "segments of tim: 5 rows in, 1 rejected (garbled: 1)"
    assert causes["practical"] == "4 of 4 exported segment pairs have this style"
    assert sizes.shortfall_causes(counts, rejected, {}, [])["stage3_voice"].startswith("no voice source")


def test_max_length_check_warns_about_pairs_over_the_limit():
    stats = {"overall": {"rows": 4, "exceeding_max_length": 1}, "over_length_policy": "kept"}
    verdict = checks.max_length_verdict(stats, 128)
    assert not verdict.passed and verdict.severity == WARN
    assert verdict.description == "1 of 4 pairs exceed 128 tokens: kept"
    assert verdict.metadata == {"exceeding": 1, "share": 0.25}


def test_max_length_check_passes_with_no_pairs_over_the_limit_or_no_pairs():
    assert checks.max_length_verdict({"overall": {"rows": 4, "exceeding_max_length": 0}, "over_length_policy": ""}, 9).passed
    verdict = checks.max_length_verdict({"overall": {"rows": 0, "exceeding_max_length": 0}, "over_length_policy": ""}, 9)
    assert verdict.passed and verdict.metadata["share"] == 0.0


def _export_result(tmp_path: Path) -> ExportResult:
    counts = {"pairs": 3, "by_split": {"train": 2, "validation": 1}, "by_split_and_dataset": {}, "rejected": 0,
              "rejected_by_stage": {}, **_counts({"stage1_counseling": {"train": 2, "validation": 1}},
                                                 {"practical": {"train": 2, "validation": 1}}, {"tim": 3})}
    stats = {"overall": {"rows": 3, "exceeding_max_length": 0}, "over_length_policy": "kept",
             "by_group": {"train/cot": {"rows": 2}}}
    files = {"messages/train.jsonl": {"rows": 2, "sha256": "a" * 64}, "hf_dataset/x.arrow": {"sha256": "b" * 64}}
    return ExportResult(tmp_path / "exports", files, counts, stats, {"counts": {}})


def test_exports_verdicts_are_the_three_checks_of_the_exports_asset(tmp_path):
    report = acct.accounting({"cot": Counter({"a": 1})}, {"cot": Counter({"a": 1})}, {})
    verdicts = checks.exports_verdicts(_export_result(tmp_path), report, [], RULE, ["tim"], 64)
    assert [(v.check_name, v.passed) for v in verdicts] == [
        ("chain_accounting", True), ("training_data_sizes", True), ("pairs_within_max_length", True)]


def test_exports_metadata_holds_the_headline_and_inlines_the_histogram(tmp_path):
    meta = checks.exports_metadata(_export_result(tmp_path), base_model="m", histogram_png=b"png",
                                   report_path=tmp_path / "summary.json")
    assert list(meta) == [
        "dagster/row_count", "exports_dir", "manifest", "report_path", "rows_per_split", "rows_by_stage_and_expert", "rejected",
        "exceeding_max_length", "base_model", "token_length_histogram"]
    assert meta["dagster/row_count"] == 3 and meta["exceeding_max_length"] == 0 and meta["rejected"] == 0
    assert meta["token_length_histogram"]["raw_value"] == "![tokens per pair](data:image/png;base64,cG5n)"
    assert meta["manifest"]["raw_value"] == str(tmp_path / "exports" / "manifest.json")
    by_stage = meta["rows_by_stage_and_expert"]["raw_value"]  # stages and experts in one table
    assert "| stage1_counseling | 2 | 1 |" in by_stage and "| practical | 2 | 1 |" in by_stage


def test_exports_summary_keeps_what_the_metadata_leaves_out_and_lists_files_without_the_hf_dataset(tmp_path):
    voice = VoiceChoice(sources=("tim",), origin="detected", segments={"tim": 3}, total_segments=3)
    summary = checks.exports_summary(_export_result(tmp_path), base_model="m", max_seq_length=64,
                                     accounting_path=tmp_path / "accounting.json", histogram_path=tmp_path / "h.png",
                                     hub={"pushed": False}, voice=voice)
    assert summary["files"] == {"messages/train.jsonl": {"rows": 2, "sha256": "a" * 64}}
    assert summary["messages_train"] == str(tmp_path / "exports" / "messages" / "train.jsonl")
    assert summary["rejected_jsonl"] == str(tmp_path / "exports" / "rejected.jsonl")
    assert summary["token_histogram_png"] == str(tmp_path / "h.png")
    assert summary["accounting"] == str(tmp_path / "accounting.json")
    assert summary["rows_by_expert"] == {"practical": {"train": 2, "validation": 1}}
    assert summary["token_stats"] == {"train/cot": {"rows": 2}} and summary["over_length_policy"] == "kept"
    assert (summary["base_model"], summary["max_seq_length"], summary["hub"]) == ("m", 64, {"pushed": False})
    assert summary["voice_sources"] == ["tim"] and "tim" in summary["voice_choice"]
    assert summary["mixed_plan"] == {"counts": {}} and summary["rejected_by_stage"] == {}
    json.dumps(summary)


def test_the_export_settings_the_asset_passes_by_name_exist_on_both_sides():
    import inspect

    from pixel_pipeline.defs.splits import ExportsConfig
    from pixel_pipeline.splits.exports import EXPORT_SETTINGS, write_exports

    assert set(EXPORT_SETTINGS) <= set(inspect.signature(write_exports).parameters)
    assert set(EXPORT_SETTINGS) <= set(ExportsConfig.model_fields)
