"""Every export loads with its consumer's own loader, and the files agree with each other and the manifest."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

import pytest

from pixel_pipeline.core.io import read_jsonl
from pixel_pipeline.core.records import STYLES, rejects_frame
from pixel_pipeline.splits import accounting as acct
from pixel_pipeline.splits.assign import assign_splits
from pixel_pipeline.splits.exports import write_exports
from pixel_pipeline.splits.hub import push_dataset_to_hub
from pixel_pipeline.testing.splits_corpus import VOICE_SOURCE, add_augmented_copies, build_corpus
from pixel_pipeline.splits.system_prompts import SYSTEM_PROMPTS
from pixel_pipeline.training.base_model import DEFAULT_BASE_MODEL, load_tokenizer

MAX_SEQ_LENGTH = 160  # small enough that some synthetic pairs exceed it


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return load_tokenizer(DEFAULT_BASE_MODEL, tmp_path_factory.getbasetemp() / "splits_base_model")


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tokenizer):
    corpus = build_corpus(n_transcripts=16, n_questions=10, n_cot=9)
    pairs = add_augmented_copies(corpus.tables["deduplicated_pairs"], style="practical")
    result = assign_splits(pairs, validation_ratio=0.2, test_ratio=0.1, seed=3, voice_sources=[VOICE_SOURCE],
                           review_verdicts=corpus.tables["review_verdicts"])
    out = tmp_path_factory.mktemp("out")
    corpus.rejects["splits"] = result.rejects
    rejected = [line for stage in corpus.rejects.values() for line in acct.rejected_lines(rejects_frame(stage))]
    export = write_exports(result.splits, out / "exports", rejected, tokenizer, base_model=DEFAULT_BASE_MODEL,
                           max_seq_length=MAX_SEQ_LENGTH, seed=3, config={"seed": 3})
    return {"corpus": corpus, "splits": result.splits, "dir": out / "exports", "result": export, "rejected": rejected}


def test_messages_load_with_datasets_json_loader(exported):
    from datasets import load_dataset

    d = exported["dir"] / "messages"
    ds = load_dataset("json", data_files={s: str(d / f"{s}.jsonl") for s in ("train", "validation", "test")})
    counted = exported["splits"]
    for split in ("validation", "test"):  # augmented copies are training-only
        expected = ((counted["split"] == split) & ~counted["augmented"]).sum()
        assert ds[split].num_rows == expected > 0
    assert ds["train"].num_rows == (counted["split"] == "train").sum()
    row = ds["validation"][0]
    assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
    meta_keys = set(row["metadata"])
    assert {"dataset", "stage", "expert", "style", "source", "file", "scores", "crisis_flags"} <= meta_keys
    assert {"quality", "alignment"} <= set(row["metadata"]["scores"])


def test_messages_follow_design_metadata(exported):
    for split in ("train", "validation", "test"):
        for rec in read_jsonl(exported["dir"] / "messages" / f"{split}.jsonl"):
            meta = rec["metadata"]
            id_key = "segment_id" if meta["dataset"] == "segments" else "record_id"
            assert meta[id_key] and ("record_id" if id_key == "segment_id" else "segment_id") not in meta
            assert meta["split"] == split
            system = rec["messages"][0]["content"]
            assert system == SYSTEM_PROMPTS[meta["style"] if meta["dataset"] == "segments" else "general"]


def test_trl_style_messages_render_with_the_chat_template(exported, tokenizer):
    """What TRL's SFTTrainer does with a `messages` column: apply the chat template, find the assistant turn."""
    records = read_jsonl(exported["dir"] / "messages" / "validation.jsonl")
    for rec in records:
        messages = rec["messages"]
        assert messages[-1]["role"] == "assistant" and all(m["content"].strip() for m in messages)
        assert [m["role"] for m in messages if m["role"] != "system"] == ["user", "assistant"]
        out = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True,
                                            return_assistant_tokens_mask=True)
        ids, mask = out["input_ids"], out["assistant_masks"]
        assert len(ids) == rec["metadata"]["n_tokens"]
        assistant_text = tokenizer.decode([t for t, m in zip(ids, mask) if m])
        assert messages[-1]["content"] in assistant_text
        assert rec["metadata"]["exceeds_max_length"] == (len(ids) > MAX_SEQ_LENGTH)


def test_token_lengths_match_our_trainer(exported, tokenizer):
    data = pytest.importorskip("pixel_pipeline.training.data")
    records = read_jsonl(exported["dir"] / "messages" / "train.jsonl")[:20]
    for rec in records:
        example = data.tokenize_conversation(tokenizer, rec["messages"])
        assert len(example.input_ids) == rec["metadata"]["n_tokens"]


def test_token_statistics_report_over_length_pairs(exported):
    stats = json.loads((exported["dir"] / "token_stats.json").read_text())
    records = [r for s in ("train", "validation", "test") for r in read_jsonl(exported["dir"] / "messages" / f"{s}.jsonl")]
    over = sum(r["metadata"]["exceeds_max_length"] for r in records)
    assert 0 < over < len(records)
    assert stats["overall"]["exceeding_max_length"] == over
    assert stats["max_seq_length"] == MAX_SEQ_LENGTH and stats["base_model"] == DEFAULT_BASE_MODEL
    assert sum(stats["histogram"]["counts"]) == len(records)
    assert "truncate" in stats["over_length_policy"]  # read from the trainer: it truncates (or drops) them


def test_litgpt_json_dir_has_the_schema_litgpt_requires(exported):
    """litgpt.data.JSON with a directory: train.json / val.json, each a list of dicts with str instruction/output."""
    d = exported["dir"] / "litgpt"
    for name, split in (("train", "train"), ("val", "validation"), ("test", "test")):
        data = json.loads((d / f"{name}.json").read_text(encoding="utf-8"))
        assert isinstance(data, list) and data
        for sample in data:
            assert isinstance(sample["instruction"], str) and sample["instruction"]
            assert isinstance(sample["output"], str) and sample["output"]
            assert isinstance(sample.get("input", ""), str)
        assert len(data) == len(read_jsonl(exported["dir"] / "messages" / f"{split}.jsonl"))
    # litgpt's Alpaca prompt style formats these keys without error
    sample = json.loads((d / "val.json").read_text())[0]
    alpaca = ("Below is an instruction that describes a task. Write a response that appropriately completes the "
              "request.\n\n### Instruction:\n{instruction}\n\n### Response:\n")
    assert sample["instruction"] in alpaca.format(**sample)


def test_sharegpt_loads_and_alternates_human_gpt(exported):
    from datasets import load_dataset

    d = exported["dir"] / "sharegpt"
    ds = load_dataset("json", data_files={"train": str(d / "train.jsonl")})["train"]
    assert ds.num_rows == len(read_jsonl(exported["dir"] / "messages" / "train.jsonl"))
    for row in ds.select(range(10)):
        assert [t["from"] for t in row["conversations"]] == ["human", "gpt"]
        assert row["system"]
    info = json.loads((d / "dataset_info.json").read_text())
    assert all((d / spec["file_name"]).exists() and spec["formatting"] == "sharegpt" for spec in info.values())


def test_standard_conversation_format_keeps_all_turns(exported):
    records = [r for s in ("train", "validation", "test")
               for r in read_jsonl(exported["dir"] / "conversations" / f"{s}.jsonl")]
    roles = {t["role"] for r in records for t in r["conversation"]}
    assert roles == {"client", "therapist"}
    multi = [r for r in records if r["metadata"]["dataset"] == "cot" and len(r["conversation"]) == 4]
    assert multi, "multi-turn reasoning conversations keep every turn"
    assert all("dataset" in r["metadata"] and "source" in r["metadata"] for r in records)


def test_hf_dataset_dict_loads_from_disk(exported):
    from datasets import load_from_disk

    dd = load_from_disk(str(exported["dir"] / "hf_dataset"))
    assert set(dd) == {"train", "validation", "test"}
    for split, ds in dd.items():
        assert ds.num_rows == len(read_jsonl(exported["dir"] / "messages" / f"{split}.jsonl"))
    row = dd["validation"][0]
    assert row["messages"][1]["role"] == "user" and row["dataset"] in {"segments", "counseling", "cot"}
    assert sum(dd["train"]["augmented"]) > 0


def test_stage_expert_and_plan_files(exported):
    d = exported["dir"]
    for stage, name in ((1, "stage1_counseling"), (2, "stage2_reasoning"), (3, "stage3_voice")):
        for split in ("train", "validation"):
            recs = read_jsonl(d / "stages" / name / f"{split}.jsonl")
            assert recs and {r["metadata"]["stage"] for r in recs} == {stage}
    for style in STYLES:
        recs = read_jsonl(d / "experts" / style / "validation.jsonl")
        assert recs and {r["metadata"]["style"] for r in recs} == {style}
    curriculum = [r["metadata"]["stage"] for r in read_jsonl(d / "plans" / "curriculum" / "train.jsonl")]
    assert curriculum == sorted(curriculum, key=[2, 1, 3].index) and set(curriculum) == {1, 2, 3}
    mixed = read_jsonl(d / "plans" / "mixed" / "train.jsonl")
    shares = Counter(r["metadata"]["stage"] for r in mixed)
    assert abs(shares[1] / len(mixed) - 0.6) < 0.05 and abs(shares[2] / len(mixed) - 0.2) < 0.05
    plans = json.loads((d / "plans" / "plans.json").read_text())
    assert [s["epochs"] for s in plans["staged"]] == [3, 2, 2]
    assert [s["learning_rate"] for s in plans["staged"]] == [2e-4, 1e-4, 5e-5]
    assert plans["mixed"]["repeated_rows"] == 0  # first_exhausted never repeats a row


def test_manifest_hashes_every_file_and_card_exists(exported):
    d = exported["dir"]
    manifest = json.loads((d / "manifest.json").read_text())
    files = {p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file() and p.name != "manifest.json"}
    assert set(manifest["files"]) == files
    for rel, entry in manifest["files"].items():
        assert hashlib.sha256((d / rel).read_bytes()).hexdigest() == entry["sha256"]
    assert manifest["files"]["messages/validation.jsonl"]["rows"] == manifest["counts"]["by_split"]["validation"]
    assert manifest["config"] == {"seed": 3}
    card = (d / "README.md").read_text()
    assert card.startswith("---\n") and "Known limitations" in card and "reviewer_rejected" in card


def test_rejected_jsonl_lists_every_reject(exported):
    lines = read_jsonl(exported["dir"] / "rejected.jsonl")
    assert len(lines) == len(exported["rejected"])
    for line in lines:
        assert {"dataset", "stage", "reasons"} <= set(line) and line["reasons"]
        assert ("segment_id" in line) != ("record_id" in line)


def test_accounting_holds_and_catches_a_lost_row(exported):
    corpus, d = exported["corpus"], exported["dir"]
    ingestion = [line for line in exported["rejected"] if line["stage"] in acct.DEFAULT_INGESTION_STAGES]
    ingestion_df = rejects_frame(
        [{**line, "segment_id": line.get("segment_id"), "record_id": line.get("record_id"), "details": "{}"}
         for line in ingestion]
    )
    tables = {name: corpus.tables[name] for name in acct.INGESTION_TABLES}
    inputs = acct.input_counts(tables, ingestion_df)
    exported_counts = acct.exported_counts(sorted((d / "messages").glob("*.jsonl")))
    report = acct.accounting(inputs, exported_counts, acct.rejected_counts(exported["rejected"]))
    assert all(r["balanced"] for r in report.values()), report
    assert report["segments"]["rows_in"] == report["segments"]["exported"] + report["segments"]["rejected"]

    lost = [line for line in exported["rejected"] if line["stage"] != "curated_segments"]
    report = acct.accounting(inputs, exported_counts, acct.rejected_counts(lost))
    assert not report["segments"]["balanced"] and report["segments"]["lost"] > 0
    assert report["segments"]["examples"][0]["rows_in"] == 1 and report["segments"]["examples"][0]["rejected"] == 0


def test_exports_replace_stale_files(tmp_path, tokenizer):
    pairs = build_corpus(n_transcripts=6, n_questions=4, n_cot=3).tables["deduplicated_pairs"]
    with_test = assign_splits(pairs, validation_ratio=0.3, test_ratio=0.3, seed=1).splits
    write_exports(with_test, tmp_path / "exports", [], tokenizer, base_model=DEFAULT_BASE_MODEL)
    assert (tmp_path / "exports" / "messages" / "test.jsonl").exists()
    without = assign_splits(pairs, validation_ratio=0.3, seed=1).splits
    write_exports(without, tmp_path / "exports", [], tokenizer, base_model=DEFAULT_BASE_MODEL)
    assert not (tmp_path / "exports" / "messages" / "test.jsonl").exists()
    assert not list(tmp_path.glob(".exports*"))  # no build folders left behind


class _FakeDatasetDict:
    def __init__(self, error: Exception | None = None):
        self.calls, self.error = [], error

    def push_to_hub(self, repo_id, token=None, private=None):
        self.calls.append({"repo_id": repo_id, "token": token, "private": private})
        if self.error:
            raise self.error
        return type("CommitInfo", (), {"oid": "abc123"})()


def test_push_to_hub_uses_the_env_token_and_never_reports_it(monkeypatch):
    secret = "hf_TOPSECRETtoken123"
    monkeypatch.setenv("PIXEL_HF_TOKEN", secret)
    logged: list[str] = []
    fake = _FakeDatasetDict()
    info = push_dataset_to_hub(fake, "me/pixel", "PIXEL_HF_TOKEN", True, log=logged.append)
    assert fake.calls == [{"repo_id": "me/pixel", "token": secret, "private": True}]
    assert secret not in json.dumps(info) and secret not in " ".join(logged)
    assert info["token_env_var"] == "PIXEL_HF_TOKEN" and info["commit"] == "abc123"

    failing = _FakeDatasetDict(error=ValueError(f"401 unauthorized for token {secret}"))
    with pytest.raises(RuntimeError) as err:
        push_dataset_to_hub(failing, "me/pixel", "PIXEL_HF_TOKEN", True, log=logged.append)
    assert secret not in str(err.value) and "***" in str(err.value) and err.value.__cause__ is None

    monkeypatch.delenv("PIXEL_HF_TOKEN")
    with pytest.raises(ValueError, match="PIXEL_HF_TOKEN"):
        push_dataset_to_hub(_FakeDatasetDict(), "me/pixel", "PIXEL_HF_TOKEN", True)


def test_mixed_all_exhausted_repeats_small_pools():
    from pixel_pipeline.splits.plans import mixed_sample

    def rec(stage, i):
        return {"messages": [{"role": "user", "content": f"q{stage}-{i}"}],
                "metadata": {"dataset": "x", "stage": stage, "segment_id": f"{stage}-{i}"}}

    records = [rec(1, i) for i in range(60)] + [rec(2, i) for i in range(5)] + [rec(3, i) for i in range(20)]
    sample, summary = mixed_sample(records, {"counseling": 0.6, "reasoning": 0.2, "voice": 0.2}, "all_exhausted", 1)
    assert summary["counts"] == {"counseling": 60, "reasoning": 20, "voice": 20} and summary["repeated_rows"] == 15
    sample, summary = mixed_sample(records, {"counseling": 0.6, "reasoning": 0.2, "voice": 0.2}, "first_exhausted", 1)
    assert summary["counts"] == {"counseling": 15, "reasoning": 5, "voice": 5}
    assert len({r["metadata"]["segment_id"] for r in sample}) == len(sample)
    sample, summary = mixed_sample([r for r in records if r["metadata"]["stage"] != 2], seed=1)
    assert summary["dropped_empty_pools"] == ["reasoning"] and summary["effective_weights"] == {"counseling": 0.75, "voice": 0.25}
    with pytest.raises(ValueError):
        mixed_sample(records, {"chitchat": 1.0})


def test_rejects_are_read_in_pipeline_order_and_checked_for_schema(tmp_path):
    import pandas as pd

    from pixel_pipeline.core.io import write_parquet
    from pixel_pipeline.core.records import reject_row

    write_parquet(rejects_frame([reject_row("segments", "b" * 16, "splits", ["reviewer_rejected"])]),
                  tmp_path / "splits.parquet")
    write_parquet(rejects_frame([reject_row("cot", "a" * 16, "cot_conversations", ["bad_json"], {"row": 3})]),
                  tmp_path / "cot_conversations.parquet")
    write_parquet(rejects_frame([]), tmp_path / "generated_prompts.parquet")
    lines = acct.rejected_lines(acct.read_all_rejects(tmp_path))
    assert [line["stage"] for line in lines] == ["cot_conversations", "splits"]
    assert lines[0] == {"dataset": "cot", "record_id": "a" * 16, "stage": "cot_conversations", "reasons": ["bad_json"],
                        "details": {"row": 3}, "source": None, "file": None}
    write_parquet(pd.DataFrame({"dataset": ["cot"], "why": ["?"]}), tmp_path / "broken.parquet")
    with pytest.raises(ValueError, match="broken.parquet"):
        acct.read_all_rejects(tmp_path)


def test_all_conversation_turns_option_keeps_multi_turn_chats(tmp_path, tokenizer):
    pairs = build_corpus(n_transcripts=3, n_questions=2, n_cot=6).tables["deduplicated_pairs"]
    table = assign_splits(pairs, validation_ratio=0.3, seed=2).splits
    write_exports(table, tmp_path / "exports", [], tokenizer, base_model=DEFAULT_BASE_MODEL, conversation_turns="all")
    records = [r for s in ("train", "validation") for r in read_jsonl(tmp_path / "exports" / "messages" / f"{s}.jsonl")]
    multi = [r for r in records if len(r["messages"]) > 3]
    assert multi and all(r["metadata"]["dataset"] == "cot" for r in multi)
    for rec in multi:
        assert [m["role"] for m in rec["messages"]] == ["system", "user", "assistant", "user", "assistant"]
        ids = tokenizer.apply_chat_template(rec["messages"], tokenize=True, return_dict=True)["input_ids"]
        assert len(ids) == rec["metadata"]["n_tokens"]
    sharegpt = read_jsonl(tmp_path / "exports" / "sharegpt" / "train.jsonl")
    assert any(len(r["conversations"]) == 4 for r in sharegpt)
    litgpt = json.loads((tmp_path / "exports" / "litgpt" / "train.json").read_text())
    assert all(set(s) == {"instruction", "input", "output"} for s in litgpt)  # LitGPT JSON stays single-turn
    with pytest.raises(ValueError, match="conversation_turns"):
        write_exports(table, tmp_path / "other", [], tokenizer, base_model=DEFAULT_BASE_MODEL, conversation_turns="x")


def test_the_card_counts_what_curation_did_to_the_segment_responses():
    from pixel_pipeline.splits.card import segment_curation_counts

    meta = lambda **m: {"metadata": {"dataset": "segments", "scores": {"quality_classifier": m.pop("p")}, **m}}
    counted = [meta(p=0.1, generator="talk", shaping="1 phrase loop(s) collapsed"), meta(p=0.3, generator="concept_fallback"),
               meta(p=0.2, generator="concept_fallback"), {"metadata": {"dataset": "cot", "scores": {}}}]
    c = segment_curation_counts(counted)
    assert c == {"segment_pairs": 3, "responses_shaped": 1, "quality_classifier_median": 0.2, "quality_classifier_max": 0.3,
                 "questions_by_generator": {"concept_fallback": 2, "talk": 1}}


def test_rejected_jsonl_redacts_pii_in_the_snippets_of_raw_rows():
    from pixel_pipeline.core.records import reject_row

    raw = "Call me at 555-123-4567 or write to jane.doe@example.com about the session."
    lines = acct.rejected_lines(rejects_frame([reject_row("cot", "a" * 16, "cot_conversations", ["bad_json"],
                                                          {"raw": raw, "offending": {"turn_0": raw}})]))
    text = json.dumps(lines[0]["details"])
    assert "555-123-4567" not in text and "jane.doe@example.com" not in text
    assert "about the session" in text  # the rest of the snippet is still there to read
