"""The training domain's pure check and run builders, on tiny hand-made inputs (no model, no Dagster run)."""

from __future__ import annotations

import math

import pytest

from pixel_pipeline.core.verdicts import ERROR, WARN, Verdict
from pixel_pipeline.training import checks, reporting, runs
from pixel_pipeline.training.evaluation import CHECK_STAGE_PERPLEXITY, CHECK_VOICE


def trainer_result(name="stage", **kw) -> dict:
    """One run's result as the trainer returns it, reduced to what the checks and the metadata read."""
    result = {
        "name": name, "adapter_path": f"/out/{name}/adapter", "report_path": f"/out/{name}/result.json",
        "base_model": "pixel-tiny-llama", "device": "cpu", "learning_rate": 1e-4,
        "trackers": ["tensorboard"], "train_curve": [[1, 2.0], [2, 1.5]], "val_curve": [[0, 2.1], [2, 1.6]],
        "train_loss_final": 1.5, "val_loss_initial": 2.1, "val_loss_final": 1.6, "val_perplexity": math.exp(1.6),
        "tokens_per_second": 100.0, "peak_memory_mb": 10.0, "mfu": None, "steps": 2, "resumed_from_steps": [],
        "train_data": {"rows_kept": 4, "rows_truncated": 0, "rows_dropped_overlong": 0, "rows_invalid": 0},
        "validation_data": {"rows_kept": 2, "rows_truncated": 1, "rows_dropped_overlong": 0, "rows_invalid": 0},
        "tensorboard_dir": f"/out/{name}/tensorboard", "checkpoints": [], "fingerprint": "abc",
        "init": {"mode": "continue", "starts_from_previous": True, "previous_adapter_nonzero": True},
        "adapter_reload": {"loads": True, "matches": True},
        "loss_check": {"finite": True, "decreasing": True},
    }
    return {**result, **kw}


def verdict(results, name) -> Verdict:
    (v,) = reporting.check_verdicts(results, [name])
    return v


# ------------------------------------------------------------------------------------------------- trainer checks
def test_trainer_verdicts_are_verdicts_with_the_per_run_facts_as_json():
    v = verdict([trainer_result()], reporting.CHECK_LOSS)
    assert isinstance(v, Verdict) and v.passed and v.severity == ERROR
    assert v.metadata["per_run"] == {"type": "json", "raw_value": {"stage": {"finite": True, "decreasing": True}}}


def test_loss_check_fails_when_one_run_did_not_go_down():
    flat = trainer_result("b", loss_check={"finite": True, "decreasing": False})
    assert not verdict([trainer_result("a"), flat], reporting.CHECK_LOSS).passed


def test_loss_check_fails_on_a_non_finite_loss():
    assert not verdict([trainer_result(loss_check={"finite": False, "decreasing": True})], reporting.CHECK_LOSS).passed


def test_chaining_check_fails_when_the_previous_adapter_was_all_zeros():
    zero = trainer_result(init={"mode": "continue", "starts_from_previous": True, "previous_adapter_nonzero": False})
    assert verdict([trainer_result()], reporting.CHECK_STARTS_FROM_PREVIOUS).passed
    assert not verdict([zero], reporting.CHECK_STARTS_FROM_PREVIOUS).passed


def test_chaining_check_fails_when_training_started_fresh():
    fresh = trainer_result(init={"mode": "fresh", "init_adapter": None})
    assert not verdict([fresh], reporting.CHECK_STARTS_FROM_PREVIOUS).passed


def test_adapter_check_fails_when_the_reloaded_adapter_differs():
    assert verdict([trainer_result()], reporting.CHECK_ADAPTER_LOADS).passed
    differs = trainer_result(adapter_reload={"loads": True, "matches": False})
    assert not verdict([differs], reporting.CHECK_ADAPTER_LOADS).passed


def test_validation_loss_check_fails_for_an_expert_without_a_finite_validation_loss():
    assert verdict([trainer_result("a"), trainer_result("b")], reporting.CHECK_VALIDATION_LOSS).passed
    assert not verdict([trainer_result("a"), trainer_result("b", val_loss_final=None)],
                       reporting.CHECK_VALIDATION_LOSS).passed
    assert not verdict([trainer_result("a", val_loss_final=float("nan"))], reporting.CHECK_VALIDATION_LOSS).passed


def test_an_unknown_check_name_is_refused():
    with pytest.raises(ValueError, match="unknown check"):
        reporting.check_verdicts([trainer_result()], ["no_such_check"])


def test_report_to_pipes_sends_each_verdict_with_its_severity_and_metadata():
    class Pipes:
        def __init__(self):
            self.checks, self.materializations = [], []

        def report_asset_materialization(self, metadata, data_version):
            self.materializations.append((metadata, data_version))

        def report_asset_check(self, **kwargs):
            self.checks.append(kwargs)

    pipes = Pipes()
    reporting.report_to_pipes(pipes, [trainer_result()], {"checks": [reporting.CHECK_LOSS, reporting.CHECK_ADAPTER_LOADS]})
    assert [c["check_name"] for c in pipes.checks] == [reporting.CHECK_LOSS, reporting.CHECK_ADAPTER_LOADS]
    assert all(c["passed"] and c["severity"] == "ERROR" and "per_run" in c["metadata"] for c in pipes.checks)
    metadata, version = pipes.materializations[0]
    assert version == "abc"
    assert metadata["adapter_path"] == {"type": "path", "raw_value": "/out/stage/adapter"}
    assert metadata["report_path"] == {"type": "path", "raw_value": "/out/stage/result.json"}
    assert metadata["loss_curves"]["type"] == "md"


def test_a_stage_shows_its_headline_numbers_and_leaves_the_rest_to_its_result_json():
    meta = reporting.materialization_metadata([trainer_result()])
    assert set(meta) == {"adapter_path", "base_model", "device", "val_loss_initial", "val_loss_final",
                         "val_perplexity", "tokens_per_second", "steps", "loss_curves", "report_path"}
    assert meta["val_loss_final"] == 1.6 and meta["steps"] == 2 and meta["base_model"] == "pixel-tiny-llama"
    assert meta["val_perplexity"] == round(math.exp(1.6), 6)


def test_a_non_finite_headline_number_is_reported_as_none():
    meta = reporting.materialization_metadata([trainer_result(val_loss_final=float("nan"))])
    assert meta["val_loss_final"] is None


def test_metadata_of_several_runs_is_one_summary_table_with_each_adapter_and_report():
    meta = reporting.materialization_metadata([trainer_result("a"), trainer_result("b", learning_rate=2e-3)],
                                              adapter_path="/out/experts")
    assert set(meta) == {"adapter_path", "adapter_path_a", "adapter_path_b", "base_model", "device", "loss_curves",
                         "summary", "report_paths"}
    assert meta["adapter_path"] == {"type": "path", "raw_value": "/out/experts"}
    assert meta["adapter_path_b"]["raw_value"] == "/out/b/adapter"
    assert meta["report_paths"] == {"type": "json", "raw_value": {"a": "/out/a/result.json",
                                                                  "b": "/out/b/result.json"}}
    table = meta["summary"]["raw_value"]
    assert meta["summary"]["type"] == "md" and "| a | 2.1000 | 1.6000 |" in table and "| 2 | 0.002 |" in table


# ------------------------------------------------------------------------------------------------- skipped stages
def test_a_skipped_stage_passes_every_check_and_says_why():
    verdicts = checks.skipped_stage_verdicts(["loss_finite_and_decreasing", "adapter_loads_in_peft"], "nothing to do")
    assert [v.check_name for v in verdicts] == ["loss_finite_and_decreasing", "adapter_loads_in_peft"]
    assert all(v.passed and v.severity == ERROR and v.metadata == {"skipped": "nothing to do"} for v in verdicts)
    meta = checks.skipped_stage_metadata({"adapter_path": "/a", "base_model": "m"}, "mixed", "nothing to do")
    assert meta == {"adapter_path": {"type": "path", "raw_value": "/a"}, "base_model": "m", "strategy": "mixed",
                    "skipped_training": "nothing to do"}


def test_later_stages_skip_under_a_mixed_plan_but_stage1_trains_it(tmp_path):
    train_file = tmp_path / "train.jsonl"
    train_file.write_text('{"messages": []}\n')
    assert "lora_stage1_counseling" in runs.stage_skip_reason("mixed", True, train_file)
    assert runs.stage_skip_reason("mixed", False, train_file) is None
    assert runs.stage_skip_reason("staged", True, train_file) is None


def test_a_later_stage_with_an_empty_export_skips_and_stage1_does_not(tmp_path):
    empty = tmp_path / "train.jsonl"
    empty.write_text("\n")
    assert "has no pairs" in runs.stage_skip_reason("staged", True, empty)
    assert runs.stage_skip_reason("staged", False, empty) is None
    assert runs.stage_skip_reason("staged", True, tmp_path / "missing.jsonl") is None  # missing: the run config raises


def test_an_unknown_strategy_is_refused():
    runs.check_strategy("curriculum")
    with pytest.raises(ValueError, match="strategy must be one of"):
        runs.check_strategy("random")


# ------------------------------------------------------------------------------------------------- run configs
RUNTIME = {"base_model": "pixel-tiny-llama", "models_dir": "/models", "trust_remote_code": False,
           "chaining": "continue", "dtype": "auto", "device": "", "cpu_threads": 1, "report_to": []}


def write_pairs(path, n):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join('{"messages": []}\n' for _ in range(n)))
    return path


def test_a_chained_run_starts_from_the_previous_adapter_on_its_base(tmp_path):
    train_file = write_pairs(tmp_path / "train.jsonl", 2)
    init = {"adapter_path": "/prev/adapter", "base_model": "/prev/merged_base"}
    run = runs.trainer_run("s2", {"epochs": 2, "styles": ["x"]}, RUNTIME, [train_file],
                           [tmp_path / "validation.jsonl"], tmp_path / "out", init, shuffle=False)
    assert run["init_adapter"] == "/prev/adapter" and run["base_model"] == "/prev/merged_base"
    assert run["validation_files"] == []  # a validation file that was not exported is left out
    assert run["epochs"] == 2 and run["shuffle"] is False and "styles" not in run
    fresh = runs.trainer_run("s1", {}, RUNTIME, [train_file], [], tmp_path / "out", None)
    assert fresh["init_adapter"] is None and fresh["base_model"] == "pixel-tiny-llama"


def test_a_run_without_its_training_file_fails_naming_the_export_asset(tmp_path):
    with pytest.raises(FileNotFoundError, match="materialize fine_tuning_exports first"):
        runs.trainer_run("s1", {}, RUNTIME, [tmp_path / "train.jsonl"], [], tmp_path / "out", None)


def test_experts_without_pairs_are_skipped_and_the_others_train_at_their_own_rate(tmp_path):
    write_pairs(tmp_path / "experts" / "empathetic" / "train.jsonl", 2)
    write_pairs(tmp_path / "experts" / "practical" / "train.jsonl", 0)
    hyper = {"learning_rate": 1e-4, "styles": ["empathetic", "practical"], "expert_learning_rates": {"empathetic": 2e-3}}
    init = {"adapter_path": "/s3/adapter", "base_model": "m"}
    trained, skipped = runs.expert_runs(hyper, RUNTIME, tmp_path, tmp_path / "root", init)
    assert [r["name"] for r in trained] == ["empathetic"] and trained[0]["learning_rate"] == 2e-3
    assert list(skipped) == ["practical"] and "has no pairs" in skipped["practical"]


def test_experts_fail_when_none_has_pairs_or_a_style_is_unknown(tmp_path):
    write_pairs(tmp_path / "experts" / "practical" / "train.jsonl", 0)
    hyper = {"learning_rate": 1e-4, "styles": ["practical"], "expert_learning_rates": {}}
    with pytest.raises(ValueError, match="no expert has training pairs"):
        runs.expert_runs(hyper, RUNTIME, tmp_path, tmp_path / "root", {"adapter_path": "a", "base_model": "m"})
    with pytest.raises(ValueError, match="unknown style"):
        runs.expert_runs({**hyper, "styles": ["poetic"]}, RUNTIME, tmp_path, tmp_path / "root", {})


def test_the_experts_pointer_names_the_merged_base_in_merge_mode(tmp_path):
    trained = [{"name": "practical", "base_model": "m"}]
    assert runs.experts_pointer(tmp_path, trained, "continue")["base_model"] == "m"
    pointer = runs.experts_pointer(tmp_path, trained, "merge")
    assert pointer["base_model"] == str(tmp_path / "practical" / "merged_base")
    assert pointer["experts"] == {"practical": str(tmp_path / "practical" / "adapter")}


def test_a_missing_pointer_says_which_asset_to_materialize(tmp_paths):
    with pytest.raises(FileNotFoundError, match="lora_stage1_counseling has not been trained yet"):
        runs.read_pointer(tmp_paths, "lora_stage1_counseling")
    runs.write_pointer(tmp_paths, "lora_stage1_counseling", {"adapter_path": "/a", "base_model": "m"})
    assert runs.read_pointer(tmp_paths, "lora_stage1_counseling") == {"adapter_path": "/a", "base_model": "m"}


# ------------------------------------------------------------------------------------------------- router
def router_report(accuracy):
    return {"validation_accuracy": accuracy, "validation_rows": 8, "train_rows": 20, "train_accuracy": 0.9,
            "rows_per_style": {"practical": 5}}


def test_router_check_passes_at_the_floor_and_is_a_warning():
    v = checks.router_verdict(router_report(0.5), floor=0.5)
    assert v.passed and v.severity == WARN and v.check_name == checks.CHECK_ROUTER_ACCURACY
    assert v.metadata == {"validation_accuracy": 0.5, "floor": 0.5, "validation_rows": 8}


def test_router_check_fails_below_the_floor_and_without_validation_prompts():
    assert not checks.router_verdict(router_report(0.3), floor=0.5).passed
    assert not checks.router_verdict(router_report(None), floor=0.0).passed


# ------------------------------------------------------------------------------------------------- evaluation
def test_evaluation_verdicts_keep_their_severity_and_put_their_facts_under_details():
    plain = [{"check_name": CHECK_STAGE_PERPLEXITY, "passed": False, "metadata": {"stages_evaluated": 0}},
             {"check_name": CHECK_VOICE, "passed": True, "severity": "warn", "metadata": {"base": 0.1}}]
    stage, voice = checks.evaluation_check_verdicts(plain)
    assert (stage.check_name, stage.passed, stage.severity) == (CHECK_STAGE_PERPLEXITY, False, ERROR)
    assert stage.metadata == {"details": {"type": "json", "raw_value": {"stages_evaluated": 0}}}
    assert (voice.passed, voice.severity) == (True, WARN)


def test_evaluation_metadata_shows_each_stage_s_own_perplexity_drop(tmp_path):
    rows = [{"kind": "stages", "model": "base", "eval_set": "stage1_counseling", "perplexity": 10.0},
            {"kind": "stages", "model": "stage1_counseling", "eval_set": "stage1_counseling", "perplexity": 8.0}]
    report = {"base_model": "m", "perplexity": rows, "generations": [], "voice_scores": {"base": 0.1},
              "voice_references": 3}
    meta = checks.evaluation_metadata(report, tmp_path / "evaluation.md")
    assert meta["own_perplexity_drop"] == {"type": "json", "raw_value": {"stage1_counseling": 0.2}}
    assert meta["dagster/row_count"] == 2 and meta["report_path"]["type"] == "path"
    assert "| base |" in meta["perplexity_stages"]["raw_value"]
