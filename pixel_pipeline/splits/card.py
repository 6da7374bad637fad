"""README.md of the exports in Hugging Face dataset-card form, and the curation counts it shows."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from pixel_pipeline.core.markdown import markdown_table


def _splits_line(cfg: Mapping[str, Any]) -> str:
    keys = ("validation_ratio", "test_ratio", "seed", "min_validation_groups", "voice_sources")
    shown = [f"`{k}` = {json.dumps(cfg[k], ensure_ascii=False)}" for k in keys if k in cfg]
    return ("Settings: " + ", ".join(shown) + ".") if shown else ""


def _voice_line(voice: Mapping[str, Any]) -> str:
    """Which sources form stage 3 and how they were chosen (set, or detected in the corpus)."""
    if not voice:
        return "Voice sources: not recorded."
    sources = ", ".join(f"`{s}`" for s in voice.get("sources", [])) or "none"
    return f"Stage 3 is trained on the educator's own channel: {sources} ({voice.get('origin', '')})."


def _segment_curation_lines(c: Mapping[str, Any]) -> str:
    if not c.get("segment_pairs"):
        return "No segment pairs."
    by_gen = ", ".join(f"{g}: {n}" for g, n in c["questions_by_generator"].items())
    return (f"- {c['responses_shaped']} of {c['segment_pairs']} responses were shaped (channel talk, loops, garbled or "
            "caption passages, partial sentences cut); `metadata.shaping` says what was cut.\n"
            f"- Quality classifier P(a careful reader rejects it), kept pairs: median {c['quality_classifier_median']}, "
            f"max {c['quality_classifier_max']} (`metadata.scores.quality_classifier`).\n"
            f"- Questions by source (`metadata.generator`): {by_gen}. `concept_fallback` questions are general "
            "concept questions the response's opening is not checked against: filter them out for the strictest set.")


def segment_curation_counts(counted: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What curation and prompt generation did to the exported segment pairs: responses shaped, the quality
    classifier's P(reader rejects), where the questions came from (the dataset card shows it)."""
    seg = [r["metadata"] for r in counted if r["metadata"]["dataset"] == "segments"]
    scores = sorted(m["scores"]["quality_classifier"] for m in seg if m["scores"].get("quality_classifier") is not None)
    return {
        "segment_pairs": len(seg),
        "responses_shaped": sum(1 for m in seg if m.get("shaping")),
        "quality_classifier_median": round(scores[len(scores) // 2], 4) if scores else None,
        "quality_classifier_max": round(scores[-1], 4) if scores else None,
        "questions_by_generator": dict(Counter(str(m.get("generator")) for m in seg).most_common()),
    }


def dataset_card(
    counts: Mapping[str, Any], token_stats: Mapping[str, Any], mixed: Mapping[str, Any], splits: Sequence[str],
    base_model: str, extra: Mapping[str, Any], conversation_turns: str = "pair", voice: Mapping[str, Any] | None = None,
) -> str:
    """README.md in Hugging Face dataset-card form: what is in here, where it came from, what was removed, caveats."""
    data_files = "\n".join(f"  - split: {s}\n    path: messages/{s}.jsonl" for s in splits)
    front = (
        "---\nlanguage:\n- en\ntask_categories:\n- text-generation\ntags:\n- mental-health\n- counseling\n- sft\n"
        f"configs:\n- config_name: default\n  data_files:\n{data_files}\n---\n"
    )
    datasets_rows = [
        [s] + [counts["by_split_and_dataset"].get(s, {}).get(d, 0) for d in ("segments", "counseling", "cot")]
        for s in splits
    ]
    stage_rows = [[name] + [c.get(s, 0) for s in splits] for name, c in counts["by_stage"].items()]
    expert_rows = [[style] + [c.get(s, 0) for s in splits] for style, c in counts["by_expert"].items()]
    source_rows = [[src, n] for src, n in list(counts["by_source"].items())[:15]]
    reason_rows = [[r, n] for r, n in list(counts["rejected_by_reason"].items())[:20]]
    stage_rej_rows = [[s, n] for s, n in counts["rejected_by_stage"].items()]
    overall = token_stats.get("overall", {})
    return f"""{front}
# pixel_pipeline fine-tuning data

Mental-health question / answer pairs for supervised fine-tuning: an educator's talk transcripts cut into segments
(each answered to a generated client question), public counseling conversations, and chain-of-thought counseling
conversations. Produced by `pixel_pipeline` (Dagster asset `fine_tuning_exports`).

## Files
- `messages/{{{",".join(splits)}}}.jsonl` — chat messages (system per expert, user, assistant) with metadata; TRL `SFTTrainer` / OpenAI format.
- `litgpt/` — `train.json` / `val.json` for `litgpt finetune --data JSON --data.json_path litgpt`.
- `sharegpt/` — ShareGPT (`conversations` with `from: human|gpt`) + `dataset_info.json` for LLaMA-Factory; also Axolotl.
- `conversations/` — standard client / therapist format with metadata.
- `hf_dataset/` — `datasets.load_from_disk` DatasetDict.
- `stages/`, `experts/`, `plans/` — staged (counseling → reasoning → voice), per-expert, mixed and curriculum sets; `plans/plans.json` describes them.
- `rejected.jsonl` — every dropped input record with its stage and reasons. `manifest.json` — counts, SHA-256 per file, configuration.

## Counts
Pairs: **{counts["pairs"]}** (plus {counts["augmented_rows_in_train"]} upsampled training copies). Rejected input records: **{counts["rejected"]}**.

{markdown_table(datasets_rows, ["split", "segments", "counseling", "cot"])}

Stages:

{markdown_table(stage_rows, ["stage", *splits])}

Experts (segments by style):

{markdown_table(expert_rows, ["expert", *splits])}

## The voice stage
{_voice_line(voice or {})}

## Segment responses and their questions
{_segment_curation_lines(counts.get("segment_curation") or {})}

## Sources (top 15)
{markdown_table(source_rows, ["source", "pairs"])}

## Filters: what was removed
By stage:

{markdown_table(stage_rej_rows, ["stage", "records"])}

By reason (top 20):

{markdown_table(reason_rows, ["reason", "records"])}

## Splits
Grouped (a transcript, a counseling question, a near-duplicate cluster and any exact repeat of a question or response
never straddle splits), stratified (every expert, dataset and stage has validation rows where it has two or more
groups), and stable: a split group's split is a seeded hash of its key and earlier assignments are kept, so adding
data never moves an existing row.
{_splits_line(extra.get("splits") or {})}

## Token lengths ({base_model})
Rendered with the base model's chat template: mean {overall.get("mean", "-")}, p95 {overall.get("p95", "-")},
max {overall.get("max", "-")} tokens; {overall.get("exceeding_max_length", 0)} pairs exceed `max_seq_length` =
{token_stats.get("max_seq_length")}: {token_stats.get("over_length_policy")}.

## Training plans
- staged (default): `stages/stage1_counseling` → `stage2_reasoning` → `stage3_voice` (epochs and learning rates in `plans/plans.json`).
- mixed (`plans/mixed`, {mixed.get("stopping_strategy")}): weights {mixed.get("effective_weights")}, rows {mixed.get("counts")}, {mixed.get("repeated_rows", 0)} repeated.
- curriculum (`plans/curriculum`): reasoning → counseling → voice.
- experts: `experts/<style>/` for the four style experts (all sources).

## Known limitations
- Prompts for transcript segments are generated (not real client questions); check `alignment` in the metadata.
- Crisis-related content is kept when supportive and flagged in `metadata.crisis_flags` ({counts["crisis_flagged"]} pairs);
  this data does not make a model a crisis service.
- PII is redacted by rules (typed placeholders); rules miss things — review before publishing.
- Speech-recognition errors and style labels from an embedding classifier remain imperfect.
- {"Multi-turn conversations keep every turn in `messages` and ShareGPT" if conversation_turns == "all" else
   "Multi-turn conversations are exported as their first client turn and final therapist turn in `messages`"}
  (`conversation_turns` = "{conversation_turns}"); `conversations/` keeps every turn, LitGPT is single-turn.
"""
