"""The training evaluation: forgetting matrix, expert specialisation, side-by-side generations, voice score, and the
two checks built from them."""

from __future__ import annotations

import json

import dagster as dg
import pandas as pd
import pytest

from pixel_pipeline.core.records import STYLES
from pixel_pipeline.defs.resources import EmbeddingModel, PixelStorage
from pixel_pipeline.defs.training import (
    LoraTraining,
    expert_adapters,
    expert_router,
    lora_stage1_counseling,
    lora_stage2_reasoning,
    lora_stage3_voice,
    training_evaluation,
)
from pixel_pipeline.training import evaluation as ev
from pixel_pipeline.testing.training_exports import write_synthetic_exports

TINY = {"epochs": 2, "learning_rate": 3e-3, "lora_r": 4, "lora_alpha": 8, "max_seq_length": 256,
        "micro_batch_size": 2, "checkpoint_every_steps": 50}


def ppl_rows(stage_ppl: dict[str, float], base_ppl: float) -> list[dict]:
    rows = [{"kind": "stages", "model": ev.BASE, "eval_set": s, "perplexity": base_ppl} for s in stage_ppl]
    return rows + [{"kind": "stages", "model": s, "eval_set": s, "perplexity": p} for s, p in stage_ppl.items()]


def verdicts(rows, voice, min_drop=0.0):
    return {v["check_name"]: v for v in ev.evaluation_verdicts(
        {"perplexity": rows, "voice_scores": voice, "voice_references": 3}, min_drop)}


def test_stage_check_passes_only_when_every_stage_beats_base_on_its_own_set_by_the_margin():
    good = ppl_rows({"stage1_counseling": 8.0, "stage2_reasoning": 5.0, "stage3_voice": 9.0}, 10.0)
    assert verdicts(good, {})[ev.CHECK_STAGE_PERPLEXITY]["passed"]
    assert not verdicts(good, {}, min_drop=0.15)[ev.CHECK_STAGE_PERPLEXITY]["passed"]  # stage 3 dropped 10 % only
    worse = ppl_rows({"stage1_counseling": 8.0, "stage2_reasoning": 10.5}, 10.0)
    check = verdicts(worse, {})[ev.CHECK_STAGE_PERPLEXITY]
    assert not check["passed"] and check["metadata"]["per_stage"]["stage2_reasoning"]["drop"] == pytest.approx(-0.05)
    assert not verdicts([], {})[ev.CHECK_STAGE_PERPLEXITY]["passed"]  # nothing evaluated is not a pass


def test_voice_check_needs_stage3_above_base_and_fails_without_references():
    assert verdicts([], {ev.BASE: 0.30, ev.VOICE_STAGE: 0.41})[ev.CHECK_VOICE]["passed"]
    assert not verdicts([], {ev.BASE: 0.41, ev.VOICE_STAGE: 0.41})[ev.CHECK_VOICE]["passed"]
    assert not verdicts([], {})[ev.CHECK_VOICE]["passed"]


def test_forgetting_matrix_shows_each_cell_against_the_base_model():
    rows = ppl_rows({"stage1_counseling": 8.0}, 10.0) + [
        {"kind": "stages", "model": "stage1_counseling", "eval_set": "stage3_voice", "perplexity": 12.0},
        {"kind": "stages", "model": ev.BASE, "eval_set": "stage3_voice", "perplexity": 10.0}]
    table = ev.perplexity_matrix_markdown(rows, "stages")
    assert "| base | 10.00 | 10.00 |" in table
    assert "| stage1_counseling | 8.00 (-20.0 %) | 12.00 (+20.0 %) |" in table


def test_voice_score_is_higher_for_answers_that_sound_like_the_references():
    import numpy as np

    class BagOfWords:  # a transparent embedder: one dimension per word
        vocab = ["trauma", "nervous", "system", "safe", "weather", "football", "score"]

        def encode(self, texts):
            return np.array([[t.lower().count(w) for w in self.vocab] for t in texts], dtype=float) + 1e-3

    refs = ["Trauma lives in the nervous system until it feels safe.", "Your nervous system learned that."]
    scores = ev.voice_scores(BagOfWords(), {"on_voice": ["The nervous system and trauma: feeling safe."],
                                            "off_voice": ["The football score and the weather."]}, refs)
    assert scores["on_voice"] > scores["off_voice"]
    assert ev.voice_scores(BagOfWords(), {"x": ["a"]}, []) == {}


def test_packaged_questions_load_and_a_malformed_file_is_refused(tmp_path):
    questions = ev.load_eval_questions()
    assert 5 <= len(questions) <= 8 and all("?" in q for q in questions)
    bad = tmp_path / "q.json"
    bad.write_text(json.dumps({"questions": ["ok?", ""]}))
    with pytest.raises(ValueError, match="questions"):
        ev.load_eval_questions(bad)


@pytest.mark.slow
def test_evaluation_asset_after_the_training_group_writes_tables_files_and_checks(tmp_paths, shared_embedding_cache):
    write_synthetic_exports(tmp_paths.exports_dir, n_train=6, n_validation=3, seed=21)
    resources = {"storage": PixelStorage(), "lora_training": LoraTraining(cpu_threads=1),
                 "pipes_training_client": dg.PipesSubprocessClient(),
                 "embedding_model": EmbeddingModel(cache_dir=str(shared_embedding_cache))}
    ops = {a: {"config": TINY} for a in ("lora_stage1_counseling", "lora_stage2_reasoning", "lora_stage3_voice")}
    ops["expert_adapters"] = {"config": TINY}
    ops["training_evaluation"] = {"config": {"max_new_tokens": 8, "max_seq_length": 256}}
    result = dg.materialize([lora_stage1_counseling, lora_stage2_reasoning, lora_stage3_voice, expert_adapters,
                             expert_router, training_evaluation], resources=resources, run_config={"ops": ops},
                            raise_on_error=False)
    assert result.success
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()
              if e.asset_key.path[-1] == "training_evaluation"}
    assert set(checks) == {ev.CHECK_STAGE_PERPLEXITY, ev.CHECK_VOICE}
    # the tiny model learns the templated stages, so each stage beats the untrained base on its own set
    assert checks[ev.CHECK_STAGE_PERPLEXITY].passed
    meta = result.asset_materializations_for_node("training_evaluation")[0].metadata
    assert meta["base_model"].value == "pixel-tiny-llama"
    assert "| base |" in meta["perplexity_stages"].value and "stage3_voice" in meta["perplexity_stages"].value
    assert "expert_practical" in meta["perplexity_experts"].value
    assert meta["generations"].value.count("\n") == 1 + len(ev.load_eval_questions())
    out = tmp_paths.training_dir("training_evaluation")
    ppl = pd.read_parquet(out / "perplexity.parquet")
    assert len(ppl[ppl.kind == "stages"]) == 4 * 3  # base + 3 stages, on 3 stage sets
    assert len(ppl[ppl.kind == "experts"]) == 5 * 4  # stage 3 + 4 experts, on 4 expert sets
    report = json.loads((out / "evaluation.json").read_text())
    assert set(report["voice_scores"]) == {ev.BASE, "stage1_counseling", ev.VOICE_STAGE, ev.ROUTED}
    assert report["voice_references"] == 3
    assert {g["routed_style"] for g in report["generations"]} <= set(STYLES)
    assert (out / "evaluation.md").read_text().startswith("# Training evaluation")


def test_the_voice_check_is_a_warning_on_the_random_tiny_model_and_an_error_on_a_pretrained_one():
    from pixel_pipeline.training.base_model import DEFAULT_BASE_MODEL
    from pixel_pipeline.training.evaluation import CHECK_VOICE, evaluation_verdicts

    report = {"perplexity": [], "voice_scores": {"base": 0.2, "stage3_voice": 0.1}, "voice_references": 3}
    for base_model, severity in ((DEFAULT_BASE_MODEL, "warn"), ("smollm2-135m-instruct", "error")):
        (voice,) = [v for v in evaluation_verdicts({**report, "base_model": base_model}) if v["check_name"] == CHECK_VOICE]
        assert voice["severity"] == severity and not voice["passed"]
