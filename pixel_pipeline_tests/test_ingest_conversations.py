"""Counseling (Hub and local files) and chain-of-thought loading into the standard conversation format."""

from __future__ import annotations

import json

import datasets
import pandas as pd
import pytest

from pixel_pipeline.core.ids import content_id, record_id
from pixel_pipeline.ingest import conversations as conv

SETTINGS = conv.ConversationSettings()
Q = "I keep replaying an argument with my sister at night. What can I do?"
A1 = "It sounds like the argument still feels unresolved. Writing down what you wish you had said can help."
A2 = "A short wind-down routine without screens may help your body settle before sleep."


def rows_and_rejects(results, dataset="counseling", stage="counseling_conversations"):
    return conv.combine_conversation_results(results, dataset, stage)


def test_local_counseling_formats_load_alike(tmp_path):
    folder = tmp_path / "counseling"
    folder.mkdir()
    pd.DataFrame({"Context": [Q], "Response": [A1]}).to_csv(folder / "a.csv", index=False)
    (folder / "b.jsonl").write_text(json.dumps({"context": Q, "response": A2}) + "\n", encoding="utf-8")
    (folder / "c.json").write_text(json.dumps([{"Context": "How do I start therapy?", "Response": "Start by listing what you want help with."}]), encoding="utf-8")
    pd.DataFrame({"Context": ["Is it normal to cry a lot?"], "Response": ["Yes, crying is a healthy release."]}).to_parquet(folder / "d.parquet")
    (folder / "notes.txt").write_text("ignored: not a counseling format", encoding="utf-8")
    results, origin = conv.load_counseling(folder, tmp_path, SETTINGS)
    rows, rejects = rows_and_rejects(results)
    assert origin == "local files" and rejects.empty
    assert rows["input_file"].tolist() == ["counseling/a.csv", "counseling/b.jsonl", "counseling/c.json", "counseling/d.parquet"]
    first = json.loads(rows.iloc[0]["conversation"])
    assert first["conversation"] == [{"role": "client", "content": Q}, {"role": "therapist", "content": A1}]
    assert first["metadata"]["dataset"] == "counseling" and first["metadata"]["source"] == "a.csv"
    assert rows.iloc[0]["record_id"] == record_id(first["conversation"])
    # the same question with two answers: two records, one question_id (the split group key)
    assert rows.iloc[0]["question_id"] == rows.iloc[1]["question_id"] == content_id(Q)
    assert rows.iloc[0]["record_id"] != rows.iloc[1]["record_id"]


def test_bad_counseling_rows_and_files_are_rejected_with_reasons(tmp_path):
    folder = tmp_path / "counseling"
    folder.mkdir()
    pd.DataFrame({"Context": [Q, "", Q, "x" * 60_000, "Why?"], "Response": [A1, "Nothing asked.", A1, "too long question", "\x00\x01"]}).to_csv(folder / "a.csv", index=False)
    pd.DataFrame({"question": ["q"], "answer": ["a"]}).to_csv(folder / "b.csv", index=False)
    (folder / "c.json").write_text('{"Context": "not a list"', encoding="utf-8")
    results, _ = conv.load_counseling(folder, tmp_path, SETTINGS)
    rows, rejects = rows_and_rejects(results)
    assert len(rows) == 1
    reasons = {json.loads(d)["input_file"] + f"#{json.loads(d)['row_index']}": r for d, r in zip(rejects["details"], rejects["reasons"])}
    assert reasons["counseling/a.csv#1"] == ["empty_text: Context"]
    assert reasons["counseling/a.csv#2"][0].startswith("duplicate: same conversation as counseling/a.csv row 0")
    assert reasons["counseling/a.csv#3"] == ["too_long: Context has 60,000 characters > max_chars 50,000"]
    assert reasons["counseling/a.csv#4"] == ["binary_content: Response holds control characters"]
    assert reasons["counseling/b.csv#0"] == ["missing_column: Context", "missing_column: Response"]  # per row, not per file
    assert reasons["counseling/c.json#None"][0].startswith("invalid_file: not valid JSON")
    assert sum(r.rows_in for r in results) == len(rows) + len(rejects) == 7  # 5 + 1 csv rows + 1 unreadable file


def test_counseling_comes_from_the_hub_when_configured(tmp_path, monkeypatch):
    calls = []

    def fake_load_dataset(name, split=None, **kwargs):
        calls.append((name, split))
        return datasets.Dataset.from_dict({"Context": [Q, Q], "Response": [A1, A2]})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    (tmp_path / "counseling").mkdir()
    pd.DataFrame({"Context": ["local"], "Response": ["local answer"]}).to_csv(tmp_path / "counseling" / "a.csv", index=False)
    results, origin = conv.load_counseling(tmp_path / "counseling", tmp_path, SETTINGS, conv.DEFAULT_COUNSELING_HUB_ID, "train")
    rows, _ = rows_and_rejects(results)
    assert calls == [(conv.DEFAULT_COUNSELING_HUB_ID, "train")]
    assert origin == f"hub {conv.DEFAULT_COUNSELING_HUB_ID} (split train)"
    assert rows["source"].unique().tolist() == [conv.DEFAULT_COUNSELING_HUB_ID] and len(rows) == 2
    assert rows["input_file"].iloc[0] == f"hub:{conv.DEFAULT_COUNSELING_HUB_ID}[train]"


def test_unreachable_hub_falls_back_to_local_files_and_says_why(tmp_path, monkeypatch):
    def offline(name, split=None, **kwargs):
        raise ConnectionError("Couldn't reach 'Amod/mental_health_counseling_conversations' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    (tmp_path / "counseling").mkdir()
    pd.DataFrame({"Context": [Q], "Response": [A1]}).to_csv(tmp_path / "counseling" / "a.csv", index=False)
    messages = []
    results, origin = conv.load_counseling(tmp_path / "counseling", tmp_path, SETTINGS, conv.DEFAULT_COUNSELING_HUB_ID, logger=messages.append)
    rows, _ = rows_and_rejects(results)
    assert len(rows) == 1 and rows["input_file"].iloc[0] == "counseling/a.csv"
    assert origin.startswith("local files (hub Amod/mental_health_counseling_conversations unreachable: ConnectionError")
    assert "falling back to local files" in messages[0]


def test_cot_roles_are_normalised_and_system_prompts_kept_in_metadata(tmp_path):
    folder = tmp_path / "cot"
    folder.mkdir()
    records = [
        {"conversation": [{"role": "client", "content": "Why do I freeze?"}, {"role": "therapist", "content": "Reasoning: freezing is a survival response."}], "metadata": {"source": "cot_set", "quality_level": "high"}},
        {"messages": [{"role": "system", "content": "Think step by step."}, {"role": "User", "content": " Is numbness normal? "}, {"role": "assistant", "content": "Step 1: yes. Step 2: it fades."}]},
    ]
    (folder / "a.json").write_text(json.dumps(records), encoding="utf-8")
    sharegpt = {"conversations": [{"from": "human", "value": "Why overthink?"}, {"from": "gpt", "value": "It feels like control."}, {"from": "human", "value": "And?"}, {"from": "gpt", "value": "Notice the loop."}]}
    (folder / "b.jsonl").write_text(json.dumps(sharegpt) + "\n\n", encoding="utf-8")
    rows, rejects = rows_and_rejects(conv.load_cot(folder, tmp_path, SETTINGS), "cot", "cot_conversations")
    assert rejects.empty and len(rows) == 3
    second = json.loads(rows.iloc[1]["conversation"])
    assert second["conversation"] == [{"role": "client", "content": "Is numbness normal?"}, {"role": "therapist", "content": "Step 1: yes. Step 2: it fades."}]
    assert second["metadata"]["system_prompt"] == "Think step by step." and second["metadata"]["quality_level"] == "unrated"
    assert rows["source"].tolist() == ["cot_set", "a.json", "b.jsonl"]
    third = rows.iloc[2]
    assert third["n_turns"] == 4 and third["prompt"] == "Why overthink?" and third["response"] == "Notice the loop."


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"conversation": [{"role": "client", "content": "hi there"}, {"role": "narrator", "content": "odd"}]}, "unknown_role: turn 1 role 'narrator'"),
        ({"conversation": [{"role": "therapist", "content": "Hello, how are you?"}]}, "no_client_turn: the conversation never has a client/user turn"),
        ({"conversation": [{"role": "user", "content": "Help?"}]}, "no_final_therapist_turn: the conversation must end with a therapist/assistant turn"),
        ({"conversation": [{"role": "user", "content": "Help?"}, {"role": "assistant", "content": "  "}]}, "empty_text: turn 1 content"),
        ({"conversation": [{"role": "user", "content": 5}, {"role": "assistant", "content": "ok then"}]}, "wrong_type: turn 0 content is int, expected string"),
        ({"metadata": {}}, "missing_field: conversation (a non-empty list of turns)"),
        (["not", "an", "object"], "not_an_object: expected a JSON object, got list"),
    ],
)
def test_bad_cot_records_are_rejected(tmp_path, record, reason):
    folder = tmp_path / "cot"
    folder.mkdir()
    good = {"conversation": [{"role": "user", "content": "Why?"}, {"role": "assistant", "content": "Because."}]}
    (folder / "a.json").write_text(json.dumps([good, record]), encoding="utf-8")
    results = conv.load_cot(folder, tmp_path, SETTINGS)
    rows, rejects = rows_and_rejects(results, "cot", "cot_conversations")
    assert len(rows) == 1 and len(rejects) == 1 and results[0].rows_in == 2
    assert reason in rejects.iloc[0]["reasons"]


def test_cot_invalid_files_and_broken_jsonl_lines(tmp_path):
    folder = tmp_path / "cot"
    folder.mkdir()
    (folder / "a.json").write_text('{"conversation": []}', encoding="utf-8")
    good = {"conversation": [{"role": "user", "content": "Why?"}, {"role": "assistant", "content": "Because."}]}
    (folder / "b.jsonl").write_text(json.dumps(good) + "\n{oops\n", encoding="utf-8")
    results = conv.load_cot(folder, tmp_path, SETTINGS)
    rows, rejects = rows_and_rejects(results, "cot", "cot_conversations")
    assert results[0].file_error == "expected a JSON list of conversations, got a JSON dict"
    assert rejects.iloc[1]["reasons"] == ["invalid_json_line: line 2: Expecting property name enclosed in double quotes"]
    assert len(rows) == 1 and sum(r.rows_in for r in results) == 3
