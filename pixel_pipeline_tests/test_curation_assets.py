"""The curation assets in Dagster: files written, checks evaluated, rejects explained, the review loop closed."""

from __future__ import annotations

import json

import dagster as dg
import pandas as pd
import pytest

from pixel_pipeline.core.io import write_parquet
from pixel_pipeline.core.io import write_json
from pixel_pipeline.core.records import REJECT_COLUMNS, choose_voice_sources, reject_row, rejects_frame
from pixel_pipeline.defs import curation as C
from pixel_pipeline.defs.resources import EmbeddingModel, PixelStorage
from pixel_pipeline_tests.test_curation_samples import (
    CLEAN,
    DEFECTS,
    LOOKALIKE,
    MAIN_EDUCATOR_SOURCE,
    PII_TEXT,
    conversations_frame,
    segments_frame,
)

ALL = [C.curated_segments, C.curated_conversations, C.deduplicated_pairs, C.review_sample, C.review_verdicts]


@pytest.fixture
def resources(shared_embedding_cache):
    return {"storage": PixelStorage(), "embedding_model": EmbeddingModel(cache_dir=str(shared_embedding_cache))}


def _write_upstream(paths, segments: pd.DataFrame, conversations: pd.DataFrame) -> None:
    write_parquet(segments, paths.table("raw_segments"))
    # what raw_segments resolves (curation reads it): the main channel, as a setting
    voice = choose_voice_sources(segments["source"].value_counts().to_dict(), [MAIN_EDUCATOR_SOURCE])
    write_json(voice.to_dict(), paths.voice_choice_file)
    write_parquet(conversations[conversations["dataset"] == "counseling"], paths.table("counseling_conversations"))
    write_parquet(conversations[conversations["dataset"] == "cot"], paths.table("cot_conversations"))


def _write_prompts(paths) -> None:
    """generated_prompts for every curated segment but one, which the prompts stage rejected."""
    segs = pd.read_parquet(paths.table("curated_segments"))
    prompts = pd.DataFrame({"segment_id": segs["segment_id"], "generator": "template", "alignment": 0.55,
                            "prompt": [f"How can I make sense of what I am going through, part {i}?" for i in range(len(segs))],
                            "candidates": "[]", "key_concepts": [[] for _ in range(len(segs))],
                            "style": segs["style"], "expert": segs["expert"]})
    write_parquet(prompts.iloc[1:], paths.table("generated_prompts"))
    write_parquet(rejects_frame([reject_row("segments", segs["segment_id"].iat[0], "generated_prompts",
                                            ["alignment_floor: 0.12 < 0.3"])]), paths.rejects("generated_prompts"))


STYLE_TEXTS = {  # distinct texts per style; each look-alike is a near-duplicate of the clean text it was made from
    "therapeutic": ["trauma", "grief", "crisis_supportive", "subscribe_belief"],
    "educational": ["education", "medication_safe", "greek_word"],
    "empathetic": ["empathy", "boundaries"],
    "practical": ["practical", "breathing_cue"],
}


def _fixture_corpus() -> tuple[pd.DataFrame, pd.DataFrame]:
    texts = {**CLEAN, **LOOKALIKE}
    frames = [segments_frame({name: texts[name] for name in names}, style=style,
                             source=MAIN_EDUCATOR_SOURCE if i % 2 == 0 else "Other Channel")
              for i, (style, names) in enumerate(STYLE_TEXTS.items())]
    frames.append(segments_frame({**DEFECTS, "pii": PII_TEXT}, style="therapeutic"))
    segments = pd.concat(frames, ignore_index=True)
    conv = pd.concat([
        conversations_frame([("My name is Dana Ruiz and I cannot sleep.", CLEAN["practical"]),
                             ("Should I stop my meds?", "Just stop taking the pills, you don't need them."),
                             ("Why do I freeze?", CLEAN["trauma"]),
                             ("How do I stop overthinking at night?", "Give the thoughts a place to land: write them "
                              "down an hour before bed, then tell yourself they will be there in the morning.")],
                            "counseling"),
        conversations_frame([("I feel numb.", "<think>Validate first.</think> " + CLEAN["empathy"]),
                             ("My partner and I fight about chores.", "<think>Look for the need under the fight."
                              "</think> Often the fight is about feeling unseen, so start with what each of you "
                              "needs to feel like a team.")], "cot"),
    ], ignore_index=True)
    return segments, conv


def _checks(result) -> dict[str, dg.AssetCheckEvaluation]:
    """Check evaluations by `asset:check` (every asset that drops rows has its own `row_accounting`)."""
    return {f"{e.asset_key.to_user_string()}:{e.check_name}": e for e in result.get_asset_check_evaluations()}


def test_curation_chain_writes_tables_rejects_and_passes_its_checks(tmp_paths, resources):
    segments, conv = _fixture_corpus()
    _write_upstream(tmp_paths, segments, conv)
    # the named rules' fixture (test_curation_rules pins the classifier on the same texts)
    first = dg.materialize([C.curated_segments, C.curated_conversations], resources=resources, run_config={"ops": {
        "curated_segments": {"config": {"quality_classifier": False}}}})
    _write_prompts(tmp_paths)
    result = dg.materialize(ALL[2:], resources=resources, run_config={"ops": {
        "deduplicated_pairs": {"config": {"min_expert_count": 1}},
        "review_sample": {"config": {"per_style": 2, "rejected_per_style": 2}}}})
    assert first.success and result.success
    checks = {**_checks(first), **_checks(result)}
    for name in ("curated_segments:row_accounting", "curated_segments:main_voice_not_all_rejected",
                 "curated_conversations:row_accounting", "deduplicated_pairs:row_accounting",
                 "deduplicated_pairs:max_remaining_duplicate_rate", "deduplicated_pairs:min_expert_count",
                 "review_sample:review_sample_coverage"):
        assert checks[name].passed, (name, checks[name].description)
    assert checks["curated_segments:row_accounting"].description.startswith(f"{len(segments)} rows in")
    for run, asset in ((first, "curated_segments"), (first, "curated_conversations"), (result, "deduplicated_pairs")):
        metadata = run.asset_materializations_for_node(asset)[0].metadata
        assert metadata["path"].value == str(tmp_paths.table(asset)), asset  # the table the asset wrote
        assert metadata["report_path"].value == str(tmp_paths.report_dir(asset) / "report.json"), asset
        assert len(metadata) <= 10, (asset, sorted(metadata))  # headline values; the rest is in report.json
    # what the metadata leaves out is in the reports
    seg_report = json.loads((tmp_paths.report_dir("curated_segments") / "report.json").read_text())
    assert seg_report["embedding_cache"]["requested"] >= 1 and seg_report["pii_counts"]
    assert seg_report["kept_score_quantiles"]["off_domain_margin"]["rows"] == seg_report["kept"]
    assert {"examples", "shaping_of_kept", "rule_cache", "language_cache", "score_quantiles"} <= set(seg_report)
    pairs_report = json.loads((tmp_paths.report_dir("deduplicated_pairs") / "report.json").read_text())
    assert pairs_report["crisis_flagged_pairs"] >= 1 and {"accounting", "lsh", "prompts", "balance"} <= set(pairs_report)

    curated_rejects = pd.read_parquet(tmp_paths.rejects("curated_segments"))
    assert list(curated_rejects.columns) == REJECT_COLUMNS and (curated_rejects["dropped_by"] == "curated_segments").all()
    assert len(curated_rejects) == len(DEFECTS)
    conv_rejects = pd.read_parquet(tmp_paths.rejects("curated_conversations"))
    assert conv_rejects["reasons"].map(lambda r: r[0].startswith("harmful")).all() and len(conv_rejects) == 1

    pairs = pd.read_parquet(tmp_paths.table("deduplicated_pairs"))
    assert set(pairs["dataset"]) == {"segments", "counseling", "cot"}
    counseling = pairs[pairs["dataset"] == "counseling"]
    assert (counseling["group_key"] == conv.set_index("record_id").loc[counseling["record_id"], "question_id"].values).all()
    curated_conv = pd.read_parquet(tmp_paths.table("curated_conversations"))
    assert "[NAME]" in " ".join(curated_conv["prompt"]) and "Dana" not in " ".join(curated_conv["conversation"])
    # crisis flags travel with the pairs, for training and review to treat them specially
    curated = pd.read_parquet(tmp_paths.table("curated_segments")).set_index("segment_id")
    seg_pairs = pairs[pairs["dataset"] == "segments"]
    assert [list(f) for f in seg_pairs["crisis_flags"]] == [list(curated.at[i, "crisis_flags"]) for i in seg_pairs["segment_id"]]
    assert seg_pairs["crisis_flags"].map(len).sum() >= 1
    dedup_rejects = pd.read_parquet(tmp_paths.rejects("deduplicated_pairs"))
    # look-alikes near-duplicate their originals; counseling and cot answers repeat segment texts (the segment has the
    # better score and stays): dropped as duplicates, with the cluster and the kept id in the details. The trauma
    # segment has no prompt (rejected by the prompts stage), so its look-alike keeps the trauma cluster.
    dup = dedup_rejects[dedup_rejects["reasons"].map(lambda r: r[0].startswith("duplicate_"))]
    assert len(dup) == 2 + 3 and all(json.loads(d)["kept_id"] in set(pairs["segment_id"]) for d in dup["details"])
    assert pairs["dup_cluster"].notna().sum() == 4  # one kept member per cluster

    # review loop: the sheet comes out as CSV + HTML; reviewers fill it in; verdicts come back with agreement
    sheet = pd.read_csv(tmp_paths.report_dir("review_sample") / "review_sample.csv", dtype=str, keep_default_na=False)
    assert (tmp_paths.report_dir("review_sample") / "review_sample.html").read_text().count('class="card"') == len(sheet)
    assert {"verdict", "reviewer", "note"} <= set(sheet.columns) and (sheet["verdict"] == "").all()
    assert (sheet["prompt"] == "").sum() > 0  # filter-rejected rows are in the sheet too, for agreement
    reviewed = sheet.copy()
    reviewed["verdict"] = ["reject" if p == "" else "accept" for p in reviewed["prompt"]]
    reviewed.loc[reviewed.index[0], "verdict"] = "reject"  # one reviewer disagreement with the filters
    reviewed.loc[reviewed.index[1], "verdict"] = "maybe"  # an invalid verdict: reported, ignored
    reviewed["reviewer"] = "ana"
    (tmp_paths.data_dir / "review").mkdir()
    reviewed.to_csv(tmp_paths.data_dir / "review" / "batch1.csv", index=False)
    verdicts_run = dg.materialize([C.review_verdicts], resources=resources)
    verdicts = pd.read_parquet(tmp_paths.table("review_verdicts"))
    assert list(verdicts.columns) == ["dataset", "segment_id", "record_id", "verdict", "reviewer", "note"]
    assert len(verdicts) == len(sheet) - 1 and (verdicts["reviewer"] == "ana").all()
    vchecks = _checks(verdicts_run)
    assert not vchecks["review_verdicts:verdict_rows_valid"].passed  # warns about the "maybe"
    assert vchecks["review_verdicts:verdict_rows_valid"].severity == dg.AssetCheckSeverity.WARN
    report = json.loads((tmp_paths.report_dir("review_verdicts") / "agreement.json").read_text())
    assert report["agreement"]["with_filter_decision"] == len(sheet) - 1
    assert report["agreement"]["reviewer_rejects_filter_kept"] >= 1
    assert report["agreement"]["agreement"] < 1.0


def test_blocking_checks_fail_when_the_main_voice_is_wiped_out_or_an_expert_is_missing(tmp_paths, resources):
    only_defects = segments_frame({k: v for k, v in DEFECTS.items() if k != "garbled"}, source=MAIN_EDUCATOR_SOURCE)
    others = segments_frame({k: v for k, v in CLEAN.items()}, source="Other Channel", style="practical")
    _write_upstream(tmp_paths, pd.concat([only_defects, others], ignore_index=True), conversations_frame([], "counseling"))
    result = dg.materialize([C.curated_segments], resources=resources, raise_on_error=False)
    checks = _checks(result)
    assert not checks["curated_segments:main_voice_not_all_rejected"].passed
    assert checks["curated_segments:row_accounting"].passed

    # only practical segments survive: three experts are under min_expert_count
    write_parquet(conversations_frame([], "counseling").assign(crisis_flags=None, pii_counts=None),
                  tmp_paths.table("curated_conversations"))
    _write_prompts(tmp_paths)
    result = dg.materialize(
        [C.deduplicated_pairs], resources=resources, raise_on_error=False,
        run_config={"ops": {"deduplicated_pairs": {"config": {"min_expert_count": 1, "semantic_dedup": False}}}},
    )
    checks = _checks(result)
    missing = checks["deduplicated_pairs:min_expert_count"]
    assert not missing.passed and "therapeutic" in missing.description
    assert checks["deduplicated_pairs:row_accounting"].passed


def test_review_verdicts_without_a_review_folder_is_an_empty_table(tmp_paths, resources):
    result = dg.materialize([C.review_verdicts], resources=resources)
    assert result.success
    verdicts = pd.read_parquet(tmp_paths.table("review_verdicts"))
    assert verdicts.empty and list(verdicts.columns) == ["dataset", "segment_id", "record_id", "verdict", "reviewer", "note"]
    assert _checks(result)["review_verdicts:reviewer_filter_agreement"].passed  # nothing reviewed yet: nothing to judge
