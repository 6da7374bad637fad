"""Tokenisation and packing: loss only on assistant tokens, no attention or loss across packed sequences."""

from __future__ import annotations

import json

import pytest
import torch

from pixel_pipeline.training.base_model import DEFAULT_BASE_MODEL, load_base_model, load_tokenizer
from pixel_pipeline.training.data import (
    IGNORE_INDEX,
    collate_rows,
    epoch_batches,
    pack_examples,
    read_messages_jsonl,
    tokenize_conversation,
    tokenize_conversations,
)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def tokenizer(models_dir):
    return load_tokenizer(DEFAULT_BASE_MODEL, models_dir)


def conversation(i: int, answer_repeats: int = 1):
    return [{"role": "system", "content": "Be kind."},
            {"role": "user", "content": f"Question {i}: I feel anxious at work."},
            {"role": "assistant", "content": "That sounds hard. " * answer_repeats + f"Answer {i}."}]


def test_embedded_model_is_a_small_llama_built_offline_and_deterministically(tokenizer, models_dir, tmp_path):
    model = load_base_model(DEFAULT_BASE_MODEL, models_dir)
    assert model.config.model_type == "llama"
    assert 0.5e6 < sum(p.numel() for p in model.parameters()) < 3e6
    again = load_base_model(DEFAULT_BASE_MODEL, tmp_path)  # rebuilt from scratch elsewhere: identical weights
    assert torch.equal(model.model.embed_tokens.weight, again.model.embed_tokens.weight)
    assert load_tokenizer(DEFAULT_BASE_MODEL, tmp_path).get_vocab() == tokenizer.get_vocab()
    rendered = tokenizer.apply_chat_template(conversation(0)[:2], tokenize=False, add_generation_prompt=True)
    assert rendered.endswith("<|im_start|>assistant\n")


def test_loss_is_taken_on_assistant_tokens_only(tokenizer):
    ex = tokenize_conversation(tokenizer, conversation(3))
    target = [t for t, label in zip(ex.input_ids, ex.labels) if label != IGNORE_INDEX]
    assert tokenizer.decode(target) == "That sounds hard. Answer 3.<|im_end|>"
    # the same mask the template's {% generation %} markers give
    ref = tokenizer.apply_chat_template(conversation(3), tokenize=True, return_dict=True,
                                        return_assistant_tokens_mask=True)
    assert [label != IGNORE_INDEX for label in ex.labels] == [bool(m) for m in ref["assistant_masks"]]


def test_multi_turn_conversations_learn_every_assistant_turn(tokenizer):
    conv = conversation(1) + [{"role": "user", "content": "And then?"}, {"role": "assistant", "content": "Breathe."}]
    ex = tokenize_conversation(tokenizer, conv)
    target = tokenizer.decode([t for t, label in zip(ex.input_ids, ex.labels) if label != IGNORE_INDEX])
    assert target == "That sounds hard. Answer 1.<|im_end|>Breathe.<|im_end|>"


def test_packed_sequences_give_the_same_logits_as_alone(tokenizer, models_dir):
    model = load_base_model(DEFAULT_BASE_MODEL, models_dir).eval()
    examples, _ = tokenize_conversations(tokenizer, [conversation(i, i + 1) for i in range(3)], 512)
    batch = collate_rows(examples, [[0, 1, 2], [1]], tokenizer.pad_token_id)
    assert batch.n_padding > 0  # the second row is padded, and its padding is a block of its own
    with torch.no_grad():
        packed = model(input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False).logits
        offset = 0
        for ex in examples:
            alone = model(input_ids=torch.tensor([ex.input_ids]), use_cache=False).logits[0]
            torch.testing.assert_close(packed[0, offset:offset + len(ex)], alone, atol=1e-5, rtol=1e-4)
            offset += len(ex)
        # the control: without restarting positions the second sequence does see the first
        leaky = model(input_ids=batch.input_ids[:1], use_cache=False).logits[0]
        n0 = len(examples[0])
        alone1 = model(input_ids=torch.tensor([examples[1].input_ids]), use_cache=False).logits[0]
        assert (leaky[n0:n0 + len(examples[1])] - alone1).abs().max() > 1e-3
    # no label crosses a boundary: every sequence's first token is ignored
    starts = (batch.position_ids == 0)
    assert (batch.labels[starts] == IGNORE_INDEX).all()


def test_packing_fills_rows_without_splitting_sequences():
    lengths = [900, 600, 500, 400, 300, 100, 100, 50]
    rows = pack_examples(lengths, 1024)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in row) <= 1024 for row in rows)
    assert len(rows) == 3  # 2950 tokens need at least 3 rows of 1024
    with pytest.raises(ValueError):
        pack_examples([2000], 1024)


def test_epoch_order_is_a_function_of_seed_and_epoch(tokenizer):
    examples, _ = tokenize_conversations(tokenizer, [conversation(i, i % 4 + 1) for i in range(12)], 128)
    a = epoch_batches(examples, 128, 2, seed=1, epoch=0)
    assert a == epoch_batches(examples, 128, 2, seed=1, epoch=0)
    assert a != epoch_batches(examples, 128, 2, seed=1, epoch=1)


def test_overlong_pairs_are_truncated_or_dropped_and_counted(tokenizer, tmp_path):
    convs = [conversation(0, 1), conversation(1, 60)]
    kept, stats = tokenize_conversations(tokenizer, convs, 64, "truncate")
    assert stats.rows_truncated == 1 and stats.rows_kept == 2 and max(len(e) for e in kept) == 64
    kept, stats = tokenize_conversations(tokenizer, convs, 64, "drop")
    assert stats.rows_dropped_overlong == 1 and stats.rows_kept == 1
    long_prompt = [{"role": "user", "content": "why " * 200}, {"role": "assistant", "content": "ok"}]
    kept, stats = tokenize_conversations(tokenizer, [long_prompt], 64, "truncate")
    assert kept == [] and stats.rows_dropped_overlong == 1  # nothing left to learn after truncation


def test_malformed_lines_are_counted_with_a_reason(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join([
        json.dumps({"messages": conversation(0)}),
        "{not json",
        json.dumps({"messages": [{"role": "user", "content": "hi"}]}),
        json.dumps({"messages": [{"role": "robot", "content": "hi"}]}),
    ]) + "\n")
    convs, stats = read_messages_jsonl([path])
    assert len(convs) == 1 and stats.rows_read == 4 and stats.rows_invalid == 3
    assert stats.invalid_reasons == {"invalid_json": 1, "no_assistant_content": 1, "bad_message": 1}
