"""The expert router and the inference helper that routes questions and generates with the right adapter."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pytest
import torch
from peft import LoraConfig, get_peft_model

from pixel_pipeline.core.records import STYLES
from pixel_pipeline.defs.resources import EmbeddingModel, PixelStorage
from pixel_pipeline.defs.training import expert_router
from pixel_pipeline.training.base_model import DEFAULT_BASE_MODEL, load_base_model
from pixel_pipeline.training.inference import ExpertAssistant
from pixel_pipeline.training.router import Router, train_router
from pixel_pipeline.testing.training_exports import write_synthetic_exports


@pytest.fixture(scope="module")
def embedding_model(shared_embedding_cache):
    return EmbeddingModel(cache_dir=str(shared_embedding_cache))


def test_router_asset_learns_the_styles_and_reports_accuracy_and_confusion(tmp_paths, embedding_model):
    write_synthetic_exports(tmp_paths.exports_dir, n_train=24, n_validation=8, seed=11)
    result = dg.materialize([expert_router], resources={"storage": PixelStorage(), "embedding_model": embedding_model},
                            run_config={"ops": {"expert_router": {"config": {"router_accuracy_floor": 0.8}}}})
    assert result.success
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == "router_accuracy_above_floor" and check.passed
    meta = result.get_asset_materialization_events()[0].event_specific_data.materialization.metadata
    assert meta["validation_accuracy"].value >= 0.8
    assert meta["validation_rows"].value == 4 * 8 and meta["dagster/row_count"].value == 4 * 24
    assert "| therapeutic |" in meta["confusion_matrix"].value
    # saved without pickle, loads back and routes new questions
    router = Router.load(meta["router_path"].value)
    embedder = embedding_model.embedder(PixelStorage())
    assert router.route(["Give me a script for handling burnout at work.",
                         "What does research say about the amygdala and panic?"], embedder) == \
        ["practical", "educational"]


def test_router_accuracy_floor_fails_the_check_when_labels_are_noise(tmp_paths, embedding_model):
    write_synthetic_exports(tmp_paths.exports_dir, n_train=12, n_validation=8, seed=12)
    for style in STYLES:  # scramble: every style folder gets the same mixture of prompts
        for split in ("train", "validation"):
            (tmp_paths.exports_dir / "experts" / style / f"{split}.jsonl").write_text(
                (tmp_paths.exports_dir / "plans" / "mixed" / f"{split}.jsonl").read_text())
    result = dg.materialize([expert_router], resources={"storage": PixelStorage(), "embedding_model": embedding_model},
                            run_config={"ops": {"expert_router": {"config": {"router_accuracy_floor": 0.9}}}})
    [check] = result.get_asset_check_evaluations()
    assert not check.passed


def test_binary_router_keeps_a_softmax_that_matches_sklearn():
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(-1, 1, (20, 4)), rng.normal(1, 1, (20, 4))])
    router = train_router(x, ["empathetic"] * 20 + ["practical"] * 20)
    assert router.predict_vectors(np.array([[-2.0] * 4, [2.0] * 4])) == ["empathetic", "practical"]


def test_inference_routes_a_mixed_batch_to_each_experts_adapter(tmp_path):
    models = tmp_path / "models"
    folders = {}
    for i, style in enumerate(("empathetic", "practical")):
        torch.manual_seed(i)
        model = get_peft_model(load_base_model(DEFAULT_BASE_MODEL, models),
                               LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj", "down_proj"],
                                          init_lora_weights=False, task_type="CAUSAL_LM"))
        folders[style] = tmp_path / style
        model.save_pretrained(folders[style])
    assistant = ExpertAssistant.load(DEFAULT_BASE_MODEL, models, folders)
    questions = ["How do I stop overthinking?", "I feel alone.", "What can I do today?"]
    experts = ["practical", "empathetic", "practical"]
    mixed = assistant.answer(questions, experts=experts, max_new_tokens=8)
    assert [a["expert"] for a in mixed] == experts
    for question, style, answer in zip(questions, experts, mixed):
        alone = assistant.answer([question], experts=[style], max_new_tokens=8)[0]
        assert alone["answer"] == answer["answer"]
    other = assistant.answer([questions[0]], experts=["empathetic"], max_new_tokens=8)[0]
    assert other["answer"] != mixed[0]["answer"]  # the adapters really differ, so routing matters
