"""A synthetic upstream corpus with the contract's columns (docs/CONTRACTS.md), for tests and the benchmark.

It plays every upstream stage at once: the ingestion tables and their rejects, curation and dedup rejects, the
`deduplicated_pairs` table and reviewer verdicts, with each input record's fate decided by its index — so a corpus
of N transcripts is a strict prefix of a corpus of N + k transcripts, which is what the stability tests need.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pandas as pd

from pixel_pipeline.core.ids import content_id, record_id
from pixel_pipeline.core.io import write_json, write_parquet
from pixel_pipeline.core.records import (
    DATASET_COT,
    DATASET_COUNSELING,
    DATASET_SEGMENTS,
    EXPERT_INDEX,
    VoiceChoice,
    reject_row,
    rejects_frame,
)
from pixel_pipeline.core.settings import PipelinePaths

VOICE_SOURCE = "Synthetic Educator Channel"  # the voice source of the synthetic corpus
OTHER_SOURCE = "Other Wellness Channel"
TOPICS = ("anxiety", "grief", "boundaries", "shame", "sleep", "anger", "trauma", "loneliness", "burnout", "attachment")
# practical is deliberately rare: it appears only in transcripts whose index is a multiple of 7
COMMON_STYLES = ("therapeutic", "educational", "empathetic")
PAIR_COLUMNS = ["dataset", "segment_id", "record_id", "prompt", "response", "conversation", "style", "expert", "source",
                "file", "group_key", "quality", "alignment", "crisis_flags", "pii_counts", "dup_cluster"]


@dataclass
class Corpus:
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    rejects: dict[str, list[dict]] = field(default_factory=dict)

    def write(self, paths: PipelinePaths) -> None:
        for name, df in self.tables.items():
            write_parquet(df, paths.table(name))
        for stage, rows in self.rejects.items():
            write_parquet(rejects_frame(rows), paths.rejects(stage))
        voice = VoiceChoice((VOICE_SOURCE,), "synthetic corpus", {}, 0)
        write_json(voice.to_dict(), paths.voice_choice_file)  # what raw_segments would have resolved


def _segment_text(t: int, s: int) -> str:
    topic = TOPICS[(t + s) % len(TOPICS)]
    return (
        f"In talk {t}, part {s}, we look at {topic}. When {topic} shows up, notice what your body does first, "
        f"name the feeling, and remember that healing from {topic} takes time (note {t}-{s})."
    )


def build_corpus(
    n_transcripts: int = 12,
    segments_per_transcript: int = 6,
    n_questions: int = 10,
    answers_per_question: int = 3,
    n_cot: int = 8,
    with_verdicts: bool = True,
) -> Corpus:
    seg_rows, pair_rows, prompts = [], [], []
    rej: dict[str, list[dict]] = {s: [] for s in (
        "raw_segments", "counseling_conversations", "cot_conversations", "curated_segments",
        "curated_conversations", "deduplicated_pairs")}
    verdicts = []

    # ---- segments
    for t in range(n_transcripts):
        file = f"talk_{t:03d}.txt"
        source = VOICE_SOURCE if t % 2 == 0 else OTHER_SOURCE
        for s in range(segments_per_transcript):
            text = _segment_text(t, s)
            sid = content_id(text)
            style = "practical" if t % 7 == 0 and s % 2 == 0 else COMMON_STYLES[(t + s) % 3]
            fate = (t * segments_per_transcript + s) % 11
            if fate == 3:  # unreadable at ingestion
                rej["raw_segments"].append(reject_row(DATASET_SEGMENTS, sid, "raw_segments", ["empty_text"],
                                                      {"input_file": file}, source, file))
                continue
            seg_rows.append({"segment_id": sid, "text": text, "origin": "transcript", "input_file": f"transcripts/{file}",
                             "row_index": s, "file": file, "source": source, "style_given": None,
                             "confidence_given": None, "quality": 0.8, "quality_band": None,
                             "style_predicted": style, "style_confidence": 0.9, "style": style,
                             "expert": EXPERT_INDEX[style], "word_count": len(text.split())})
            if fate == 5:  # an exact repeat later in the file: shares the id, rejected at ingestion
                rej["raw_segments"].append(reject_row(DATASET_SEGMENTS, sid, "raw_segments", ["exact_duplicate"],
                                                      {"kept": sid}, source, file))
            if fate == 7:
                rej["curated_segments"].append(reject_row(DATASET_SEGMENTS, sid, "curated_segments", ["housekeeping"],
                                                          {"score": 0.9}, source, file))
                continue
            prompt = f"How do I deal with {TOPICS[(t + s) % len(TOPICS)]} (talk {t}, part {s})?"
            if fate == 9:
                rej["deduplicated_pairs"].append(reject_row(DATASET_SEGMENTS, sid, "deduplicated_pairs",
                                                            ["near_duplicate"], {"cluster": f"c{t}"}, source, file))
                continue
            pair_rows.append({
                "dataset": DATASET_SEGMENTS, "segment_id": sid, "record_id": None, "prompt": prompt, "response": text,
                "conversation": None, "style": style, "expert": EXPERT_INDEX[style], "source": source, "file": file,
                "group_key": file, "quality": 0.8, "alignment": 0.6, "crisis_flags": ["self_harm"] if fate == 1 else [],
                "pii_counts": "{}", "dup_cluster": None,
            })
            if fate == 2 and with_verdicts:
                verdicts.append({"dataset": DATASET_SEGMENTS, "segment_id": sid, "record_id": None,
                                 "verdict": "reject", "reviewer": "rev1", "note": "off-topic"})
            if fate == 4 and with_verdicts:
                verdicts.append({"dataset": DATASET_SEGMENTS, "segment_id": sid, "record_id": None,
                                 "verdict": "accept", "reviewer": "rev2", "note": None})
        prompts.append(t)

    # a semantic cluster whose kept members sit in two different transcripts: they must share a split
    clustered = [r for r in pair_rows if r["file"] in ("talk_001.txt", "talk_004.txt")]
    for r in clustered[:1] + [r for r in clustered if r["file"] == "talk_004.txt"][:1]:
        r["dup_cluster"] = "semantic-0001"

    # ---- counseling: several answers to the same question share a group key (question_id)
    conv_rows = {DATASET_COUNSELING: [], DATASET_COT: []}
    for q in range(n_questions):
        question = f"I keep feeling {TOPICS[q % len(TOPICS)]} about my family (question {q}). What should I do?"
        qid = content_id(question)
        for a in range(answers_per_question):
            answer = f"Answer {a} to question {q}: it makes sense to feel this way; try writing down what triggers it."
            turns = [{"role": "client", "content": question}, {"role": "therapist", "content": answer}]
            rid = record_id(turns)
            conversation = json.dumps({"conversation": turns, "metadata": {"source": "counseling.csv",
                                                                           "dataset": DATASET_COUNSELING}})
            conv_rows[DATASET_COUNSELING].append({
                "record_id": rid, "dataset": DATASET_COUNSELING, "question_id": qid, "prompt": question,
                "response": answer, "conversation": conversation, "n_turns": 2, "source": "counseling.csv",
                "input_file": "counseling/counseling.csv", "row_index": q * answers_per_question + a})
            if (q + a) % 5 == 4:
                rej["curated_conversations"].append(reject_row(DATASET_COUNSELING, rid, "curated_conversations",
                                                               ["harmful: stop medication"], {}, "counseling.csv"))
                continue
            pair_rows.append({
                "dataset": DATASET_COUNSELING, "segment_id": None, "record_id": rid, "prompt": question,
                "response": answer, "conversation": conversation, "style": None, "expert": None,
                "source": "counseling.csv", "file": None, "group_key": qid, "quality": None, "alignment": None,
                "crisis_flags": [], "pii_counts": "{}", "dup_cluster": None})
    rej["counseling_conversations"].append(
        reject_row(DATASET_COUNSELING, None, "counseling_conversations", ["missing Response"], {"row_index": 999},
                   "counseling.csv"))

    # ---- reasoning (CoT), some multi-turn
    for c in range(n_cot):
        question = f"Why do I feel {TOPICS[c % len(TOPICS)]} after talking to my boss (case {c})?"
        reasoning = f"Let me think step by step. First, case {c} describes a trigger. Therefore, name it and plan."
        turns = [{"role": "client", "content": question}, {"role": "therapist", "content": reasoning}]
        if c % 3 == 0:
            turns += [{"role": "client", "content": "And if it happens again?"},
                      {"role": "therapist", "content": f"Then use the plan from case {c} and breathe slowly."}]
        rid = record_id(turns)
        conversation = json.dumps({"conversation": turns, "metadata": {"source": "cot.jsonl", "dataset": DATASET_COT}})
        conv_rows[DATASET_COT].append({
            "record_id": rid, "dataset": DATASET_COT, "question_id": content_id(question), "prompt": question,
            "response": turns[-1]["content"], "conversation": conversation, "n_turns": len(turns),
            "source": "cot.jsonl", "input_file": "cot/cot.jsonl", "row_index": c})
        pair_rows.append({
            "dataset": DATASET_COT, "segment_id": None, "record_id": rid, "prompt": question,
            "response": turns[-1]["content"], "conversation": conversation, "style": None, "expert": None,
            "source": "cot.jsonl", "file": None, "group_key": rid, "quality": None, "alignment": None,
            "crisis_flags": [], "pii_counts": "{}", "dup_cluster": None})
        if c == 2 and with_verdicts:
            verdicts.append({"dataset": DATASET_COT, "segment_id": None, "record_id": rid,
                             "verdict": "Reject", "reviewer": "rev1", "note": "reasoning is wrong"})

    pairs = pd.DataFrame(pair_rows, columns=PAIR_COLUMNS)
    pairs["expert"] = pairs["expert"].astype("Int64")
    tables = {
        "raw_segments": pd.DataFrame(seg_rows),
        "counseling_conversations": pd.DataFrame(conv_rows[DATASET_COUNSELING]),
        "cot_conversations": pd.DataFrame(conv_rows[DATASET_COT]),
        "deduplicated_pairs": pairs,
        "review_verdicts": pd.DataFrame(verdicts, columns=["dataset", "segment_id", "record_id", "verdict",
                                                           "reviewer", "note"]),
    }
    return Corpus(tables=tables, rejects=rej)


def add_augmented_copies(pairs: pd.DataFrame, style: str = "practical", copies: int = 2) -> pd.DataFrame:
    """Curation's rebalance upsampling: extra prompts for the same segment, flagged `augmented`."""
    base = pairs.assign(augmented=False)
    extra = pairs[pairs["style"] == style]
    dup = [extra.assign(prompt=extra["prompt"] + f" (variant {k})", augmented=True) for k in range(1, copies + 1)]
    return pd.concat([base, *dup], ignore_index=True)
