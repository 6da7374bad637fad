"""Write every export a trainer reads from one `splits` table (layout in docs/CONTRACTS.md and docs/splits.md).

The whole folder is built next to `exports/` and swapped in at the end, so readers never see half an export and
files from an earlier configuration (say, a test split that was since turned off) do not linger.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from pixel_pipeline.core.io import swap_in_dir, write_json, write_jsonl, write_text
from pixel_pipeline.core.records import DATASET_SEGMENTS, STYLES, reason_key
from pixel_pipeline.splits import formats, plans, tokens, trainer_configs
from pixel_pipeline.splits.assign import SPLITS, STAGE_NAMES, augmented_mask
from pixel_pipeline.splits.card import dataset_card, segment_curation_counts
from pixel_pipeline.splits.system_prompts import SYSTEM_PROMPTS

LITGPT_SPLIT_NAMES = {"train": "train", "validation": "val", "test": "test"}
MANIFEST = "manifest.json"
# write_exports' settings that an asset config carries under the same names
EXPORT_SETTINGS = (
    "max_seq_length", "include_system_prompt", "conversation_turns", "mixed_weights", "mixed_stopping_strategy", "seed",
    "stage_epochs", "stage_learning_rates",
)


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
    max_seq_length: int, include_system_prompt: bool, conversation_turns: str, mixed_weights: Mapping[str, float],
    mixed_stopping_strategy: str, seed: int, stage_epochs: Sequence[int], stage_learning_rates: Sequence[float],
    config: dict[str, Any], card_extra: dict[str, Any], voice: dict[str, Any],
) -> ExportResult:
    rows, dropped_augmented = exported_rows(table)
    records = [formats.messages_record(r, include_system_prompt, conversation_turns) for r in rows]
    token_stats, lengths_by_dataset = measure_tokens(records, tokenizer, max_seq_length, base_model)
    splits_present, by_split, row_of = order_by_split(rows, records, seed)

    write_chat_formats(out, by_split, row_of, splits_present)
    stage_counts, expert_counts = write_stage_and_expert_files(out, by_split, splits_present)
    mixed = write_plans(out, by_split, splits_present, mixed_weights, mixed_stopping_strategy, seed, stage_epochs,
                        stage_learning_rates)
    write_json(token_stats, out / "token_stats.json")
    write_jsonl(rejected, out / "rejected.jsonl")
    counts = export_counts(records, by_split, stage_counts, expert_counts, dropped_augmented, token_stats, rejected)
    trainer_configs.write_trainer_configs(out, base_model, max_seq_length, stage_epochs, stage_learning_rates)

    # the dataset card, then the manifest over every file
    write_text(dataset_card(counts, token_stats, mixed, splits_present, base_model, card_extra, conversation_turns, voice),
               out / "README.md")
    files = file_inventory(out)
    manifest = {
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "format_version": 1,
        "base_model": base_model,
        "max_seq_length": max_seq_length,
        "over_length_policy": token_stats["over_length_policy"],
        "counts": counts,
        "token_stats": {k: v for k, v in token_stats.items() if k != "histogram"},
        "plans": {"default": "staged", "mixed": mixed},
        "conversation_turns": conversation_turns,
        "voice_sources": voice,
        "config": config,
        "files": files,
    }
    write_json(manifest, out / MANIFEST)
    return ExportResult(out, files, counts, token_stats, mixed, lengths_by_dataset)


def exported_rows(table: pd.DataFrame) -> tuple[list[dict[str, Any]], int]:
    """(rows to export, augmented copies dropped): upsampled copies are training-only, in an evaluation split they
    would just repeat their original."""
    if table.empty:
        return table.to_dict("records"), 0
    evaluation_copy = augmented_mask(table) & (table["split"] != "train")
    return table[~evaluation_copy].to_dict("records"), int(evaluation_copy.sum())


def measure_tokens(
    records: list[dict[str, Any]], tokenizer, max_seq_length: int, base_model: str
) -> tuple[dict[str, Any], dict[str, list[int]]]:
    """(token statistics, lengths per dataset) with the base model's chat template; each record's metadata gets its
    `n_tokens` and `exceeds_max_length`."""
    lengths = tokens.sequence_lengths(tokenizer, [r["messages"] for r in records]) if records else []
    for rec, n in zip(records, lengths):
        rec["metadata"]["n_tokens"] = int(n)
        rec["metadata"]["exceeds_max_length"] = bool(n > max_seq_length)
    token_stats = tokens.token_statistics(
        lengths, [f"{r['metadata']['split']}/{r['metadata']['dataset']}" for r in records], max_seq_length,
        trainer_over_length_policy(),
    )
    token_stats["base_model"] = base_model
    lengths_by_dataset: dict[str, list[int]] = defaultdict(list)
    for rec, n in zip(records, lengths):
        lengths_by_dataset[rec["metadata"]["dataset"]].append(n)
    return token_stats, dict(lengths_by_dataset)


def order_by_split(
    rows: Sequence[dict[str, Any]], records: Sequence[dict[str, Any]], seed: int
) -> tuple[list[str], dict[str, list[dict[str, Any]]], dict[int, dict[str, Any]]]:
    """(splits written, records per split in their stable seeded order, table row per record id()): train and
    validation are always written, test only when it has rows."""
    splits_present = [s for s in SPLITS if s in ("train", "validation") or any(r["metadata"]["split"] == s for r in records)]
    by_split: dict[str, list[dict[str, Any]]] = {s: [] for s in splits_present}
    for rec in records:
        by_split[rec["metadata"]["split"]].append(rec)
    for split in splits_present:
        by_split[split] = plans.stable_order(by_split[split], seed, salt=f"split:{split}")
    row_of = {id(rec): row for row, rec in zip(rows, records)}
    return splits_present, by_split, row_of


def write_chat_formats(
    out: Path, by_split: Mapping[str, Sequence[dict[str, Any]]], row_of: Mapping[int, dict[str, Any]],
    splits_present: Sequence[str],
) -> None:
    """Every dataset in every format: messages, LitGPT, ShareGPT (+ LLaMA-Factory's dataset_info.json), the seeds'
    conversation format and the Hugging Face DatasetDict."""
    _write_split_files(out / "messages", by_split, splits_present)
    for split in splits_present:
        write_json([formats.litgpt_record(row_of[id(r)]) for r in by_split[split]],
                   out / "litgpt" / f"{LITGPT_SPLIT_NAMES[split]}.json")
    sharegpt = {s: [formats.sharegpt_record(r) for r in by_split[s]] for s in splits_present}
    _write_split_files(out / "sharegpt", sharegpt, splits_present)
    write_json({f"pixel_{split}": {"file_name": f"{split}.jsonl", **_LLAMA_FACTORY_ENTRY} for split in splits_present},
               out / "sharegpt" / "dataset_info.json")
    conversations = {s: [formats.conversation_record(row_of[id(r)], r) for r in by_split[s]] for s in splits_present}
    _write_split_files(out / "conversations", conversations, splits_present)
    build_dataset_dict(by_split).save_to_disk(str(out / "hf_dataset"))


_LLAMA_FACTORY_ENTRY = {
    "formatting": "sharegpt",
    "columns": {"messages": "conversations", "system": "system"},
    "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"},
}


def write_stage_and_expert_files(
    out: Path, by_split: Mapping[str, Sequence[dict[str, Any]]], splits_present: Sequence[str]
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    """stages/<stage>/ and experts/<style>/ files; returns the pairs per split of each stage and of each expert."""
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
    return stage_counts, expert_counts


def write_plans(
    out: Path, by_split: Mapping[str, Sequence[dict[str, Any]]], splits_present: Sequence[str],
    mixed_weights: Mapping[str, float], mixed_stopping_strategy: str, seed: int, stage_epochs: Sequence[int],
    stage_learning_rates: Sequence[float],
) -> dict[str, Any]:
    """plans/mixed, plans/curriculum and plans/plans.json; returns the mixed sample's report."""
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
    return mixed


def export_counts(
    records: Sequence[dict[str, Any]], by_split: Mapping[str, Sequence[dict[str, Any]]],
    stage_counts: dict[str, dict[str, int]], expert_counts: dict[str, dict[str, int]], dropped_augmented: int,
    token_stats: Mapping[str, Any], rejected: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The counts of the manifest, the card and the asset metadata (upsampled copies are not counted as pairs)."""
    counted = [r for r in records if not r["metadata"].get("augmented")]
    return {
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


