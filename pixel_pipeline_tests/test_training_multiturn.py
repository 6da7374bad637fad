"""Multi-turn reasoning conversations reach the trainer whole: every turn exported by default, and the loss is taken
on every therapist turn, not on the final answer alone."""

from __future__ import annotations

import json

import pytest

from pixel_pipeline.core.records import DATASET_COT
from pixel_pipeline.splits import formats
from pixel_pipeline.training.base_model import DEFAULT_BASE_MODEL, load_tokenizer
from pixel_pipeline.training.data import IGNORE_INDEX, tokenize_conversation

TURNS = [{"role": "client", "content": "My sister stopped talking to me."},
         {"role": "therapist", "content": "That silence sounds painful. What happened before it?"},
         {"role": "client", "content": "I told her I could not lend her money again."},
         {"role": "therapist", "content": "Holding that limit was hard, and it protected you both."}]


def cot_row() -> dict:
    return {"dataset": DATASET_COT, "record_id": "c" * 16, "prompt": TURNS[0]["content"],
            "response": TURNS[-1]["content"], "conversation": json.dumps({"conversation": TURNS, "metadata": {}}),
            "stage": 2, "split": "train"}


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return load_tokenizer(DEFAULT_BASE_MODEL, tmp_path_factory.mktemp("models"))


def test_multi_turn_conversations_are_exported_with_every_turn_by_default():
    messages = formats.messages_record(cot_row())["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant"]
    assert [m["content"] for m in messages[1:]] == [t["content"] for t in TURNS]
    sharegpt = formats.sharegpt_record(formats.messages_record(cot_row()))
    assert [c["from"] for c in sharegpt["conversations"]] == ["human", "gpt", "human", "gpt"]
    # the single pair stays available on request
    assert len(formats.messages_record(cot_row(), conversation_turns="pair")["messages"]) == 3


def test_the_trainer_learns_every_therapist_turn_and_no_client_turn(tokenizer):
    ex = tokenize_conversation(tokenizer, formats.messages_record(cot_row())["messages"])
    learned = tokenizer.decode([t for t, label in zip(ex.input_ids, ex.labels) if label != IGNORE_INDEX])
    assert TURNS[1]["content"] in learned and TURNS[3]["content"] in learned
    assert TURNS[0]["content"] not in learned and TURNS[2]["content"] not in learned
