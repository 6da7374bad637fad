"""Curation's check and metadata builders (curation.checks), called directly on tiny hand-made inputs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pixel_pipeline.core.records import STYLES
from pixel_pipeline.core.verdicts import ERROR, WARN
from pixel_pipeline.curation import checks, dedup, review
from pixel_pipeline.curation.curate import CurationOutcome
from pixel_pipeline.curation.pairs import PairsOutcome

LIMITS = checks.PairLimits(max_remaining_duplicate_rate=0.0, min_expert_count=2, max_expert_ratio=4.0,
                           balance_policy="warn", max_crisis_share=0.25)


def _counts(**per_style: int) -> pd.DataFrame:
    """An expert_counts table with the given counts (0 for a style not named)."""
    counts = [per_style.get(s, 0) for s in STYLES]
    total = sum(counts)
    return pd.DataFrame({"expert": range(len(STYLES)), "style": list(STYLES), "count": counts,
                         "augmented": 0, "share": [c / total if total else 0.0 for c in counts]})


def _stage_report(by_source: list[dict], crisis_rows: int = 0) -> dict:
    """The parts of a curate_* report the checks and metadata read."""
    return {"rejected_by_rule": {"garbled": 1}, "rejected_by_this_rule_only": {"garbled": 1},
            "rejected_by_rule_and_source": {"garbled": {"A": 1}}, "by_source": by_source,
            "examples": {"garbled": [{"id": "s3", "source": "A", "reason": "foreign letters"}]},
            "pii_counts": {"EMAIL": 1}, "crisis_counts": {}, "crisis_rows": crisis_rows,
            "housekeeping_sentences_removed": 0, "quality_classifier": "off", "shaping_of_kept": {},
            "off_domain": "margin >= 0.0", "score_quantiles": {}, "language_cache": {}, "rule_cache": {}}


def _segment_outcome(kept_ids, rejected_ids, by_source, crisis_rows=0, classifier_scores=None) -> CurationOutcome:
    kept = pd.DataFrame({"segment_id": kept_ids, "score_off_domain": [0.2] * len(kept_ids),
                         "score_quality_classifier": classifier_scores or [None] * len(kept_ids)})
    return CurationOutcome(kept, pd.DataFrame({"segment_id": rejected_ids}), _stage_report(by_source, crisis_rows))


def _pair_accounting(**changes: int) -> dict:
    acc = {"curated_segments_in": 5, "segments_with_prompt": 3, "segments_rejected_by_prompts_stage": 1,
           "segments_missing_prompt": 1, "generated_prompts_extra_rows_ignored": 0, "curated_conversations_in": 2,
           "pair_candidates": 5, "kept": 3, "augmented_copies": 0, "rejected_duplicates": 2,
           "rejected_expert_cap": 0, "rejected_missing_prompt": 1}
    return {**acc, **changes}


def _pairs(responses: list[str], augmented: list[bool], crisis_flags: list) -> pd.DataFrame:
    return pd.DataFrame({"dataset": "segments", "style": "practical", "response": responses,
                         "augmented": augmented, "crisis_flags": crisis_flags})


# ---- accounting and crisis share (every curation stage) ------------------------------------------------------------
def test_accounting_check_passes_when_rows_in_equal_kept_plus_rejected():
    verdict = checks.accounting_verdict("acc", 3, ["a", "b", "c"], ["a", "b"], ["c"])
    assert verdict.passed and verdict.severity == ERROR
    assert verdict.description == "3 rows in = 2 kept + 1 rejected"


def test_accounting_check_fails_when_a_row_is_lost():
    verdict = checks.accounting_verdict("acc", 3, ["a", "b", "c"], ["a"], ["c"])
    assert not verdict.passed and verdict.description.startswith("accounting broken: 3 in vs 1 kept + 1 rejected")


def test_accounting_check_fails_when_an_id_was_not_in_the_input():
    verdict = checks.accounting_verdict("acc", 2, ["a", "b"], ["a"], ["z"])
    assert not verdict.passed and "1 ids not in the input" in verdict.description
    assert verdict.metadata["ids_not_in_input"]["raw_value"] == ["z"]


def test_accounting_check_counts_ids_both_kept_and_rejected():
    verdict = checks.accounting_verdict("acc", 2, ["a", "b"], ["a"], ["a"])
    assert verdict.metadata["ids_kept_and_rejected"] == 1


def test_crisis_share_check_warns_above_the_share_and_passes_at_it():
    assert not checks.crisis_share_verdict("crisis", 2, 4, 0.25).passed
    at_limit = checks.crisis_share_verdict("crisis", 1, 4, 0.25)
    assert at_limit.passed and at_limit.severity == WARN and at_limit.metadata["share"] == 0.25


def test_crisis_share_check_passes_when_nothing_was_kept():
    assert checks.crisis_share_verdict("crisis", 0, 0, 0.25).passed


# ---- curated_segments -----------------------------------------------------------------------------------------------
def test_main_voice_check_fails_when_a_voice_source_keeps_nothing():
    by_source = [{"source": "Main", "rows_in": 4, "kept": 0}, {"source": "Other", "rows_in": 2, "kept": 2}]
    verdict = checks.main_voice_verdict(by_source, ["Main"])
    assert not verdict.passed and "all segments rejected for Main" in verdict.description


def test_main_voice_check_fails_when_no_voice_source_has_segments():
    assert not checks.main_voice_verdict([{"source": "Other", "rows_in": 2, "kept": 2}], ["Main"]).passed
    assert not checks.main_voice_verdict([], ["Main"]).passed


def test_main_voice_check_passes_when_every_voice_source_keeps_some():
    by_source = [{"source": "Main", "rows_in": 4, "kept": 1}, {"source": "Other", "rows_in": 2, "kept": 0}]
    assert checks.main_voice_verdict(by_source, ["Main"]).passed


def test_segment_checks_are_accounting_main_voice_and_crisis_share():
    raw = pd.DataFrame({"segment_id": ["s1", "s2", "s3"]})
    outcome = _segment_outcome(["s1", "s2"], ["s3"], [{"source": "Main", "rows_in": 3, "kept": 2}], crisis_rows=1)
    verdicts = checks.curated_segments_verdicts(raw, outcome, ["Main"], max_crisis_share=0.25)
    assert [v.check_name for v in verdicts] == ["row_accounting", "main_voice_not_all_rejected",
                                                "curated_segments_crisis_share"]
    assert [v.passed for v in verdicts] == [True, True, False]  # 1 of 2 kept rows flagged: above 25 %


SEGMENT_METADATA_KEYS = {"dagster/row_count", "path", "rejects_path", "report_path", "rows_in", "kept", "rejected",
                         "reject_reasons", "by_source", "off_domain_margin"}


def test_segment_metadata_is_the_headline_counts_files_two_tables_and_the_off_domain_plot():
    outcome = _segment_outcome(["s1", "s2"], ["s3"], [{"source": "Main", "rows_in": 3, "kept": 2}],
                               classifier_scores=[0.1, 0.3])
    files = {"path": Path("t.parquet"), "rejects_path": Path("r.parquet"), "report_path": Path("report.json")}
    metadata = checks.curated_segments_metadata(3, outcome, files)
    assert set(metadata) == SEGMENT_METADATA_KEYS  # the classifier histogram's numbers are in report.json
    assert (metadata["dagster/row_count"], metadata["rows_in"], metadata["kept"], metadata["rejected"]) == (2, 3, 2, 1)
    assert metadata["path"] == {"type": "path", "raw_value": "t.parquet"} and "table" not in metadata
    assert "| garbled | 1 | 1 | A: 1 |" in metadata["reject_reasons"]["raw_value"]
    assert "| Main | 3 | 2 |" in metadata["by_source"]["raw_value"]


def test_segment_metadata_plots_only_a_scored_column():
    outcome = _segment_outcome(["s1"], [], [{"source": "Main", "rows_in": 1, "kept": 1}])
    assert "off_domain_margin" in checks.score_histograms(outcome.kept)
    assert checks.score_histograms(outcome.kept, ["quality_classifier_score"]) == {}  # all None: no plot
    assert checks.score_histograms(outcome.kept.drop(columns="score_off_domain")) == {}


def test_segment_report_keeps_what_the_metadata_leaves_out():
    outcome = _segment_outcome(["s1", "s2"], ["s3"], [{"source": "Main", "rows_in": 3, "kept": 2}],
                               classifier_scores=[0.1, 0.3])
    report = checks.curated_segments_report({"min_words": 8}, outcome, {"requested": 2, "cache_hits": 1})
    assert report["settings"] == {"min_words": 8} and report["embedding_cache"] == {"requested": 2, "cache_hits": 1}
    for key in ("examples", "pii_counts", "crisis_counts", "housekeeping_sentences_removed", "quality_classifier",
                "shaping_of_kept", "off_domain", "score_quantiles", "language_cache", "rule_cache",
                "rejected_by_rule_and_source", "by_source"):
        assert key in report, key
    kept_scores = report["kept_score_quantiles"]
    assert kept_scores["off_domain_margin"] == {"rows": 2, "0.05": 0.2, "0.25": 0.2, "0.5": 0.2, "0.75": 0.2,
                                                "0.95": 0.2}
    classifier = kept_scores["quality_classifier_score"]
    assert classifier["rows"] == 2 and classifier["0.5"] == 0.2
    unscored = checks.kept_score_quantiles(_segment_outcome(["s1"], [], []).kept)
    assert list(unscored) == ["off_domain_margin"]  # no classifier score on a kept row: nothing to summarise


# ---- curated_conversations ------------------------------------------------------------------------------------------
def test_conversation_checks_pass_on_an_empty_input_without_columns():
    outcome = CurationOutcome(pd.DataFrame(), pd.DataFrame(), _stage_report([]))
    verdicts = checks.curated_conversations_verdicts(pd.DataFrame(), outcome, max_crisis_share=0.25)
    assert [v.check_name for v in verdicts] == ["row_accounting", "curated_conversations_crisis_share"]
    assert all(v.passed for v in verdicts)


def test_conversation_accounting_fails_when_a_record_is_lost():
    conv = pd.DataFrame({"record_id": ["r1", "r2"]})
    outcome = CurationOutcome(pd.DataFrame({"record_id": ["r1"]}), pd.DataFrame({"record_id": []}), _stage_report([]))
    assert not checks.curated_conversations_verdicts(conv, outcome, max_crisis_share=0.25)[0].passed


def test_conversation_metadata_shows_rules_and_by_dataset():
    outcome = CurationOutcome(pd.DataFrame({"record_id": ["r1"]}), pd.DataFrame({"record_id": ["r2"]}),
                              {**_stage_report([]), "by_dataset": [{"dataset": "cot", "rows_in": 2}]})
    files = {"path": Path("t"), "rejects_path": Path("r"), "report_path": Path("j")}
    metadata = checks.curated_conversations_metadata(2, outcome, files)
    assert metadata["kept"] == 1 and metadata["rejected"] == 1 and "| cot | 2 |" in metadata["by_dataset"]["raw_value"]
    assert set(metadata) == {"dagster/row_count", "path", "rejects_path", "report_path", "rows_in", "kept", "rejected",
                             "by_dataset", "reject_reasons"}
    report = checks.outcome_report({"conversation_min_words": 3}, outcome)
    assert report["settings"] == {"conversation_min_words": 3}
    assert report["by_dataset"] == [{"dataset": "cot", "rows_in": 2}]
    assert {"by_source", "examples", "pii_counts", "crisis_counts"} <= set(report)


# ---- deduplicated_pairs ---------------------------------------------------------------------------------------------
def test_pairs_accounting_passes_when_candidates_and_segments_add_up():
    verdict = checks.pairs_accounting_verdict(_pair_accounting())
    assert verdict.passed and verdict.description.startswith("5 candidate pairs = 3 kept + 2 duplicates + 0 capped")


def test_pairs_accounting_fails_when_a_candidate_is_unaccounted_for():
    assert not checks.pairs_accounting_verdict(_pair_accounting(kept=2)).passed


def test_pairs_accounting_fails_when_a_curated_segment_is_unaccounted_for():
    assert not checks.pairs_accounting_verdict(_pair_accounting(segments_missing_prompt=0)).passed


def test_remaining_duplicate_check_fails_above_the_rate():
    remaining = {"rows": 4, "rows_with_duplicate": 2, "rate": 0.5}
    assert not checks.remaining_duplicates_verdict(remaining, 0.0).passed
    assert checks.remaining_duplicates_verdict(remaining, 0.5).passed
    assert checks.remaining_duplicates_verdict({"rows": 0, "rows_with_duplicate": 0, "rate": 0.0}, 0.0).passed


def test_min_expert_count_warns_naming_the_short_experts():
    verdict = checks.min_expert_count_verdict(_counts(therapeutic=5, educational=1, empathetic=5, practical=5), 2)
    assert not verdict.passed and verdict.severity == WARN and verdict.description == "experts under 2 pairs: educational"


def test_min_expert_count_passes_when_every_expert_has_enough():
    assert checks.min_expert_count_verdict(_counts(therapeutic=2, educational=2, empathetic=2, practical=2), 2).passed


def test_min_expert_count_has_nothing_to_judge_without_segment_pairs():
    verdict = checks.min_expert_count_verdict(_counts(), 2)
    assert verdict.passed and verdict.description == "no segment pairs at all: nothing to check"


def test_expert_ratio_ignores_experts_without_pairs():
    assert checks.expert_ratio(_counts(therapeutic=8, educational=2)) == 4.0
    assert checks.expert_ratio(_counts(practical=3)) == 1.0


def test_expert_balance_warns_above_the_ratio():
    verdict = checks.expert_balance_verdict(_counts(therapeutic=9, educational=2), 4.0, "warn", {"policy": "warn"})
    assert not verdict.passed and verdict.severity == WARN and verdict.metadata["ratio"] == 4.5
    assert checks.expert_balance_verdict(_counts(therapeutic=8, educational=2), 4.0, "warn", {}).passed


def test_measure_pairs_leaves_augmented_copies_out_of_duplicates_and_crisis_rows():
    text = "the same answer about sleep and worry, said once and then copied again for balance"
    pairs = _pairs([text, text, "a different answer about grief that stays on its own"], [False, True, False],
                   [["suicide"], ["suicide"], None])
    figures = checks.measure_pairs(pairs, dedup.NearDupSettings())
    assert figures.remaining == {"rows": 2, "rows_with_duplicate": 0, "rate": 0.0}
    assert (figures.crisis_rows, figures.original_rows) == (1, 2)
    assert figures.expert_counts.set_index("style").at["practical", "count"] == 3  # copies counted per expert


def test_measure_pairs_finds_a_remaining_exact_duplicate():
    text = "the same answer about sleep and worry, said twice by two different rows"
    figures = checks.measure_pairs(_pairs([text, text], [False, False], [[], []]), dedup.NearDupSettings())
    assert figures.remaining["rate"] == 1.0
    assert not checks.remaining_duplicates_verdict(figures.remaining, 0.0).passed


def test_pair_checks_run_in_order_with_their_limits():
    figures = checks.PairFigures({"rows": 3, "rows_with_duplicate": 0, "rate": 0.0},
                                 _counts(therapeutic=1, educational=3, empathetic=3, practical=3), 1, 3)
    outcome = PairsOutcome(pd.DataFrame(), pd.DataFrame(), {"accounting": _pair_accounting(), "balance": {}})
    verdicts = checks.deduplicated_pairs_verdicts(outcome, figures, LIMITS)
    assert {v.check_name: v.passed for v in verdicts} == {
        "row_accounting": True, "max_remaining_duplicate_rate": True, "min_expert_count": False,
        "expert_balance": True, "pairs_crisis_share": False}


def test_pairs_report_and_metadata_carry_what_the_checks_measured():
    figures = checks.PairFigures({"rows": 1, "rows_with_duplicate": 0, "rate": 0.0}, _counts(practical=1), 0, 1)
    report = {"accounting": _pair_accounting(), "balance": {}, "by_dataset": {"segments": 1},
              "duplicates_by_kind": {}, "clusters": 0, "lsh": {}, "semantic": "off", "prompts": {}}
    written = checks.pairs_report({"near_threshold": 0.8}, report, figures)
    assert written["remaining_duplicates"]["rows"] == 1 and written["expert_counts"][3]["count"] == 1
    assert written["crisis_flagged_pairs"] == 0 and written["semantic"] == "off"
    for key in ("accounting", "lsh", "prompts", "balance", "settings"):  # left out of the metadata, kept here
        assert key in written, key
    files = {"path": Path("p"), "rejects_path": Path("r"), "report_path": Path("report.json")}
    metadata = checks.deduplicated_pairs_metadata(PairsOutcome(pd.DataFrame({"a": [1]}), pd.DataFrame(), report),
                                                  figures, files)
    assert set(metadata) == {"dagster/row_count", "path", "rejects_path", "report_path", "by_dataset",
                             "duplicates_by_kind", "clusters", "crisis_flagged_pairs", "expert_counts", "expert_shares"}
    assert metadata["dagster/row_count"] == 1 and metadata["path"]["raw_value"] == "p"
    assert metadata["crisis_flagged_pairs"] == 0 and metadata["report_path"]["raw_value"] == "report.json"


# ---- review_sample / review_verdicts --------------------------------------------------------------------------------
def _sheet(styles_with_prompt: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"dataset": "segments", "style": styles_with_prompt, "source": "A",
                         "prompt": ["How?"] * len(styles_with_prompt)})


def test_review_coverage_passes_when_a_style_has_fewer_pairs_than_asked_and_all_are_sampled():
    pairs = pd.DataFrame({"dataset": "segments", "style": ["practical"], "augmented": [False]})
    assert checks.review_coverage_verdict(_sheet(["practical"]), pairs, per_style=2).passed


def test_review_coverage_warns_about_an_under_sampled_style():
    pairs = pd.DataFrame({"dataset": "segments", "style": ["practical"] * 3, "augmented": False})
    verdict = checks.review_coverage_verdict(_sheet(["practical"]), pairs, per_style=2)
    assert not verdict.passed and verdict.severity == WARN and verdict.description == "under-sampled styles: practical"


def test_review_coverage_does_not_count_augmented_copies_as_available():
    pairs = pd.DataFrame({"dataset": "segments", "style": ["practical"] * 3, "augmented": [False, True, True]})
    assert checks.review_coverage_verdict(_sheet(["practical"]), pairs, per_style=2).passed


def test_review_sample_metadata_tells_where_to_put_the_filled_sheet():
    sample = _sheet(["practical", "practical"])
    metadata = checks.review_sample_metadata(sample, Path("s.csv"), Path("s.html"), Path("/data/review"))
    assert "/data/review/<name>.csv" in metadata["how_to_review"] and metadata["dagster/row_count"] == 2
    assert "| segments | practical | A | 2 |" in metadata["strata"]["raw_value"]


def test_verdict_rows_check_ignores_unreviewed_rows_and_warns_about_bad_ones():
    unreviewed = [{"file": "a.csv", "row": 2, "problem": "unreviewed"}]
    assert checks.verdict_rows_valid_verdict(unreviewed).passed
    verdict = checks.verdict_rows_valid_verdict([*unreviewed, {"file": "a.csv", "row": 3, "problem": "verdict 'maybe'"}])
    assert not verdict.passed and verdict.severity == WARN and verdict.description == "1 rows or files ignored"


def test_agreement_check_does_not_judge_too_few_reviewed_rows():
    verdict = checks.reviewer_agreement_verdict({"reviewed": 0}, 0.8, 10)
    assert verdict.passed and verdict.description == "only 0 reviewed rows with a filter decision (need 10)"


def test_agreement_check_warns_below_the_minimum_agreement():
    verdict = checks.reviewer_agreement_verdict({"with_filter_decision": 10, "agreement": 0.7}, 0.8, 10)
    assert not verdict.passed and verdict.severity == WARN and verdict.description == "agreement 70.0% (warn below 80%)"
    assert checks.reviewer_agreement_verdict({"with_filter_decision": 10, "agreement": 0.8}, 0.8, 10).passed


def test_review_verdicts_metadata_counts_files_verdicts_and_unreviewed_rows():
    verdicts = pd.DataFrame({"verdict": ["accept", "accept", "reject"]})
    problems = [{"file": "a.csv", "row": 5, "problem": "unreviewed"}, {"file": "a.csv", "row": 6, "problem": "bad"}]
    written = {"path": Path("v.parquet"), "report_path": Path("agreement.json"), "review_folder": Path("review")}
    metadata = checks.review_verdicts_metadata(verdicts, problems, {"reviewed": 3}, [Path("a.csv")], written)
    assert metadata["verdicts"]["raw_value"] == {"accept": 2, "reject": 1}
    assert (metadata["files"], metadata["unreviewed_rows"], metadata["path"]["raw_value"]) == (1, 1, "v.parquet")


def test_filter_scores_are_joined_onto_segment_pairs_for_reviewers():
    pairs = pd.DataFrame({"segment_id": ["s1", None], "record_id": [None, "r1"]})
    curated = pd.DataFrame({"segment_id": ["s1", "s1"], "score_garbled": [0.1, 0.1], "text": ["t", "t"]})
    joined = review.with_filter_scores(pairs, curated)
    assert list(joined.columns) == ["segment_id", "record_id", "score_garbled"] and len(joined) == 2
    assert joined.at[0, "score_garbled"] == 0.1 and pd.isna(joined.at[1, "score_garbled"])
    assert review.with_filter_scores(pairs, None) is pairs
