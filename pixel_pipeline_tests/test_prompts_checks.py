"""The check builders and metadata of `generated_prompts` (prompts/checks.py), called with tiny hand-made inputs:
no embedding model, no Dagster run."""

from __future__ import annotations

import pandas as pd

from pixel_pipeline.core.records import DATASET_SEGMENTS, reject_row
from pixel_pipeline.core.verdicts import ERROR, WARN
from pixel_pipeline.prompts.checks import (
    PromptThresholds,
    accounting_verdict,
    alignment_floor_verdict,
    concept_slots_verdict,
    copied_ngrams_verdict,
    distinct_prompts_verdict,
    generator_distribution_verdict,
    prompt_figures,
    prompt_verdicts,
    prompt_yield_verdict,
    prompts_metadata,
    prompts_report,
    reject_counts,
    reject_reason_counts,
    specificity_verdict,
)
from pixel_pipeline.prompts.pipeline import OUTPUT_COLUMNS, PromptRun, PromptSettings

RESPONSE = (
    "Grief comes from love. It is the love you still have for someone with nowhere left to go, and that is why it "
    "can show up in the grocery store, on a birthday, or in a song on the radio."
)


def reject(segment_id: str, reason: str) -> dict:
    return reject_row(DATASET_SEGMENTS, segment_id, "generated_prompts", [reason])


# ---- row_accounting


def test_accounting_passes_when_every_segment_is_kept_or_rejected_once():
    verdict = accounting_verdict(3, ["a", "b"], ["c"], {"a", "b", "c"})
    assert verdict.passed and verdict.check_name == "row_accounting"
    assert verdict.description == "3 in = 2 kept + 1 rejected"


def test_accounting_fails_when_a_segment_is_both_kept_and_rejected():
    verdict = accounting_verdict(2, ["a", "b"], ["b"], {"a", "b"})
    assert not verdict.passed and verdict.severity == ERROR
    assert verdict.metadata["duplicate_ids"] == 1 and verdict.description == "rows do not reconcile"


def test_accounting_fails_when_a_segment_is_neither_kept_nor_rejected():
    verdict = accounting_verdict(3, ["a"], ["b"], {"a", "b", "c"})
    assert not verdict.passed and verdict.metadata["unaccounted_ids"] == 1


def test_accounting_passes_on_an_empty_upstream():
    assert accounting_verdict(0, [], [], set()).passed


# ---- reject reasons, alignment floor, yield


def test_reject_counts_split_rejects_by_their_first_reason():
    rejects = [
        reject("a", "alignment_below_floor: best alignment 0.100 < 0.3"),
        reject("b", "no_acceptable_question: none"),
        reject("c", "prompt_already_used: taken"),
        reject("d", "no_valid_prompt: 2 candidates, none passed the prompt rules"),
        reject("e", "opening_leans: the response's first sentence does not open an answer ('them' with no noun before it)"),
    ]
    assert reject_counts(rejects) == (1, 2, 1, 1)
    assert reject_counts([]) == (0, 0, 0, 0)


def test_alignment_floor_share_fails_when_too_many_questions_stay_under_the_floor():
    verdict = alignment_floor_verdict(kept=8, below=2, no_valid=1, alignment_floor=0.3, min_share=0.95)
    assert not verdict.passed and verdict.metadata["share_meeting_floor"] == 0.8
    assert verdict.metadata["rejected_no_valid_prompt"] == 1


def test_alignment_floor_share_passes_when_every_question_meets_the_floor_or_there_is_none():
    assert alignment_floor_verdict(kept=5, below=0, no_valid=3, alignment_floor=0.3, min_share=0.95).passed
    assert alignment_floor_verdict(kept=0, below=0, no_valid=0, alignment_floor=0.3, min_share=0.95).passed


def test_prompt_yield_warns_when_too_few_segments_get_a_question():
    verdict = prompt_yield_verdict(rows_in=20, kept=1, no_question=16, leaning=2, no_valid=1, min_yield=0.1,
                                   generator_stats={})
    assert not verdict.passed and verdict.severity == WARN
    assert verdict.metadata["kept_share"] == 0.05 and verdict.metadata["rejected_no_acceptable_question"] == 16
    assert verdict.metadata["rejected_opening_leans"] == 2 and "2 responses open mid-thought" in verdict.description


def test_prompt_yield_passes_at_the_minimum_and_on_no_segments():
    assert prompt_yield_verdict(10, 1, 9, 0, 0, 0.1, {"talk": {"screened": 3}}).passed
    assert prompt_yield_verdict(0, 0, 0, 0, 0, 0.1, {}).passed


# ---- prompt content


def test_concept_slots_fail_when_a_concept_prompt_holds_no_noun_phrase():
    assert not concept_slots_verdict(concept_prompts=4, slot_violations=1).passed
    assert concept_slots_verdict(concept_prompts=4, slot_violations=0).passed


def test_copied_ngrams_fail_when_a_prompt_repeats_a_run_of_its_response():
    copying = "Why can grief show up in the grocery store, on a birthday?"
    honest = "My mother died last year and I still cry in shops. Is that normal?"
    verdict = copied_ngrams_verdict([honest, copying], [RESPONSE, RESPONSE], ["s1", "s2"], 6)
    assert not verdict.passed and verdict.metadata["pairs_with_copied_run"] == 1
    assert verdict.metadata["examples"]["raw_value"] == ["s2"]
    assert copied_ngrams_verdict([honest], [RESPONSE], ["s1"], 6).passed


def test_distinct_prompts_fail_when_one_question_answers_many_segments():
    verdict = distinct_prompts_verdict(kept=4, distinct=0.5, distinct_2=0.4, minimum=0.95)
    assert not verdict.passed and verdict.severity == ERROR and verdict.description == "50.0% of 4 prompts are distinct"
    assert distinct_prompts_verdict(kept=4, distinct=1.0, distinct_2=0.9, minimum=0.95).passed
    assert distinct_prompts_verdict(kept=0, distinct=0.0, distinct_2=0.0, minimum=0.95).passed


def test_specificity_warns_when_prompts_do_not_retrieve_their_own_response():
    verdict = specificity_verdict(kept=10, recall_at_1=0.3, minimum=0.5)
    assert not verdict.passed and verdict.severity == WARN
    assert specificity_verdict(kept=10, recall_at_1=0.5, minimum=0.5).passed
    assert specificity_verdict(kept=0, recall_at_1=0.0, minimum=0.5).passed


# ---- generator distribution


def distribution_verdict(valid=None, styles_out=("practical", "empathetic"), ran=("talk", "concepts")):
    return generator_distribution_verdict(
        list(ran), {"llm": "no model"}, {"talk": 3, "concepts": 5} if valid is None else valid, 10,
        {"practical", "empathetic"}, set(styles_out), pd.DataFrame(),
    )


def test_generator_distribution_passes_when_every_style_has_pairs_and_every_generator_proposed_some():
    verdict = distribution_verdict()
    assert verdict.passed and verdict.severity == WARN
    assert verdict.metadata["generators_skipped"]["raw_value"] == {"llm": "no model"}


def test_generator_distribution_warns_about_a_style_without_pairs():
    verdict = distribution_verdict(styles_out=("practical",))
    assert not verdict.passed and verdict.metadata["styles_without_pairs"]["raw_value"] == ["empathetic"]


def test_generator_distribution_warns_about_a_generator_without_usable_candidates():
    verdict = distribution_verdict(valid={"concepts": 5})
    assert not verdict.passed and verdict.metadata["generators_without_valid_candidates"]["raw_value"] == ["talk"]


# ---- the whole run


def prompt_run(rows: list[dict], rejects: list[dict]) -> PromptRun:
    table = pd.DataFrame(rows, columns=OUTPUT_COLUMNS)
    return PromptRun(
        table=table, rejects=rejects, skipped={"llm": "no model configured"}, cache_stats={}, seconds={"talk": 0.1},
        candidates_per_generator={"talk": 2}, valid_candidates_per_generator={"talk": 1, "concepts": 1},
        rule_failures={"talk": {"too_short": 1}}, rows_in=len(rows) + len(rejects),
    )


def segments_frame() -> pd.DataFrame:
    return pd.DataFrame({"segment_id": ["s1", "s2"], "text": [RESPONSE, "A weekend at the lake."], "style": ["empathetic", "empathetic"]})


ROW = {"segment_id": "s1", "prompt": "My mother died last year and I still cry in shops. Is that normal?",
       "generator": "talk", "alignment": 0.7, "candidates": "[]", "key_concepts": ["grief"], "style": "empathetic",
       "expert": 2, "bm25_rank": 1}


def test_prompt_verdicts_are_the_eight_checks_in_spec_order_and_pass_on_a_sound_run():
    from pixel_pipeline.defs.prompts import CHECKS

    run = prompt_run([ROW], [reject("s2", "no_acceptable_question: none")])
    settings = PromptSettings(generators=["talk", "concepts", "llm"])
    verdicts = prompt_verdicts(run, prompt_figures(run.table, segments_frame()), segments_frame(), settings, PromptThresholds())
    assert [v.check_name for v in verdicts] == [spec.name for spec in CHECKS]
    assert all(v.passed for v in verdicts), {v.check_name: v.description for v in verdicts if not v.passed}


def test_prompt_verdicts_fail_accounting_when_a_segment_is_lost():
    run = prompt_run([ROW], [])
    run.rows_in = 2
    verdicts = prompt_verdicts(run, prompt_figures(run.table, segments_frame()), segments_frame(), PromptSettings(),
                               PromptThresholds())
    assert not {v.check_name: v for v in verdicts}["row_accounting"].passed


HEADLINE_KEYS = [
    "dagster/row_count", "path", "rejects_path", "report_path", "rows_in", "rejected", "reject_reasons", "distinct_2",
    "specificity_bm25_recall_at_1", "sample_pairs",
]


def test_metadata_holds_the_paths_and_headline_figures_and_the_report_holds_the_rest(tmp_path):
    run = prompt_run([ROW], [reject("s2", "no_acceptable_question: none")])
    figures = prompt_figures(run.table, segments_frame())
    written = {"path": tmp_path / "t.parquet", "rejects_path": tmp_path / "r.parquet", "report_path": tmp_path / "s.json"}
    metadata = prompts_metadata(run, figures, PromptSettings(), written, sample_pairs_per_style=3)
    assert list(metadata) == HEADLINE_KEYS
    assert metadata["path"] == {"type": "path", "raw_value": str(tmp_path / "t.parquet")}
    assert metadata["dagster/row_count"] == 1 and metadata["rows_in"] == 2 and metadata["rejected"] == 1
    assert "| no_acceptable_question | 1 |" in metadata["reject_reasons"]["raw_value"]
    assert "| style |" in metadata["sample_pairs"]["raw_value"]
    report = prompts_report(run, figures, PromptSettings(), elapsed=2.0)
    assert (report["rows_in"], report["kept"], report["rejected"]) == (2, 1, 1)
    assert report["reject_reasons"] == {"no_acceptable_question": 1}
    assert report["winners_per_style"] == {"empathetic": {"talk": 1, "total": 1}}
    # what the metadata no longer shows is in the report
    assert report["seconds"] == {"talk": 0.1, "total": 2.0} and report["segments_per_second"] == 1.0
    assert report["skipped_generators"] == {"llm": "no model configured"}
    assert report["valid_candidates_per_generator"] == {"talk": 1, "concepts": 1}
    assert report["rule_failures_per_generator"] == {"talk": {"too_short": 1}} and report["cache"] == {}
    assert report["alignment_mean"] == 0.7 and report["distinct_prompts"] == 1.0
    histogram = report["alignment_histogram"]
    assert histogram["floor"] == PromptSettings().alignment_floor and sum(histogram["by_style"]["empathetic"]) == 1
    assert len(histogram["edges"]) == len(histogram["by_style"]["empathetic"]) + 1


def test_reject_reasons_count_each_segment_once_by_its_first_reason_most_frequent_first():
    rejects = [reject("a", "alignment_below_floor: best 0.2 < 0.3"), reject("b", "no_valid_prompt: 3 candidates"),
               reject("c", "no_valid_prompt: 1 candidate")]
    rejects[0]["reasons"].append("no_valid_prompt: also")
    assert reject_reason_counts(rejects) == {"no_valid_prompt": 2, "alignment_below_floor": 1}
    assert reject_reason_counts([]) == {}


def test_metadata_of_an_empty_run_says_there_are_no_pairs(tmp_path):
    run = prompt_run([], [])
    figures = prompt_figures(run.table, pd.DataFrame({"segment_id": [], "text": []}))
    metadata = prompts_metadata(run, figures, PromptSettings(), {"path": tmp_path}, sample_pairs_per_style=3)
    assert metadata["sample_pairs"]["raw_value"] == "_(no pairs)_"
    assert metadata["reject_reasons"]["raw_value"] == "_(none)_"
    report = prompts_report(run, figures, PromptSettings(), elapsed=0.0)
    assert report["segments_per_second"] == 0.0 and report["alignment_histogram"]["by_style"] == {}


def test_config_thresholds_are_the_check_defaults():
    from pixel_pipeline.defs.prompts import GeneratedPromptsConfig

    assert GeneratedPromptsConfig().thresholds() == PromptThresholds()
