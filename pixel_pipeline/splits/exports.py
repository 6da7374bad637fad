"""Write every export a trainer reads from one `splits` table (layout in docs/CONTRACTS.md and docs/splits.md).

The whole folder is built next to `exports/` and swapped in at the end, so readers never see half an export and
files from an earlier configuration (say, a test split that was since turned off) do not linger.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from pixel_pipeline.core.io import swap_in_dir, write_json, write_jsonl, write_text
from pixel_pipeline.core.markdown import markdown_table
from pixel_pipeline.core.records import DATASET_SEGMENTS, STYLES, reason_key
from pixel_pipeline.splits import formats, plans, tokens, trainer_configs
from pixel_pipeline.splits.assign import SPLITS, STAGE_NAMES, augmented_mask
from pixel_pipeline.splits.system_prompts import SYSTEM_PROMPTS

LITGPT_SPLIT_NAMES = {"train": "train", "validation": "val", "test": "test"}
MANIFEST = "manifest.json"
REDACTED = "***"


@dataclass
class ExportResult:
    exports_dir: Path
    files: dict[str, dict[str, Any]]  # relative path -> rows, bytes, sha256
    counts: dict[str, Any]
    token_stats: dict[str, Any]
    mixed: dict[str, Any]
    lengths_by_dataset: dict[str, list[int]] = field(default_factory=dict)


def trainer_over_length_policy() -> str:
    """What happens to over-long pairs downstream, read from our trainer when it is installed."""
    try:
        from pixel_pipeline.training import data as training_data

        policies = getattr(training_data, "OVERLONG_POLICIES", None)
    except Exception:  # the trainer is optional for exports
        policies = None
    if policies:
        return (
            "flagged in metadata (exceeds_max_length) and kept; pixel_pipeline's trainer then applies its `overlong` "
            f"setting ({' or '.join(policies)}; it counts both)"
        )
    return "flagged in metadata (exceeds_max_length) and kept; the trainer decides"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_split_files(folder: Path, by_split: Mapping[str, Sequence[Mapping[str, Any]]], splits: Sequence[str]) -> None:
    for split in splits:
        write_jsonl(by_split.get(split, []), folder / f"{split}.jsonl")


def redact(text: str, secret: str | None) -> str:
    return text.replace(secret, REDACTED) if secret else text


def push_dataset_to_hub(
    dataset_dict, hub_repo_id: str, hub_token_env_var: str, hub_private: bool, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Push with the token read from the environment; the token never reaches logs, metadata or errors."""
    token = os.environ.get(hub_token_env_var, "")
    if not token:
        raise ValueError(f"hub_repo_id={hub_repo_id!r} is set but the environment variable {hub_token_env_var} is empty")
    log(f"pushing the dataset to the Hub as {hub_repo_id} (token from ${hub_token_env_var})")
    try:
        info = dataset_dict.push_to_hub(hub_repo_id, token=token, private=hub_private)
    except Exception as exc:  # re-raise without the original traceback, which may quote the token
        raise RuntimeError(f"push_to_hub to {hub_repo_id} failed: {redact(f'{type(exc).__name__}: {exc}', token)}") from None
    commit = getattr(info, "oid", None) or getattr(info, "commit_url", None)
    return {"repo_id": hub_repo_id, "private": hub_private, "token_env_var": hub_token_env_var,
            "commit": redact(str(commit), token) if commit else None}


def write_exports(
    table: pd.DataFrame,
    exports_dir: Path,
    rejected: Sequence[Mapping[str, Any]],
    tokenizer,
    *,
    base_model: str,
    max_seq_length: int = 1024,
    include_system_prompt: bool = True,
    conversation_turns: str = formats.DEFAULT_CONVERSATION_TURNS,
    mixed_weights: Mapping[str, float] = plans.DEFAULT_MIXED_WEIGHTS,
    mixed_stopping_strategy: str = "first_exhausted",
    seed: int = 42,
    stage_epochs: Sequence[int] = plans.DEFAULT_STAGE_EPOCHS,
    stage_learning_rates: Sequence[float] = plans.DEFAULT_STAGE_LEARNING_RATES,
    config: Mapping[str, Any] | None = None,
    card_extra: Mapping[str, Any] | None = None,
    voice: Mapping[str, Any] | None = None,
) -> ExportResult:
    """Build every export under a temporary folder and swap it in as `exports_dir` (`voice`: the resolved voice
    sources, core.records.VoiceChoice.to_dict(), reported in the manifest and the card)."""
    exports_dir = Path(exports_dir)
    exports_dir.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=f".{exports_dir.name}.", dir=exports_dir.parent))
    try:
        result = _build(
            table, build, rejected, tokenizer, base_model=base_model, max_seq_length=max_seq_length,
            include_system_prompt=include_system_prompt, conversation_turns=conversation_turns,
            mixed_weights=mixed_weights,
            mixed_stopping_strategy=mixed_stopping_strategy, seed=seed, stage_epochs=stage_epochs,
            stage_learning_rates=stage_learning_rates, config=dict(config or {}), card_extra=dict(card_extra or {}),
            voice=dict(voice or {}),
        )
        swap_in_dir(build, exports_dir)  # exports/ is never missing while it is replaced
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    result.exports_dir = exports_dir
    return result


def _build(
    table: pd.DataFrame, out: Path, rejected: Sequence[Mapping[str, Any]], tokenizer, *, base_model: str,
    max_seq_length: int, include_system_prompt: bool, conversation_turns: str, mixed_weights: Mapping[str, float], mixed_stopping_strategy: str,
    seed: int, stage_epochs: Sequence[int], stage_learning_rates: Sequence[float], config: dict[str, Any],
    card_extra: dict[str, Any], voice: dict[str, Any],
) -> ExportResult:
    aug = augmented_mask(table) if not table.empty else pd.Series(dtype=bool)
    # upsampled copies are training-only: in an evaluation split they would just repeat their original
    dropped_augmented = int((aug & (table["split"] != "train")).sum()) if not table.empty else 0
    rows_df = table[~(aug & (table["split"] != "train"))] if not table.empty else table
    rows = rows_df.to_dict("records")
    records = [formats.messages_record(r, include_system_prompt, conversation_turns) for r in rows]

    # token statistics with the base model's chat template
    lengths = tokens.sequence_lengths(tokenizer, [r["messages"] for r in records]) if records else []
    for rec, n in zip(records, lengths):
        rec["metadata"]["n_tokens"] = int(n)
        rec["metadata"]["exceeds_max_length"] = bool(n > max_seq_length)
    policy = trainer_over_length_policy()
    token_stats = tokens.token_statistics(
        lengths, [f"{r['metadata']['split']}/{r['metadata']['dataset']}" for r in records], max_seq_length, policy
    )
    token_stats["base_model"] = base_model
    lengths_by_dataset: dict[str, list[int]] = defaultdict(list)
    for rec, n in zip(records, lengths):
        lengths_by_dataset[rec["metadata"]["dataset"]].append(n)

    splits_present = [s for s in SPLITS if s in ("train", "validation") or any(r["metadata"]["split"] == s for r in records)]
    by_split: dict[str, list[dict[str, Any]]] = {s: [] for s in splits_present}
    conversation_by_split: dict[str, list[dict[str, Any]]] = {s: [] for s in splits_present}
    for row, rec in zip(rows, records):
        by_split[rec["metadata"]["split"]].append(rec)
    for split in splits_present:
        by_split[split] = plans.stable_order(by_split[split], seed, salt=f"split:{split}")
    row_of = {id(rec): row for row, rec in zip(rows, records)}
    for split in splits_present:
        conversation_by_split[split] = [formats.conversation_record(row_of[id(r)], r) for r in by_split[split]]

    # 1. messages (all datasets)
    _write_split_files(out / "messages", by_split, splits_present)
    # 2. LitGPT JSON folder: train.json / val.json (+ test.json)
    for split in splits_present:
        write_json([formats.litgpt_record(row_of[id(r)]) for r in by_split[split]],
                   out / "litgpt" / f"{LITGPT_SPLIT_NAMES[split]}.json")
    # 3. ShareGPT (+ LLaMA-Factory dataset_info.json)
    sharegpt = {s: [formats.sharegpt_record(r) for r in by_split[s]] for s in splits_present}
    _write_split_files(out / "sharegpt", sharegpt, splits_present)
    write_json(
        {
            f"pixel_{split}": {
                "file_name": f"{split}.jsonl",
                "formatting": "sharegpt",
                "columns": {"messages": "conversations", "system": "system"},
                "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"},
            }
            for split in splits_present
        },
        out / "sharegpt" / "dataset_info.json",
    )
    # 4. the seeds' standard conversation format
    _write_split_files(out / "conversations", conversation_by_split, splits_present)
    # 5. Hugging Face DatasetDict
    dataset_dict = build_dataset_dict(by_split)
    dataset_dict.save_to_disk(str(out / "hf_dataset"))

    # 6. per-stage and per-expert files
    stage_counts: dict[str, dict[str, int]] = {}
    for stage, name in STAGE_NAMES.items():
        subset = {s: [r for r in by_split[s] if r["metadata"]["stage"] == stage] for s in splits_present}
        _write_split_files(out / "stages" / name, subset, splits_present)
        stage_counts[name] = {s: len(v) for s, v in subset.items()}
    expert_counts: dict[str, dict[str, int]] = {}
    for style in STYLES:
        subset = {
            s: [r for r in by_split[s] if r["metadata"]["dataset"] == DATASET_SEGMENTS and r["metadata"]["style"] == style]
            for s in splits_present
        }
        _write_split_files(out / "experts" / style, subset, splits_present)
        expert_counts[style] = {s: len(v) for s, v in subset.items()}

    # 7. plans
    mixed_train, mixed = plans.mixed_sample(by_split["train"], mixed_weights, mixed_stopping_strategy, seed)
    mixed_splits = {"train": mixed_train}
    for split in splits_present[1:]:
        mixed_splits[split] = [r for r in by_split[split] if plans.pool_of(r)]
    _write_split_files(out / "plans" / "mixed", mixed_splits, splits_present)
    curriculum = {s: plans.curriculum_order(by_split[s], seed) for s in splits_present}
    _write_split_files(out / "plans" / "curriculum", curriculum, splits_present)
    plan_doc = {
        "default": "staged",
        "staged": plans.staged_plan(stage_epochs, stage_learning_rates),
        "mixed": {**mixed, "files": {s: f"plans/mixed/{s}.jsonl" for s in splits_present},
                  "validation_note": "evaluation splits are not sampled: all stage rows"},
        "curriculum": {"order": list(plans.CURRICULUM_ORDER), "files": {s: f"plans/curriculum/{s}.jsonl" for s in splits_present}},
        "experts": {style: {s: f"experts/{style}/{s}.jsonl" for s in splits_present} for style in STYLES},
        "system_prompts": SYSTEM_PROMPTS,
    }
    write_json(plan_doc, out / "plans" / "plans.json")

    # 8. token statistics, rejected records
    write_json(token_stats, out / "token_stats.json")
    write_jsonl(rejected, out / "rejected.jsonl")

    counted = [r for r in records if not r["metadata"].get("augmented")]
    counts = {
        "pairs": len(counted),
        "augmented_rows_in_train": sum(1 for r in records if r["metadata"].get("augmented")),
        "augmented_rows_dropped_from_evaluation_splits": dropped_augmented,
        "by_split": {s: len(v) for s, v in by_split.items()},
        "by_split_and_dataset": {
            s: dict(sorted(Counter(r["metadata"]["dataset"] for r in v).items())) for s, v in by_split.items()
        },
        "by_stage": stage_counts,
        "by_expert": expert_counts,
        "by_source": dict(Counter(str(r["metadata"]["source"]) for r in counted).most_common()),
        "crisis_flagged": sum(1 for r in counted if r["metadata"]["crisis_flags"]),
        "exceeding_max_length": token_stats["overall"].get("exceeding_max_length", 0),
        "rejected": len(rejected),
        "rejected_by_stage": dict(Counter(str(line["stage"]) for line in rejected)),
        "rejected_by_reason": dict(
            Counter(reason_key(reason) for line in rejected for reason in line["reasons"]).most_common()
        ),
        "segment_curation": segment_curation_counts(counted),
    }

    # 8b. configs for TRL, Axolotl, LLaMA-Factory and LitGPT over the stage / expert files
    trainer_configs.write_trainer_configs(out, base_model, max_seq_length, stage_epochs, stage_learning_rates)

    # 9. dataset card, then the manifest over every file
    write_text(dataset_card(counts, token_stats, mixed, splits_present, base_model, card_extra, conversation_turns, voice),
               out / "README.md")
    files = file_inventory(out)
    manifest = {
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "format_version": 1,
        "base_model": base_model,
        "max_seq_length": max_seq_length,
        "over_length_policy": policy,
        "counts": counts,
        "token_stats": {k: v for k, v in token_stats.items() if k != "histogram"},
        "plans": {"default": "staged", "mixed": mixed},
        "conversation_turns": conversation_turns,
        "voice_sources": voice,
        "config": config,
        "files": files,
    }
    write_json(manifest, out / MANIFEST)
    return ExportResult(out, files, counts, token_stats, mixed, dict(lengths_by_dataset))


def build_dataset_dict(by_split: Mapping[str, Sequence[Mapping[str, Any]]]):
    from datasets import Dataset, DatasetDict

    features = formats.hf_features()
    out = {}
    for split, recs in by_split.items():
        rows = [formats.hf_row(r) for r in recs]
        out[split] = Dataset.from_dict({k: [row[k] for row in rows] for k in features}, features=features)
    return DatasetDict(out)


def file_inventory(folder: Path) -> dict[str, dict[str, Any]]:
    """Every file under `folder` (except the manifest): lines for JSONL, samples for JSON lists, bytes, SHA-256."""
    inventory = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST):
        rel = path.relative_to(folder).as_posix()
        entry: dict[str, Any] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
        if path.suffix == ".jsonl":
            with open(path, encoding="utf-8") as fh:
                entry["rows"] = sum(1 for line in fh if line.strip())
        elif path.suffix == ".json" and rel.startswith("litgpt/"):
            entry["rows"] = len(json.loads(path.read_text(encoding="utf-8")))
        inventory[rel] = entry
    return inventory


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
