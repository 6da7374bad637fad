"""Dagster layer of the splits domain: `splits` (leakage-free, stable split assignment) and `fine_tuning_exports`.

The logic lives in pixel_pipeline.splits; this module reads the upstream tables, writes files, and turns the
reports into metadata and asset checks.
"""

# No `from __future__ import annotations`: Dagster resolves the Config annotations at definition time.
import base64
import json

import dagster as dg
import pandas as pd
from pydantic import Field

from pixel_pipeline.core.io import atomic_path, read_parquet, write_json, write_parquet
from pixel_pipeline.core.plots import bar_markdown
from pixel_pipeline.core.records import DATASET_SEGMENTS, read_voice_choice, rejects_frame
from pixel_pipeline.defs.metadata import json_metadata, md_table
from pixel_pipeline.defs.resources import PixelStorage
from pixel_pipeline.splits import accounting as acct
from pixel_pipeline.splits import formats, plans
from pixel_pipeline.splits import sizes
from pixel_pipeline.splits.assign import (
    assign_splits,
    augmented_mask,
    leakage_report,
    previous_assignments_from,
    ratio_report,
    validation_coverage,
)
from pixel_pipeline.splits.exports import push_dataset_to_hub, write_exports
from pixel_pipeline.splits.tokens import histogram_png

GROUP = "splits"
SPLIT_CONFIG_FILE = "split_config.json"


# ---- splits --------------------------------------------------------------------------------------------------------
class SplitsConfig(dg.Config):
    validation_ratio: float = Field(0.1, description="Target share of rows in validation (whole split groups move).")
    test_ratio: float = Field(0.0, description="Target share of rows in an optional test split (0 = no test split).")
    seed: int = Field(42, description="Seed of the group hash; changing it reshuffles every group.")
    min_validation_groups: int = Field(1, description="Floor of validation split groups per expert and per dataset.")
    ratio_tolerance: float = Field(
        0.05, description="Allowed |share - target| per split (widened to 3 sigma of the group-level sampling noise)."
    )
    keep_previous_assignments: bool = Field(
        True, description="Keep the split of every group already in the last `splits` table (same seed and ratios)."
    )


@dg.asset(
    group_name=GROUP,
    deps=["deduplicated_pairs", "review_verdicts"],
    kinds={"pandas", "parquet"},
    description="Kept pairs (minus reviewer rejects) with a grouped, stratified, stable split and a training stage.",
    check_specs=[
        dg.AssetCheckSpec("no_group_leakage", asset="splits", blocking=True,
                          description="No transcript, question, group key, near-duplicate cluster or exact response "
                                      "appears in two splits."),
        dg.AssetCheckSpec("every_expert_in_validation", asset="splits",
                          description="Each of the four style experts has validation rows."),
        dg.AssetCheckSpec("split_ratios_within_tolerance", asset="splits",
                          description="Row shares per split are within tolerance of the configured ratios."),
        dg.AssetCheckSpec("splits_accounting", asset="splits", blocking=True,
                          description="deduplicated_pairs rows = splits rows + reviewer-rejected rows."),
    ],
)
def splits(context: dg.AssetExecutionContext, config: SplitsConfig, storage: PixelStorage) -> dg.MaterializeResult:
    paths = storage.paths
    pairs = paths.read_table("deduplicated_pairs")
    verdicts_path = paths.table("review_verdicts")
    verdicts = read_parquet(verdicts_path) if verdicts_path.exists() else None

    voice = read_voice_choice(paths.voice_choice_file)  # resolved once by raw_segments: stage 3's sources
    split_params = {"seed": config.seed, "validation_ratio": config.validation_ratio, "test_ratio": config.test_ratio}
    config_file = paths.report_dir("splits") / SPLIT_CONFIG_FILE
    previous, previous_note = {}, "none (first run or keep_previous_assignments off)"
    if config.keep_previous_assignments and paths.table("splits").exists() and config_file.exists():
        if json.loads(config_file.read_text()) == split_params:
            previous = previous_assignments_from(read_parquet(paths.table("splits"), columns=["group_node", "split"]))
            previous_note = f"{len(previous)} groups kept from the previous splits table"
        else:
            previous_note = "ignored: seed or ratios changed since the previous splits table"
    context.log.info("previous assignments: %s", previous_note)

    result = assign_splits(
        pairs,
        validation_ratio=config.validation_ratio,
        test_ratio=config.test_ratio,
        seed=config.seed,
        min_validation_groups=config.min_validation_groups,
        voice_sources=voice.sources,
        review_verdicts=verdicts,
        previous_assignments=previous,
    )
    table = result.splits
    write_parquet(table, paths.table("splits"))
    write_parquet(rejects_frame(result.rejects), paths.rejects("splits"))
    write_json(split_params, config_file)
    leakage = leakage_report(table)
    ratios = ratio_report(table, config.validation_ratio, config.test_ratio, config.ratio_tolerance)
    coverage = validation_coverage(table)
    write_json({"config": config.model_dump(), "voice": voice.to_dict(), "report": result.report, "leakage": leakage, "ratios": ratios,
                "coverage": coverage}, paths.report_dir("splits") / "summary.json")

    counted = table[~augmented_mask(table)] if not table.empty else table
    pairs_counted = int((~augmented_mask(pairs)).sum()) if not pairs.empty else 0
    leaking = {k: v["leaking_keys"] for k, v in leakage.items()}
    by_dataset = (
        counted.groupby(["dataset", "split"]).size().unstack(fill_value=0).reset_index()
        if not counted.empty else pd.DataFrame()
    )
    expert_df = pd.DataFrame([{"expert": s, **c} for s, c in coverage["experts"].items()])
    stage_counts = (
        counted["stage"].astype("string").fillna("none (experts only)").value_counts().rename_axis("stage").reset_index()
        if not counted.empty else pd.DataFrame()
    )
    missing = coverage["experts_missing_in_validation"]
    checks = [
        dg.AssetCheckResult(
            check_name="no_group_leakage",
            passed=not any(leaking.values()),
            description="keys found in more than one split, per grouping key (all must be 0)",
            metadata={"leaking_keys": json_metadata(leaking), "examples": json_metadata({k: v["examples"] for k, v in leakage.items()})},
        ),
        dg.AssetCheckResult(
            check_name="every_expert_in_validation",
            passed=not missing,
            severity=dg.AssetCheckSeverity.ERROR,
            description=("missing in validation: " + ", ".join(missing)) if missing else "every expert has validation rows",
            metadata={"validation_rows_per_expert": json_metadata({s: c["validation"] for s, c in coverage["experts"].items()}),
                      "rows_per_stage_and_split": json_metadata(coverage["stages"]),
                      "strata_without_floor": json_metadata(result.report["strata_without_validation_floor"])},
        ),
        dg.AssetCheckResult(
            check_name="split_ratios_within_tolerance",
            passed=ratios["passed"],
            severity=dg.AssetCheckSeverity.WARN,
            description=f"row shares vs targets over {ratios['effective_groups']} effective groups",
            metadata={"splits": json_metadata(ratios["splits"])},
        ),
        dg.AssetCheckResult(
            check_name="splits_accounting",
            passed=pairs_counted == len(counted) + len(result.rejects),
            description=f"{pairs_counted} pairs in = {len(counted)} kept + {len(result.rejects)} reviewer-rejected",
            metadata={"rows_in": pairs_counted, "kept": len(counted), "rejected": len(result.rejects)},
        ),
    ]
    val_per_expert = {s: c["validation"] for s, c in coverage["experts"].items()}
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(table),
            "path": dg.MetadataValue.path(str(paths.table("splits"))),
            "rejects_path": dg.MetadataValue.path(str(paths.rejects("splits"))),
            "reviewer_rejected": len(result.rejects),
            "rows_per_split": json_metadata(counted["split"].value_counts().to_dict() if not counted.empty else {}),
            "rows_by_dataset_and_split": md_table(by_dataset),
            "rows_by_expert_and_split": md_table(expert_df),
            "rows_by_stage": md_table(stage_counts),
            "validation_rows_per_expert": dg.MetadataValue.md(bar_markdown(val_per_expert, "validation rows per expert")),
            "split_groups": result.report["split_groups"],
            "split_groups_by_rule": json_metadata(result.report["split_groups_by_rule"]),
            "floor_promotions": json_metadata(result.report["floor_promotions"]),
            "previous_assignments": previous_note,
            "voice_sources": json_metadata(list(voice.sources)),
            "voice_choice": voice.describe(),
            "rows_moved_by_merges": result.report["rows_moved_by_merges"],
            "config": json_metadata(config.model_dump()),
        },
        check_results=checks,
    )


# ---- fine_tuning_exports -------------------------------------------------------------------------------------------
class ExportsConfig(dg.Config):
    base_model: str = Field("", description="Model whose tokenizer and chat template measure sequence lengths; empty: "
                            "PIXEL_BASE_MODEL, else the embedded tiny Llama (the same resolution as training).")
    max_seq_length: int = Field(1024, description="Pairs longer than this (in tokens) are flagged `exceeds_max_length`.")
    include_system_prompt: bool = Field(True, description="Start each chat with the expert's (or general) system prompt.")
    conversation_turns: str = Field(
        formats.DEFAULT_CONVERSATION_TURNS,
        description="all: every turn of multi-turn conversations (a trainer learns every therapist turn); pair: first "
                    "question + final answer (docs/CONTRACTS.md).",
    )
    mixed_weights: dict[str, float] = Field(
        default_factory=lambda: dict(plans.DEFAULT_MIXED_WEIGHTS),
        description="Sampling weights of the mixed plan over the pools counseling / reasoning / voice.",
    )
    mixed_stopping_strategy: str = Field(
        "first_exhausted", description="first_exhausted: no repeats, large pools subsampled; all_exhausted: small pools repeated."
    )
    seed: int = Field(42, description="Seed of file order and of the mixed sample.")
    stage_epochs: list[int] = Field(default_factory=lambda: list(plans.DEFAULT_STAGE_EPOCHS),
                                    description="Epochs per stage recorded in plans/plans.json.")
    stage_learning_rates: list[float] = Field(default_factory=lambda: list(plans.DEFAULT_STAGE_LEARNING_RATES),
                                              description="Learning rates per stage recorded in plans/plans.json.")
    hub_repo_id: str = Field("", description="Hugging Face dataset repo to push the DatasetDict to (empty = no push).")
    hub_token_env_var: str = Field("HF_TOKEN", description="Environment variable holding the Hub token (never logged).")
    hub_private: bool = Field(True, description="Create the Hub repo as private.")
    ingestion_stages: list[str] = Field(
        default_factory=lambda: list(acct.DEFAULT_INGESTION_STAGES),
        description="Reject stages whose rows count as input rows in the accounting (ingestion's own rejects).",
    )
    min_stage_train: int = Field(sizes.SizeRule.min_stage_train, description="Blocks training: fewest train pairs per stage.")
    min_stage_validation: int = Field(sizes.SizeRule.min_stage_validation, description="Blocks training: fewest validation pairs per stage.")
    min_expert_train: int = Field(sizes.SizeRule.min_expert_train, description="Blocks training: fewest train pairs per expert.")
    min_expert_validation: int = Field(sizes.SizeRule.min_expert_validation, description="Blocks training: fewest validation pairs per expert.")


@dg.asset(
    group_name=GROUP,
    deps=[splits],
    kinds={"json", "huggingface"},
    description="Every training export under exports/: messages, LitGPT, ShareGPT, conversations, HF DatasetDict, "
                "stages, experts, plans, manifest, card, token statistics and rejected.jsonl.",
    check_specs=[
        dg.AssetCheckSpec("design_accounting", asset="fine_tuning_exports", blocking=True,
                          description="Per dataset: input rows = exported pairs + rejected records (docs/CONTRACTS.md)."),
        dg.AssetCheckSpec("pairs_within_max_length", asset="fine_tuning_exports",
                          description="Share of pairs longer than max_seq_length tokens (the trainer will cut them)."),
        dg.AssetCheckSpec("training_data_sizes", asset="fine_tuning_exports", blocking=True,
                          description="Every training stage and every expert has its minimum train and validation "
                                      "pairs; if not, training is blocked (the exports are still written) and the "
                                      "message says where the rows went."),
    ],
)
def fine_tuning_exports(
    context: dg.AssetExecutionContext, config: ExportsConfig, storage: PixelStorage
) -> dg.MaterializeResult:
    from pixel_pipeline.training.base_model import configured_base_model, load_tokenizer

    paths = storage.paths
    table = read_parquet(paths.table("splits"))
    rejects = acct.read_all_rejects(paths.output_dir / "rejects")
    rejected = acct.rejected_lines(rejects)
    base_model = configured_base_model(config.base_model)
    tokenizer = load_tokenizer(base_model, paths.models_dir)
    summary_path = paths.report_dir("splits") / "summary.json"
    splits_config = json.loads(summary_path.read_text()).get("config", {}) if summary_path.exists() else {}
    # the token itself is never part of the config, only its variable name
    safe_config = {"fine_tuning_exports": config.model_dump(), "splits": splits_config}
    voice = read_voice_choice(paths.voice_choice_file)
    result = write_exports(
        table,
        paths.exports_dir,
        rejected,
        tokenizer,
        base_model=base_model,
        max_seq_length=config.max_seq_length,
        include_system_prompt=config.include_system_prompt,
        conversation_turns=config.conversation_turns,
        mixed_weights=config.mixed_weights,
        mixed_stopping_strategy=config.mixed_stopping_strategy,
        seed=config.seed,
        stage_epochs=config.stage_epochs,
        stage_learning_rates=config.stage_learning_rates,
        config=safe_config,
        card_extra={"splits": splits_config},
        voice=voice.to_dict(),
    )
    hub = {"pushed": False}
    if config.hub_repo_id:
        from datasets import load_from_disk

        hub = {"pushed": True, **push_dataset_to_hub(
            load_from_disk(str(paths.exports_dir / "hf_dataset")), config.hub_repo_id, config.hub_token_env_var,
            config.hub_private, log=context.log.info,
        )}

    # accounting over the whole chain
    tables = {}
    for name in acct.INGESTION_TABLES:
        path = paths.table(name)
        tables[name] = read_parquet(path) if path.exists() else None
    ingestion_rejects = rejects[rejects["stage"].isin(config.ingestion_stages)]
    message_files = sorted((paths.exports_dir / "messages").glob("*.jsonl"))
    report = acct.accounting(
        acct.input_counts(tables, ingestion_rejects), acct.exported_counts(message_files), acct.rejected_counts(rejected)
    )
    write_json(report, paths.report_dir("fine_tuning_exports") / "accounting.json")
    balanced = all(r["balanced"] for r in report.values())
    acct_df = pd.DataFrame(
        [{"dataset": d, **{k: r[k] for k in ("rows_in", "exported", "rejected", "lost", "unexplained")}} for d, r in report.items()]
    )

    # token statistics
    stats = result.token_stats
    png = paths.report_dir("fine_tuning_exports") / "token_lengths.png"
    png_bytes = histogram_png(result.lengths_by_dataset, config.max_seq_length)
    with atomic_path(png) as tmp:
        tmp.write_bytes(png_bytes)
    over = stats["overall"].get("exceeding_max_length", 0)
    total = stats["overall"].get("rows", 0)
    token_rows = pd.DataFrame([{"group": g, **s} for g, s in stats["by_group"].items()])

    checks = [
        dg.AssetCheckResult(
            check_name="design_accounting",
            passed=balanced,
            description="rows in = exported + rejected for every dataset" if balanced
            else "accounting broken for: " + ", ".join(d for d, r in report.items() if not r["balanced"]),
            metadata={"per_dataset": md_table(acct_df),
                      "mismatched_examples": json_metadata({d: r["examples"] for d, r in report.items() if r["examples"]})},
        ),
        _sizes_check(config, result.counts, rejected, report, voice.sources),
        dg.AssetCheckResult(
            check_name="pairs_within_max_length",
            passed=over == 0,
            severity=dg.AssetCheckSeverity.WARN,
            description=f"{over} of {total} pairs exceed {config.max_seq_length} tokens: {stats['over_length_policy']}",
            metadata={"exceeding": over, "share": round(over / total, 4) if total else 0.0},
        ),
    ]
    counts = result.counts
    files_df = pd.DataFrame(
        [{"file": f, "rows": e.get("rows", ""), "sha256": e["sha256"][:12]} for f, e in result.files.items()
         if not f.startswith("hf_dataset/")]
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": counts["pairs"],
            "exports_dir": dg.MetadataValue.path(str(paths.exports_dir)),
            "manifest": dg.MetadataValue.path(str(paths.exports_dir / "manifest.json")),
            "messages_train": dg.MetadataValue.path(str(paths.exports_dir / "messages" / "train.jsonl")),
            "rejected_jsonl": dg.MetadataValue.path(str(paths.exports_dir / "rejected.jsonl")),
            "rows_per_split": json_metadata(counts["by_split"]),
            "rows_by_split_and_dataset": json_metadata(counts["by_split_and_dataset"]),
            "rows_by_stage": json_metadata(counts["by_stage"]),
            "rows_by_expert": json_metadata(counts["by_expert"]),
            "rejected": counts["rejected"],
            "rejected_by_stage": json_metadata(counts["rejected_by_stage"]),
            "mixed_plan": json_metadata(result.mixed),
            "base_model": base_model,
            "max_seq_length": config.max_seq_length,
            "exceeding_max_length": over,
            "over_length_policy": stats["over_length_policy"],
            "token_stats": md_table(token_rows),
            "token_length_histogram": dg.MetadataValue.md(
                f"![tokens per pair](data:image/png;base64,{base64.b64encode(png_bytes).decode('ascii')})"
            ),
            "token_histogram_png": dg.MetadataValue.path(str(png)),
            "files": md_table(files_df),
            "hub": json_metadata(hub),
            "accounting": md_table(acct_df),
            "voice_sources": json_metadata(list(voice.sources)),
            "voice_choice": voice.describe(),
        },
        check_results=checks,
    )


def _sizes_check(config: ExportsConfig, counts: dict, rejected: list, report: dict, voice_sources) -> dg.AssetCheckResult:
    """training_data_sizes: per stage and per expert, with the cause of a shortfall read from the accounting."""
    rule = sizes.SizeRule(config.min_stage_train, config.min_stage_validation, config.min_expert_train, config.min_expert_validation)
    causes = {
        stage: sizes.rejection_cause(rejected, dataset, report.get(dataset, {}).get("rows_in", 0))
        for stage, dataset in sizes.STAGE_DATASETS.items() if dataset != DATASET_SEGMENTS
    }
    voice_rejected = sum(1 for line in rejected if line.get("dataset") == DATASET_SEGMENTS and line.get("source") in voice_sources)
    exported_voice = sum(n for src, n in counts["by_source"].items() if src in voice_sources)
    causes["stage3_voice"] = (
        "no voice source (see raw_segments' voice_choice)" if not voice_sources else
        sizes.rejection_cause(rejected, DATASET_SEGMENTS, exported_voice + voice_rejected, list(voice_sources))
    )
    total_segments = sum(sum(c.values()) for c in counts["by_expert"].values())
    for style, c in counts["by_expert"].items():
        causes[style] = f"{sum(c.values())} of {total_segments} exported segment pairs have this style"
    problems = sizes.size_problems(counts["by_stage"], counts["by_expert"], rule, causes)
    table = [{"stage or expert": k, **{s: n for s, n in v.items()}} for k, v in {**counts["by_stage"], **counts["by_expert"]}.items()]
    return dg.AssetCheckResult(
        check_name="training_data_sizes",
        passed=not problems,
        description="every stage and expert has enough pairs to train" if not problems else
        f"training blocked (exports written): {'; '.join(problems)}",
        metadata={"problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems) or "_none_"),
                  "sizes": md_table(pd.DataFrame(table)), "rule": json_metadata(rule.as_dict())},
    )


defs = dg.Definitions(assets=[splits, fine_tuning_exports])
