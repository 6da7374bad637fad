"""`generated_prompts` end to end through Dagster, over fixture curated_segments / curated_conversations tables."""

from __future__ import annotations

import dataclasses
import json

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
    ("therapeutic", "So when we talk about complex trauma, what I see again and again in my practice is that the nervous system learned to stay on guard. You grew up in a house where love was unpredictable, and your body adapted. Hypervigilance was not a flaw, it was a survival strategy. Healing means teaching the body, slowly, that the danger is over. That is why grounding exercises and a safe therapeutic relationship matter so much, because insight alone rarely calms a nervous system that has been on alert for decades."),
    ("therapeutic", "Recovery from addiction is rarely a straight line. Relapse does not erase the months of sobriety you built; it tells us which triggers we have not mapped yet. I ask clients to write down the hour, the place and the feeling before every craving, and we look at the pattern together with their sponsor. Shame keeps people drinking in secret, so the healing work is to bring the craving into the light, to say it out loud in a support group before it turns into a drink."),
    ("educational", "Let me explain what attachment styles actually are. In the 1970s Mary Ainsworth ran the strange situation experiment, watching how toddlers responded when their caregiver left and came back. Some children were secure, some anxious, some avoidant. As adults, those patterns show up in romantic relationships: the anxious partner seeks reassurance, the avoidant partner pulls away. Understanding your attachment style is not about labels, it is about noticing the pattern so you can choose differently."),
    ("educational", "Here is what the research says about sleep and mood. When you sleep less than six hours, the amygdala, the brain's alarm centre, becomes about sixty percent more reactive, and the prefrontal cortex that calms it down goes quiet. That is why everything feels like an emergency after a bad night. Insomnia and depression feed each other, and treating the insomnia with cognitive behavioural therapy for insomnia often lifts the low mood as well."),
    ("empathetic", "If you are sitting there tonight feeling like nobody sees how much you are carrying, I want you to hear me. Grief after losing a parent does not follow a schedule. People may tell you it has been a year and you should be better by now, but the ache of missing your mother can show up in the grocery store, on her birthday, in a song. Your tears are not weakness. They are love with nowhere to go."),
    ("empathetic", "Loneliness is one of the most painful feelings there is, and it is so common that almost nobody talks about it. You can be surrounded by coworkers all week and still spend Saturday night aching for one person who really knows you. That ache does not mean something is wrong with you. It means you are wired for connection, and it is okay to admit that you miss having friends who call just to ask how you are."),
    ("practical", "Here are three things you can do this week when anxiety spikes at work. First, box breathing: breathe in for four counts, hold for four, out for four, hold for four. Second, write down the worry and the evidence for and against it, the classic cognitive restructuring worksheet. Third, schedule a ten minute walk after lunch, because movement burns off the adrenaline. Do these daily for two weeks and keep a simple log of your anxiety from zero to ten."),
    ("practical", "If you want to set a boundary with a parent who calls every day, start with a script. Say what you will do, not what they must do: I will call you on Sundays, and during the week I will answer texts in the evening. Expect guilt, it is part of the process, not a sign you did something wrong. Write the script down, practise it out loud with a friend, and decide in advance what you will do if the boundary is crossed."),
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


def test_every_segment_gets_one_grounded_client_question(tmp_paths, resources):
    write_inputs(tmp_paths)
    result = materialize(resources)
    assert result.success
    table = read_parquet(tmp_paths.table("generated_prompts"))
    assert list(table.columns) == OUTPUT_COLUMNS
    assert sorted(table["segment_id"]) == sorted(segments_frame()["segment_id"])
    assert read_parquet(tmp_paths.rejects("generated_prompts")).columns.tolist() == REJECT_COLUMNS

    texts = dict(zip(segments_frame()["segment_id"], segments_frame()["text"]))
    rules = PromptRules()
    for row in table.itertuples():
        assert rules.violations(row.prompt, texts[row.segment_id]) == []
        assert row.alignment >= 0.3 and row.generator in {"retrieval", "concepts"}
        assert row.style in EXPERT_INDEX and row.expert == EXPERT_INDEX[row.style]
        runner_ups = json.loads(row.candidates)
        assert runner_ups and all({"prompt", "generator", "alignment"} <= set(c) for c in runner_ups)
        assert all(c["prompt"] != row.prompt for c in runner_ups)
    assert all(len(k) > 0 for k in table["key_concepts"])

    checks = checks_by_name(result)
    assert set(checks) == {
        "prompt_accounting", "alignment_floor_share", "no_copied_ngrams", "distinct_prompts", "specificity", "generator_distribution"
    }
    assert all(c.passed for c in checks.values()), {n: c.description for n, c in checks.items() if not c.passed}

    metadata = result.asset_materializations_for_node("generated_prompts")[0].metadata
    assert metadata["dagster/row_count"].value == len(SEGMENTS)
    assert metadata["specificity_bm25_recall_at_1"].value >= 0.5
    assert metadata["distinct_prompts"].value == 1.0
    assert "data:image/png;base64" in metadata["alignment_histogram"].value
    assert "| style |" in metadata["sample_pairs"].value and "llm" in metadata["skipped_generators"].value


def test_without_client_questions_retrieval_is_skipped_with_a_message(tmp_paths, resources):
    write_inputs(tmp_paths, conversations=False)
    result = materialize(resources)
    metadata = result.asset_materializations_for_node("generated_prompts")[0].metadata
    assert "retrieval: no client questions" in metadata["skipped_generators"].value
    table = read_parquet(tmp_paths.table("generated_prompts"))
    assert len(table) == len(SEGMENTS) and set(table["generator"]) == {"concepts"}


def test_pairs_under_the_alignment_floor_are_rejected_with_scores_and_counted(tmp_paths, resources):
    write_inputs(tmp_paths)
    result = materialize(resources, {"alignment_floor": 0.99}, raise_on_error=False)
    checks = checks_by_name(result)
    assert checks["prompt_accounting"].passed
    assert not checks["alignment_floor_share"].passed
    assert checks["alignment_floor_share"].metadata["rejected_below_floor"].value == len(SEGMENTS)
    rejects = read_parquet(tmp_paths.rejects("generated_prompts"))
    assert len(rejects) == len(SEGMENTS) and set(rejects["stage"]) == {"generated_prompts"}
    assert all(r[0].startswith("alignment_below_floor") for r in rejects["reasons"])
    details = json.loads(rejects["details"].iloc[0])
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


def test_a_real_question_is_not_reused_blindly(embedder):
    panic = [s for s in SEGMENTS if "anxiety spikes" in s[1]][0]
    variant = (panic[0], panic[1].replace("this week", "this month").replace("two weeks", "three weeks"))
    segments = segments_frame([panic, variant])
    questions = conversations_frame(
        ["I get panic attacks at work. What can I do in the moment to calm down?",
         "My anxiety at work is getting worse every week. How do I cope during the day?"]
    )
    no_penalty = generate_prompts(segments, questions, embedder, PromptSettings(generators=["retrieval"], reuse_penalty=0.0))
    penalised = generate_prompts(segments, questions, embedder, PromptSettings(generators=["retrieval"], reuse_penalty=1.0))
    assert no_penalty.table["prompt"].nunique() == 1
    assert penalised.table["prompt"].nunique() == 2


def test_a_question_copying_the_response_never_wins(embedder):
    segment = SEGMENTS[0]
    copying = "Why is it that insight alone rarely calms a nervous system that has been on alert?"
    honest = "I've been on edge for as long as I remember. Can my body ever learn to feel safe?"
    run = generate_prompts(segments_frame([segment]), conversations_frame([copying, honest]), embedder, PromptSettings(generators=["retrieval"]))
    assert run.table["prompt"].tolist() == [honest]
    assert run.rule_failures["retrieval"] == {"copied_ngram": 1}


def test_a_configured_cross_encoder_scores_every_candidate(embedder):
    from pixel_pipeline.core.embeddings import resolve_model_path

    settings = PromptSettings(generators=["concepts"], cross_encoder_model=resolve_model_path(None))  # a BERT body
    run = generate_prompts(segments_frame(SEGMENTS[:1]), None, embedder, settings)
    assert len(run.table) == 1
    for candidates in run.table["candidates"]:
        assert all(0.0 <= c["cross_score"] <= 1.0 for c in json.loads(candidates))


def test_config_knobs_are_the_pure_settings():
    from dataclasses import fields

    from pixel_pipeline.defs.prompts import GeneratedPromptsConfig

    settings = {f.name: f.default if f.default_factory is dataclasses.MISSING else f.default_factory() for f in fields(PromptSettings)}
    config = GeneratedPromptsConfig()
    assert set(settings) <= set(GeneratedPromptsConfig.model_fields)
    assert {k: getattr(config, k) for k in settings} == settings
