"""The checks and metadata of the `splits` and `fine_tuning_exports` assets, as plain data (no Dagster).

Each check is a pure function of the reports the splits domain computes, so a test can hand it a tiny report and
read the verdict; defs/splits.py only reads, writes and hands these to Dagster (defs/metadata.py).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from pixel_pipeline.core.records import VoiceChoice
from pixel_pipeline.core.verdicts import WARN, Verdict, json_value, md, path, table
from pixel_pipeline.splits import sizes
from pixel_pipeline.splits.accounting import accounting_rows
from pixel_pipeline.splits.assign import SplitResult
from pixel_pipeline.splits.exports import ExportResult
from pixel_pipeline.splits.reports import counted_rows


# ---- splits --------------------------------------------------------------------------------------------------------
def leakage_verdict(leakage: Mapping[str, Mapping[str, Any]]) -> Verdict:
    """no_group_leakage: no grouping key (transcript, question, cluster, exact text) may sit in two splits."""
    leaking = {k: v["leaking_keys"] for k, v in leakage.items()}
    return Verdict(
        "no_group_leakage",
        passed=not any(leaking.values()),
        description="keys found in more than one split, per grouping key (all must be 0)",
        metadata={"leaking_keys": json_value(leaking),
                  "examples": json_value({k: v["examples"] for k, v in leakage.items()})},
    )


def expert_validation_verdict(coverage: Mapping[str, Any], strata_without_floor: Mapping[str, str]) -> Verdict:
    """every_expert_in_validation: an expert without validation rows cannot be measured (no data fails too)."""
    missing = coverage["experts_missing_in_validation"]
    return Verdict(
        "every_expert_in_validation",
        passed=not missing,
        description=("missing in validation: " + ", ".join(missing)) if missing else "every expert has validation rows",
        metadata={"validation_rows_per_expert": json_value(validation_rows_per_expert(coverage)),
                  "rows_per_stage_and_split": json_value(coverage["stages"]),
                  "strata_without_floor": json_value(strata_without_floor)},
    )


def ratio_verdict(ratios: Mapping[str, Any]) -> Verdict:
    """split_ratios_within_tolerance (a warning): whole groups move together, so shares only approach the targets."""
    return Verdict(
        "split_ratios_within_tolerance",
        passed=ratios["passed"],
        severity=WARN,
        description=f"row shares vs targets over {ratios['effective_groups']} effective groups",
        metadata={"splits": json_value(ratios["splits"])},
    )


def splits_accounting_verdict(rows_in: int, kept: int, rejected: int) -> Verdict:
    """row_accounting (splits): every counted pair is either in the splits table or reviewer-rejected."""
    return Verdict(
        "row_accounting",
        passed=rows_in == kept + rejected,
        description=f"{rows_in} pairs in = {kept} kept + {rejected} reviewer-rejected",
        metadata={"rows_in": rows_in, "kept": kept, "rejected": rejected},
    )


def splits_verdicts(pairs: pd.DataFrame, result: SplitResult, reports: Mapping[str, Any]) -> list[Verdict]:
    """The `splits` asset's four checks (`reports`: splits.reports.split_reports of the result's table)."""
    return [
        leakage_verdict(reports["leakage"]),
        expert_validation_verdict(reports["coverage"], result.report["strata_without_validation_floor"]),
        ratio_verdict(reports["ratios"]),
        splits_accounting_verdict(len(counted_rows(pairs)), len(counted_rows(result.splits)), len(result.rejects)),
    ]


def validation_rows_per_expert(coverage: Mapping[str, Any]) -> dict[str, int]:
    return {s: c["validation"] for s, c in coverage["experts"].items()}


def rows_by_dataset_and_split(counted: pd.DataFrame) -> pd.DataFrame:
    if counted.empty:
        return pd.DataFrame()
    return counted.groupby(["dataset", "split"]).size().unstack(fill_value=0).reset_index()


def rows_by_expert_and_split(coverage: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"expert": s, **c} for s, c in coverage["experts"].items()]


def rows_by_stage(counted: pd.DataFrame) -> pd.DataFrame:
    """Rows per training stage; segments of other channels train the experts only."""
    if counted.empty:
        return pd.DataFrame()
    stages = counted["stage"].astype("string").fillna("none (experts only)")
    return stages.value_counts().rename_axis("stage").reset_index()


def rows_per_split(counted: pd.DataFrame) -> dict[str, int]:
    return counted["split"].value_counts().to_dict() if not counted.empty else {}


def splits_summary(
    config: Mapping[str, Any], voice: VoiceChoice, result: SplitResult, reports: Mapping[str, Any], previous_note: str,
) -> dict[str, Any]:
    """reports/splits/summary.json: the config (fine_tuning_exports reads it for the dataset card), the voice choice,
    the assignment report (split groups, by rule, floor promotions, rows moved by merges), the leakage / ratio /
    coverage reports, the previous-assignments decision and the row counts the metadata shows as tables."""
    counted = counted_rows(result.splits)
    return {
        "config": dict(config),
        "voice": voice.to_dict(),
        "report": result.report,
        **reports,
        "previous_assignments": previous_note,
        "rows_per_split": rows_per_split(counted),
        "rows_by_dataset_and_split": rows_by_dataset_and_split(counted).to_dict("records"),
        "rows_by_stage": dict(rows_by_stage(counted).values.tolist()),
        "validation_rows_per_expert": validation_rows_per_expert(reports["coverage"]),
    }


def splits_metadata(
    result: SplitResult, reports: Mapping[str, Any], *, table_path: Path, rejects_path: Path, report_path: Path,
    previous_note: str,
) -> dict[str, Any]:
    """The asset's headline metadata; the rest (split groups and their rules, floor promotions, merges, voice, config,
    leakage / ratio / coverage reports) is in the report (`splits_summary`)."""
    counted = counted_rows(result.splits)
    return {
        "dagster/row_count": len(result.splits),
        "path": path(table_path),
        "rejects_path": path(rejects_path),
        "report_path": path(report_path),
        "reviewer_rejected": len(result.rejects),
        "rows_per_split": json_value(rows_per_split(counted)),
        "rows_by_dataset_and_split": table(rows_by_dataset_and_split(counted)),
        "rows_by_expert_and_split": table(rows_by_expert_and_split(reports["coverage"])),
        "rows_by_stage": table(rows_by_stage(counted)),
        "previous_assignments": previous_note,
    }


# ---- fine_tuning_exports -------------------------------------------------------------------------------------------
def chain_accounting_verdict(accounting: Mapping[str, Mapping[str, Any]]) -> Verdict:
    """chain_accounting: per dataset, rows in = exported + rejected, id by id (docs/CONTRACTS.md)."""
    broken = [d for d, r in accounting.items() if not r["balanced"]]
    return Verdict(
        "chain_accounting",
        passed=not broken,
        description="accounting broken for: " + ", ".join(broken) if broken
        else "rows in = exported + rejected for every dataset",
        metadata={"per_dataset": table(accounting_rows(accounting)),
                  "mismatched_examples": json_value({d: r["examples"] for d, r in accounting.items() if r["examples"]})},
    )


def training_sizes_verdict(counts: Mapping[str, Any], rule: sizes.SizeRule, causes: Mapping[str, str]) -> Verdict:
    """training_data_sizes: every stage and expert has its minimum train / validation pairs, else training is
    blocked and the description says where the rows went (`causes`: sizes.shortfall_causes)."""
    problems = sizes.size_problems(counts["by_stage"], counts["by_expert"], rule, causes)
    rows = rows_by_stage_and_expert(counts)
    return Verdict(
        "training_data_sizes",
        passed=not problems,
        description="every stage and expert has enough pairs to train" if not problems else
        f"training blocked (exports written): {'; '.join(problems)}",
        metadata={"problems": md("\n".join(f"- {p}" for p in problems) or "_none_"),
                  "sizes": table(rows), "rule": json_value(rule.as_dict())},
    )


def max_length_verdict(token_stats: Mapping[str, Any], max_seq_length: int) -> Verdict:
    """pairs_within_max_length (a warning): over-long pairs are kept and flagged; the trainer cuts or drops them."""
    over = token_stats["overall"].get("exceeding_max_length", 0)
    total = token_stats["overall"].get("rows", 0)
    return Verdict(
        "pairs_within_max_length",
        passed=over == 0,
        severity=WARN,
        description=f"{over} of {total} pairs exceed {max_seq_length} tokens: {token_stats['over_length_policy']}",
        metadata={"exceeding": over, "share": round(over / total, 4) if total else 0.0},
    )


def exports_verdicts(
    result: ExportResult, accounting: Mapping[str, Mapping[str, Any]], rejected: Sequence[Mapping[str, Any]],
    rule: sizes.SizeRule, voice_sources: Sequence[str], max_seq_length: int,
) -> list[Verdict]:
    """The `fine_tuning_exports` asset's three checks."""
    causes = sizes.shortfall_causes(result.counts, rejected, accounting, voice_sources)
    return [
        chain_accounting_verdict(accounting),
        training_sizes_verdict(result.counts, rule, causes),
        max_length_verdict(result.token_stats, max_seq_length),
    ]


def png_markdown(png_bytes: bytes, alt: str) -> str:
    """The image inline, so the Dagster UI shows it without a file server."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png_bytes).decode('ascii')})"


def rows_by_stage_and_expert(counts: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Exported pairs per split of each training stage, then of each style expert (one table)."""
    return [{"stage or expert": k, **v} for k, v in {**counts["by_stage"], **counts["by_expert"]}.items()]


def exports_summary(
    result: ExportResult, *, base_model: str, max_seq_length: int, accounting_path: Path, histogram_path: Path,
    hub: Mapping[str, Any], voice: VoiceChoice,
) -> dict[str, Any]:
    """reports/fine_tuning_exports/summary.json: what the metadata leaves out (file paths, counts per split and
    dataset / stage / expert, rejects per stage, the mixed plan, token statistics per group, the files with their
    hashes, the Hub push, the voice choice); the per-dataset accounting is in accounting.json beside it."""
    counts, stats, exports_dir = result.counts, result.token_stats, result.exports_dir
    return {
        "pairs": counts["pairs"],
        "exports_dir": str(exports_dir),
        "manifest": str(exports_dir / "manifest.json"),
        "messages_train": str(exports_dir / "messages" / "train.jsonl"),
        "rejected_jsonl": str(exports_dir / "rejected.jsonl"),
        "accounting": str(accounting_path),
        "token_histogram_png": str(histogram_path),
        "rows_per_split": counts["by_split"],
        "rows_by_split_and_dataset": counts["by_split_and_dataset"],
        "rows_by_stage": counts["by_stage"],
        "rows_by_expert": counts["by_expert"],
        "rejected": counts["rejected"],
        "rejected_by_stage": counts["rejected_by_stage"],
        "mixed_plan": result.mixed,
        "base_model": base_model,
        "max_seq_length": max_seq_length,
        "exceeding_max_length": stats["overall"].get("exceeding_max_length", 0),
        "over_length_policy": stats["over_length_policy"],
        "token_stats": stats["by_group"],
        "files": {f: {"rows": e.get("rows", ""), "sha256": e["sha256"]} for f, e in result.files.items()
                  if not f.startswith("hf_dataset/")},
        "hub": dict(hub),
        "voice_sources": list(voice.sources),
        "voice_choice": voice.describe(),
    }


def exports_metadata(
    result: ExportResult, *, base_model: str, histogram_png: bytes, report_path: Path,
) -> dict[str, Any]:
    """The asset's headline metadata; the rest is in the report (`exports_summary`) and accounting.json."""
    counts, exports_dir = result.counts, result.exports_dir
    return {
        "dagster/row_count": counts["pairs"],
        "exports_dir": path(exports_dir),
        "manifest": path(exports_dir / "manifest.json"),
        "report_path": path(report_path),
        "rows_per_split": json_value(counts["by_split"]),
        "rows_by_stage_and_expert": table(rows_by_stage_and_expert(counts)),
        "rejected": counts["rejected"],
        "exceeding_max_length": result.token_stats["overall"].get("exceeding_max_length", 0),
        "base_model": base_model,
        "token_length_histogram": md(png_markdown(histogram_png, "tokens per pair")),
    }
