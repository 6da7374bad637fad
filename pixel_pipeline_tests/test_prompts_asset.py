"""`generated_prompts` end to end through Dagster, over fixture curated_segments / curated_conversations tables."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from pixel_pipeline.core.embeddings import Embedder
from pixel_pipeline.core.ids import content_id
from pixel_pipeline.core.io import read_parquet, write_parquet
from pixel_pipeline.core.records import EXPERT_INDEX, REJECT_COLUMNS
from pixel_pipeline.defs.prompts import generated_prompts
from pixel_pipeline.defs.resources import EmbeddingModel, PixelStorage
from pixel_pipeline.prompts.pipeline import OUTPUT_COLUMNS, PromptSettings, generate_prompts
from pixel_pipeline.prompts.rules import PromptRules

SEGMENTS = [
    ("therapeutic", "Complex trauma is what happens when the harm was not one event but the climate you grew up in. A child who lives for years with a parent who is unpredictable learns to watch faces, to stay small, to never need too much. That is why complex trauma shows up later as people pleasing, as numbness, as the feeling that something is wrong with you. Healing from complex trauma starts with naming that climate, and then slowly teaching the body that the danger is over. A safe relationship, with a therapist or a friend, does more for the nervous system than any insight alone, because the wound happened in relationship and it heals in relationship too."),
    ("educational", "Attachment styles are the patterns we learned as small children for staying close to the people we depend on. In the strange situation studies, researchers watched toddlers when a caregiver left the room and came back. Some children were secure, some anxious, some avoidant. As adults those attachment styles show up in romantic relationships: the anxious partner seeks reassurance, the avoidant partner pulls away, and each one's move makes the other's worse. Understanding attachment styles is not about labels. It is about noticing the pattern early, so you can choose a different response when the old fear of being left comes up again."),
    ("therapeutic", "So why do we keep going back to toxic relationships, even when we know they hurt us? I get this question every week. The pull is not weakness. When you grew up with love that came and went, the highs and lows of an unstable partner feel like home, and calm feels empty or even dangerous. Your nervous system reads intensity as connection. The way out of toxic relationships is not more willpower. It is grieving the love you did not get as a child, building friendships where calm is normal, and learning to tolerate the discomfort of a steady relationship until it starts to feel safe instead of boring. Leaving toxic relationships takes months, not days, and it is worth every one of them."),
    ("educational", "A lot of you ask me, what is the difference between shame and guilt? Guilt says I did something bad. It is about an action, and it points toward repair: I can apologise, I can make it right, I can do better next time. Shame says I am bad. It is about identity, and it points toward hiding, because if the problem is who I am there is nothing to repair. That is why shame keeps people stuck in secrecy and addiction while guilt, in healthy amounts, keeps relationships honest. When clients learn to separate the two, they can take responsibility for what they did without concluding that they are worthless."),
    ("empathetic", "Grief comes from love. It is the love you still have for someone with nowhere left to go, and that is why it can show up in the grocery store, on a birthday, or in a song on the radio. People may tell you that a year has passed and you should be better by now, but grief does not follow a schedule. Your tears are not weakness and they are not a sign that you are stuck. They are what love looks like after a loss. Let yourself miss your mother out loud, with people who can hold it, and let grief take the time it takes."),
    ("empathetic", "Last weekend my family drove up to the lake and we spent the whole afternoon on the water. The kids jumped off the dock again and again until they were shivering, and my brother grilled far too many burgers for eight people. Nothing special happened, and that was the point. I sat on the porch afterwards and watched the light go down over the trees, and I thought about how rarely I let an afternoon be just an afternoon, without a plan or a list or a goal attached to it. We drove home late, everyone asleep in the back seat except me."),
    ("practical", "Boundaries are about what you will do, not about controlling what the other person does. If you want to work on boundaries this week, start with one relationship and one sentence: I will call you on Sundays, and during the week I will answer texts in the evening. Write the sentence down and practise it out loud before you need it. Expect guilt the first few times you hold boundaries with a parent; guilt is part of the process, not proof that you did something wrong. Decide in advance what you will do if the line is crossed, and then do it calmly, without a long explanation."),
    ("practical", "How do you calm panic attacks when they hit you at work? Here is what I teach every client. First, name it: panic attacks peak and pass within minutes, and they cannot hurt me. Second, slow your breathing down, in for four counts and out for six, because a long exhale tells the body the emergency is over. Third, put your feet flat on the floor and describe five things you can see. Do not leave the room unless you have to, because leaving teaches your brain that the room was dangerous. Practise the breathing daily when you are calm, so it is there the next time panic attacks come."),
]
QUESTIONS = [
    "I grew up with an alcoholic father and now I'm always on edge, even when nothing is wrong. How can I feel safe?",
    "My boyfriend pulls away whenever I need reassurance. Why does this keep happening in my relationships?",
    "My mom died last year and everyone says I should be over it by now. I still cry every day.",
    "I get panic attacks at work. What can I do in the moment to calm down?",
    "I relapsed after eight months sober and I feel like a failure. How do I start again?",
    "My mother calls me five times a day and gets angry if I don't pick up. How do I set limits without hurting her?",
]


def segments_frame(items=SEGMENTS) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "segment_id": [content_id(t) for _, t in items],
            "text": [t for _, t in items],
            "style": [s for s, _ in items],
            "expert": [EXPERT_INDEX[s] for s, _ in items],
            "source": "Healing Minds with Dr. Lena Hart",
            "file": "fixture.txt",
        }
    )


def conversations_frame(questions=QUESTIONS) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "record_id": [content_id("r" + q) for q in questions],
            "dataset": "counseling",
            "question_id": [content_id(q) for q in questions],
            "prompt": questions,
            "response": "A counselor's answer.",
        }
    )


@pytest.fixture(scope="module")
def embedder(shared_embedding_cache) -> Embedder:
    return Embedder(cache_dir=shared_embedding_cache)


@pytest.fixture
def resources(shared_embedding_cache):
    return {"storage": PixelStorage(), "embedding_model": EmbeddingModel(cache_dir=str(shared_embedding_cache))}


def write_inputs(paths, segments=None, conversations=None):
    write_parquet(segments if segments is not None else segments_frame(), paths.table("curated_segments"))
    if conversations is not False:
        write_parquet(conversations if conversations is not None else conversations_frame(), paths.table("curated_conversations"))


def checks_by_name(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def materialize(resources, config: dict | None = None, raise_on_error: bool = True):
    run_config = {"ops": {"generated_prompts": {"config": config}}} if config else None
    return dg.materialize([generated_prompts], resources=resources, run_config=run_config, raise_on_error=raise_on_error)


TALK_SEGMENTS = {2, 3, 7}  # pose their own question early and answer it
NO_QUESTION_SEGMENT = 5  # a weekend at the lake: no question, no field concept
OPENING_GATED = 6  # boundaries: its concept forms are not close enough to its opening (cosine < opening_floor)
KEPT = len(SEGMENTS) - 2


def test_every_segment_gets_a_question_a_person_would_ask_or_a_reason_why_not(tmp_paths, resources):
    """By default (strict, concept_fallback off): the talk's own questions and concept forms its opening is about;
    a segment with neither is rejected rather than given a generic question."""
    write_inputs(tmp_paths)
    result = materialize(resources)
    assert result.success
    table = read_parquet(tmp_paths.table("generated_prompts"))
    assert list(table.columns) == OUTPUT_COLUMNS
    ids = segments_frame()["segment_id"].tolist()
    assert sorted(table["segment_id"]) == sorted(i for n, i in enumerate(ids) if n not in (NO_QUESTION_SEGMENT, OPENING_GATED))
    rejects = read_parquet(tmp_paths.rejects("generated_prompts"))
    assert rejects.columns.tolist() == REJECT_COLUMNS
    rejects = rejects.set_index("segment_id")
    assert rejects.loc[ids[NO_QUESTION_SEGMENT], "reasons"][0].startswith("no_acceptable_question")
    gated = json.loads(rejects.loc[ids[OPENING_GATED], "details"])
    assert rejects.loc[ids[OPENING_GATED], "reasons"][0].startswith("no_valid_prompt")
    assert set(gated["rule_failures"]) == {"opening_not_about_it"}
    assert all(e["opening"] < 0.62 for e in gated["examples"])

    by_id = table.set_index("segment_id")
    assert {n for n, i in enumerate(ids) if i in by_id.index and by_id.loc[i, "generator"] == "talk"} == TALK_SEGMENTS
    assert by_id.loc[ids[3], "prompt"] == "What is the difference between shame and guilt?"
    assert by_id.loc[ids[1], "prompt"].count("attachment") == 1  # one concept per form
    texts = dict(zip(segments_frame()["segment_id"], segments_frame()["text"]))
    rules = PromptRules()
    for row in table.itertuples():
        assert rules.violations(row.prompt, texts[row.segment_id]) == []
        assert row.alignment >= 0.3 and row.generator in {"talk", "concepts"}
        assert row.style in EXPERT_INDEX and row.expert == EXPERT_INDEX[row.style]
        assert all({"prompt", "generator", "alignment"} <= set(c) and c["prompt"] != row.prompt for c in json.loads(row.candidates))
    assert all(len(k) > 0 for k in table["key_concepts"])

    checks = checks_by_name(result)
    assert set(checks) == {
        "row_accounting", "alignment_floor_share", "prompt_yield", "concept_slots", "no_copied_ngrams",
        "distinct_prompts", "specificity", "generator_distribution",
    }
    assert all(c.passed for c in checks.values()), {n: c.description for n, c in checks.items() if not c.passed}
    assert checks["prompt_yield"].metadata["rejected_no_acceptable_question"].value == 1
    assert checks["prompt_yield"].metadata["rejected_no_valid_prompt"].value == 1

    metadata = result.asset_materializations_for_node("generated_prompts")[0].metadata
    assert metadata["dagster/row_count"].value == KEPT
    assert metadata["specificity_bm25_recall_at_1"].value >= 0.5
    assert "| style |" in metadata["sample_pairs"].value
    assert "| no_acceptable_question | 1 |" in metadata["reject_reasons"].value
    report = json.loads(Path(metadata["report_path"].value).read_text())
    assert report == json.loads((tmp_paths.report_dir("generated_prompts") / "summary.json").read_text())
    assert report["kept"] == KEPT and report["distinct_prompts"] == 1.0 and "llm" in report["skipped_generators"]
    assert sum(sum(counts) for counts in report["alignment_histogram"]["by_style"].values()) == KEPT


def test_with_the_fallback_on_a_segment_left_without_a_question_gets_its_concept_in_a_general_form_marked_as_fallback(
        tmp_paths, resources):
    write_inputs(tmp_paths)
    result = materialize(resources, {"concept_fallback": True})
    assert result.success
    table = read_parquet(tmp_paths.table("generated_prompts")).set_index("segment_id")
    ids = segments_frame()["segment_id"].tolist()
    gated = table.loc[ids[OPENING_GATED]]
    assert gated["generator"] == "concept_fallback" and gated["alignment"] >= 0.3
    assert PromptRules().violations(gated["prompt"], segments_frame()["text"][OPENING_GATED]) == []
    assert (table["generator"] == "concept_fallback").sum() == 1  # only where nothing else was found
    rejects = read_parquet(tmp_paths.rejects("generated_prompts")).set_index("segment_id")
    assert list(rejects.index) == [ids[NO_QUESTION_SEGMENT]]  # no field concept at all: still rejected
    assert rejects.loc[ids[NO_QUESTION_SEGMENT], "reasons"][0].startswith("no_acceptable_question")


def test_without_client_questions_retrieval_is_skipped_with_a_message(tmp_paths, resources):
    write_inputs(tmp_paths, conversations=False)
    result = materialize(resources)
    report = json.loads((tmp_paths.report_dir("generated_prompts") / "summary.json").read_text())
    assert any("retrieval: no client questions" in m for m in report["skipped_generators"].values())
    table = read_parquet(tmp_paths.table("generated_prompts"))
    assert len(table) == KEPT and set(table["generator"]) == {"talk", "concepts"}


def test_pairs_under_the_alignment_floor_are_rejected_with_scores_and_counted(tmp_paths, resources):
    write_inputs(tmp_paths)
    result = materialize(resources, {"alignment_floor": 0.99}, raise_on_error=False)
    checks = checks_by_name(result)
    assert checks["row_accounting"].passed
    assert not checks["alignment_floor_share"].passed and not checks["prompt_yield"].passed
    assert checks["alignment_floor_share"].metadata["rejected_below_floor"].value == KEPT
    rejects = read_parquet(tmp_paths.rejects("generated_prompts"))
    assert len(rejects) == len(SEGMENTS) and set(rejects["dropped_by"]) == {"generated_prompts"}
    reasons = sorted(r[0].split(":")[0] for r in rejects["reasons"])
    assert reasons == ["alignment_below_floor"] * KEPT + ["no_acceptable_question", "no_valid_prompt"]
    below = rejects[rejects["reasons"].map(lambda r: r[0].startswith("alignment_below_floor"))]
    details = json.loads(below["details"].iloc[0])
    assert details["alignment_floor"] == 0.99 and details["best"]["alignment"] < 0.99
    assert read_parquet(tmp_paths.table("generated_prompts")).empty


def test_empty_upstream_gives_an_empty_table(tmp_paths, resources):
    write_inputs(tmp_paths, segments=segments_frame().iloc[:0])
    result = materialize(resources)
    assert all(c.passed for c in result.get_asset_check_evaluations())
    assert read_parquet(tmp_paths.table("generated_prompts")).empty


def test_missing_upstream_table_fails_with_a_clear_error(tmp_paths, resources):
    with pytest.raises(dg.Failure, match="curated_segments has not been materialized"):
        materialize(resources)


def test_rerun_generates_only_for_new_segments(tmp_paths, embedder):
    settings = PromptSettings()
    first = generate_prompts(segments_frame(SEGMENTS[:3]), conversations_frame(), embedder, settings, cache_dir=tmp_paths.cache_dir)
    assert first.cache_stats["concepts"] == {"cached": 0, "generated": 3}
    second = generate_prompts(segments_frame(SEGMENTS[:4]), conversations_frame(), embedder, settings, cache_dir=tmp_paths.cache_dir)
    assert second.cache_stats["concepts"] == {"cached": 3, "generated": 1}
    assert second.cache_stats["retrieval"] == {"cached": 3, "generated": 1}
    same = second.table.set_index("segment_id").loc[first.table["segment_id"], "prompt"]
    assert (same.values == first.table["prompt"].values).all()


def test_cached_candidates_are_keyed_by_every_file_that_decides_them():
    from pixel_pipeline.prompts.generators import code_files

    names = {p.name for p in code_files()}
    assert {"talk_questions.py", "templates.py", "concepts.py", "tagger.py", "field_vocabulary.tsv"} <= names
    assert all(p.is_file() for p in code_files())


PANIC_QUESTION = "I get panic attacks at work. What can I do in the moment to calm down?"


def test_a_strong_real_question_is_kept_verbatim_and_a_weak_nearest_one_is_never_used(embedder):
    panic, grief = SEGMENTS[7], SEGMENTS[4]
    questions = conversations_frame([PANIC_QUESTION, "My mom died last year and everyone says I should be over it by now."])
    run = generate_prompts(segments_frame([panic, grief]), questions, embedder, PromptSettings(generators=["retrieval"], concept_fallback=False))
    assert run.table["prompt"].tolist() == [PANIC_QUESTION]  # the grief question is near (cosine 0.6) but names no shared concept
    assert run.rejects[0]["reasons"][0].startswith("no_acceptable_question")
    strict = generate_prompts(segments_frame([panic]), questions, embedder, PromptSettings(generators=["retrieval"], retrieval_min_similarity=0.95, concept_fallback=False))
    assert strict.table.empty


def test_a_real_question_is_not_reused_blindly(embedder):
    panic = SEGMENTS[7]
    variant = (panic[0], panic[1].replace("every client", "every new client").replace("five things", "four things"))
    segments = segments_frame([panic, variant])
    questions = conversations_frame(
        [PANIC_QUESTION, "My panic attacks at work are getting worse every week. How do I cope during the day?"]
    )
    allowed = PromptSettings(generators=["retrieval"], reuse_penalty=0.0, unique_prompts=False)
    no_penalty = generate_prompts(segments, questions, embedder, allowed)
    penalised = generate_prompts(segments, questions, embedder, PromptSettings(generators=["retrieval"], reuse_penalty=1.0, unique_prompts=False))
    assert len(no_penalty.table) == 2 and no_penalty.table["prompt"].nunique() == 1
    assert penalised.table["prompt"].nunique() == 2


def test_by_default_a_question_answers_one_segment_only(embedder):
    panic = SEGMENTS[7]
    variant = (panic[0], panic[1].replace("every client", "every new client").replace("five things", "four things"))
    run = generate_prompts(segments_frame([panic, variant]), conversations_frame([PANIC_QUESTION]), embedder, PromptSettings(generators=["retrieval"], concept_fallback=False))
    assert len(run.table) == 1 and run.rejects[0]["reasons"][0].startswith("prompt_already_used")


def test_a_question_copying_the_response_never_wins(embedder):
    segment = SEGMENTS[2]
    copying = "Is it true that the highs and lows of an unstable partner feel like home in toxic relationships?"
    honest = "I keep returning to toxic relationships even though I know better. Why can't I stay away?"
    settings = PromptSettings(generators=["retrieval"], retrieval_min_similarity=0.3)
    run = generate_prompts(segments_frame([segment]), conversations_frame([copying, honest]), embedder, settings)
    assert run.table["prompt"].tolist() == [honest]
    assert run.rule_failures["retrieval"] == {"copied_ngram": 1}


def test_a_configured_cross_encoder_scores_every_candidate(embedder):
    from pixel_pipeline.core.embeddings import resolve_model_path

    settings = PromptSettings(generators=["concepts"], cross_encoder_model=resolve_model_path(None))  # a BERT body
    run = generate_prompts(segments_frame(SEGMENTS[:1]), None, embedder, settings)
    assert len(run.table) == 1
    runner_ups = json.loads(run.table["candidates"].iloc[0])
    assert runner_ups and all(0.0 <= c["cross_score"] <= 1.0 for c in runner_ups)


def test_config_knobs_are_the_pure_settings():
    from dataclasses import fields

    from pixel_pipeline.defs.prompts import GeneratedPromptsConfig

    settings = {f.name: f.default if f.default_factory is dataclasses.MISSING else f.default_factory() for f in fields(PromptSettings)}
    config = GeneratedPromptsConfig()
    assert set(settings) <= set(GeneratedPromptsConfig.model_fields)
    assert {k: getattr(config, k) for k in settings} == settings


def test_a_segment_whose_response_opens_mid_thought_gets_no_question_and_is_counted(embedder):
    """A response that opens leaning on the talk before the cut would teach a model to start mid-thought: the
    segment is rejected as opening_leans with what its first sentence leans on; every row is still accounted for."""
    style, text = SEGMENTS[3]
    leaning = (style, "Controlling the story gives them a feeling of power. " + text)
    segments = segments_frame([SEGMENTS[0], leaning])
    run = generate_prompts(segments, conversations_frame(), embedder, PromptSettings(concept_fallback=False))
    rejects = {r["segment_id"]: r for r in run.rejects}
    assert run.table["segment_id"].tolist() == [segments["segment_id"][0]]
    assert rejects[segments["segment_id"][1]]["reasons"] == [
        "opening_leans: the response's first sentence does not open an answer ('them' with no noun before it)"]
    assert run.rows_in == 2 == len(run.table) + len(run.rejects)

    ungated = generate_prompts(segments, conversations_frame(), embedder,
                               PromptSettings(concept_fallback=False, reject_leaning_openings=False))
    assert segments["segment_id"][1] in set(ungated.table["segment_id"])
