"""LLM backtranslation mechanics with a tiny randomly initialised Llama (its output is noise, on purpose).

What is specified here: batching, decoding only the new tokens, several sampled candidates per segment, the
rules rejecting the model's garbage, the other generators taking over, and a clear skip when no model is usable.
"""

from __future__ import annotations

import pytest

from pixel_pipeline.core.embeddings import Embedder, resolve_model_path
from pixel_pipeline.prompts.generators import GeneratorUnavailable, LLMBacktranslationGenerator, SegmentInput
from pixel_pipeline.prompts.pipeline import PromptSettings, generate_prompts
from pixel_pipeline_tests.test_prompts_asset import SEGMENTS, segments_frame


@pytest.fixture(scope="module")
def tiny_llm(tmp_path_factory) -> str:
    """A ~0.5M-parameter Llama with the packaged MiniLM (BERT WordPiece) tokenizer, saved like any HF model."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(None))
    config = LlamaConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    assert sum(p.numel() for p in model.parameters()) < 600_000
    folder = tmp_path_factory.mktemp("tiny_llama")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def embedder(shared_embedding_cache) -> Embedder:
    return Embedder(cache_dir=shared_embedding_cache)


def test_generates_in_batches_and_decodes_only_new_text(tiny_llm):
    generator = LLMBacktranslationGenerator(tiny_llm, llm_batch_size=2, llm_max_new_tokens=12, llm_candidates=2, llm_device="cpu")
    segments = [SegmentInput(f"s{i}", text, style) for i, (style, text) in enumerate(SEGMENTS[:3])]
    out = generator.generate(segments)
    assert generator.stats == {"batches": 2, "generated": 6}  # 3 segments in batches of 2, 2 samples each
    assert len(out) == 3 and all(1 <= len(c) <= 2 for c in out)
    for cands in out:
        for c in cands:
            assert c.generator == "llm" and c.prompt and "educator" not in c.prompt  # not the instruction echoed
            assert len(c.prompt.split()) <= 40  # 12 new tokens at most
    assert generator.generate(segments) == out  # seeded sampling: same run, same candidates
    greedy = LLMBacktranslationGenerator(tiny_llm, llm_batch_size=3, llm_max_new_tokens=6, llm_temperature=0.0, llm_device="cpu")
    assert [len(c) for c in greedy.generate(segments)] == [1, 1, 1] and greedy.stats == {"batches": 1, "generated": 3}


def test_the_rules_reject_its_garbage_and_the_other_generators_take_over(tiny_llm, embedder):
    segments = segments_frame(SEGMENTS[:2])
    settings = dict(llm_model=tiny_llm, llm_max_new_tokens=8, llm_batch_size=2, llm_device="cpu")
    alone = generate_prompts(segments, None, embedder, PromptSettings(generators=["llm"], concept_fallback=False, **settings))
    assert alone.table.empty and len(alone.rejects) == 2
    assert all(r["reasons"][0].startswith("no_valid_prompt") for r in alone.rejects)
    assert sum(alone.rule_failures["llm"].values()) >= alone.candidates_per_generator["llm"]

    combined = generate_prompts(segments, None, embedder, PromptSettings(generators=["llm", "concepts"], **settings))
    assert len(combined.table) == 2 and set(combined.table["generator"]) == {"concepts"}
    assert combined.candidates_per_generator["llm"] > 0 and combined.valid_candidates_per_generator.get("llm", 0) == 0


def test_no_model_configured_or_loadable_is_a_clear_skip(tmp_path, embedder):
    with pytest.raises(GeneratorUnavailable, match="no model configured"):
        LLMBacktranslationGenerator("")
    missing = LLMBacktranslationGenerator(str(tmp_path / "no_such_model"))
    with pytest.raises(GeneratorUnavailable, match="could not load"):
        missing.load()
    run = generate_prompts(
        segments_frame(SEGMENTS[:1]), None, embedder, PromptSettings(generators=["concepts", "llm"], llm_model=str(tmp_path / "nope"))
    )
    assert "could not load" in run.skipped["llm"] and len(run.table) == 1
