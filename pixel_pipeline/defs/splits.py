"""Dagster layer of the splits domain: `splits` (leakage-free, stable split assignment) and `fine_tuning_exports`.

The logic lives in pixel_pipeline.splits; this module reads the upstream tables, calls the domain, writes its files,
and hands the metadata and check verdicts it builds (pixel_pipeline.splits.checks) to Dagster.
"""

# No `from __future__ import annotations`: Dagster resolves the Config annotations at definition time.
import json
from dataclasses import asdict

import dagster as dg
from pydantic import Field

from pixel_pipeline.core.io import atomic_path, read_parquet, write_json
from pixel_pipeline.core.records import read_voice_choice, rejects_frame
from pixel_pipeline.defs.metadata import materialize_result
from pixel_pipeline.defs.resources import PixelStorage
from pixel_pipeline.defs.settings import keyword_defaults, settings_from
from pixel_pipeline.splits import accounting as acct
from pixel_pipeline.splits import checks, previous, sizes
from pixel_pipeline.splits.assign import SplitSettings, assign_splits
from pixel_pipeline.splits.exports import EXPORT_SETTINGS, write_exports
from pixel_pipeline.splits.hub import push_exports_to_hub
from pixel_pipeline.splits.reports import split_reports
from pixel_pipeline.splits.tokens import histogram_png

GROUP = "splits"
SPLIT_CONFIG_FILE = previous.SPLIT_CONFIG_FILE


# ---- splits --------------------------------------------------------------------------------------------------------
class SplitsConfig(dg.Config):
    validation_ratio: float = Field(
        SplitSettings.validation_ratio, description="Target share of rows in validation (whole split groups move).")
    test_ratio: float = Field(
        SplitSettings.test_ratio, description="Target share of rows in an optional test split (0 = no test split).")
    seed: int = Field(SplitSettings.seed, description="Seed of the group hash; changing it reshuffles every group.")
    min_validation_groups: int = Field(
        SplitSettings.min_validation_groups, description="Floor of validation split groups per expert and per dataset.")
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
        dg.AssetCheckSpec("row_accounting", asset="splits", blocking=True,
                          description="deduplicated_pairs rows = splits rows + reviewer-rejected rows."),
    ],
)
def splits(context: dg.AssetExecutionContext, config: SplitsConfig, storage: PixelStorage) -> dg.MaterializeResult:
    paths = storage.paths
    pairs = paths.read_table("deduplicated_pairs")
    verdicts_path = paths.table("review_verdicts")
    verdicts = read_parquet(verdicts_path) if verdicts_path.exists() else None
    voice = read_voice_choice(paths.voice_choice_file)  # resolved once by raw_segments: stage 3's sources
    params = previous.split_params(config.seed, config.validation_ratio, config.test_ratio)
    config_file = paths.report_dir("splits") / SPLIT_CONFIG_FILE
    kept_before, previous_note = previous.read_previous_assignments(
        config.keep_previous_assignments, paths.table("splits"), config_file, params
    )
    context.log.info("previous assignments: %s", previous_note)

    result = assign_splits(
        pairs, **asdict(settings_from(config, SplitSettings)),
        voice_sources=voice.sources, review_verdicts=verdicts, previous_assignments=kept_before,
    )
    reports = split_reports(result.splits, config.validation_ratio, config.test_ratio, config.ratio_tolerance)

    written = paths.write_outputs("splits", result.splits, rejects_frame(result.rejects),
                                  checks.splits_summary(config.model_dump(), voice, result, reports, previous_note))
    write_json(params, config_file)
    metadata = checks.splits_metadata(result, reports, table_path=written["path"],
                                      rejects_path=written["rejects_path"], report_path=written["report_path"],
                                      previous_note=previous_note)
    return materialize_result(metadata, checks.splits_verdicts(pairs, result, reports))


# ---- fine_tuning_exports -------------------------------------------------------------------------------------------
_EXPORTS = keyword_defaults(write_exports)  # the exports' knobs and their defaults are write_exports' keywords


class ExportsConfig(dg.Config):
    base_model: str = Field("", description="Model whose tokenizer and chat template measure sequence lengths; empty: "
                            "PIXEL_BASE_MODEL, else the embedded tiny Llama (the same resolution as training).")
    max_seq_length: int = Field(
        _EXPORTS["max_seq_length"], description="Pairs longer than this (in tokens) are flagged `exceeds_max_length`.")
    include_system_prompt: bool = Field(
        _EXPORTS["include_system_prompt"], description="Start each chat with the expert's (or general) system prompt.")
    conversation_turns: str = Field(
        _EXPORTS["conversation_turns"],
        description="all: every turn of multi-turn conversations (a trainer learns every therapist turn); pair: first "
                    "question + final answer (docs/CONTRACTS.md).",
    )
    mixed_weights: dict[str, float] = Field(
        default_factory=lambda: dict(_EXPORTS["mixed_weights"]),
        description="Sampling weights of the mixed plan over the pools counseling / reasoning / voice.",
    )
    mixed_stopping_strategy: str = Field(
        _EXPORTS["mixed_stopping_strategy"], description="first_exhausted: no repeats, large pools subsampled; all_exhausted: small pools repeated."
    )
    seed: int = Field(_EXPORTS["seed"], description="Seed of file order and of the mixed sample.")
    stage_epochs: list[int] = Field(default_factory=lambda: list(_EXPORTS["stage_epochs"]),
                                    description="Epochs per stage recorded in plans/plans.json.")
    stage_learning_rates: list[float] = Field(default_factory=lambda: list(_EXPORTS["stage_learning_rates"]),
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
        dg.AssetCheckSpec("chain_accounting", asset="fine_tuning_exports", blocking=True,
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
    voice = read_voice_choice(paths.voice_choice_file)
    ingestion = {name: read_parquet(p) if (p := paths.table(name)).exists() else None for name in acct.INGESTION_TABLES}

    result = write_exports(
        table, paths.exports_dir, rejected, tokenizer, base_model=base_model,
        **config.model_dump(include=set(EXPORT_SETTINGS)),
        # the token itself is never part of the config, only its variable name
        config={"fine_tuning_exports": config.model_dump(), "splits": splits_config},
        card_extra={"splits": splits_config}, voice=voice.to_dict(),
    )
    hub = push_exports_to_hub(paths.exports_dir / "hf_dataset", config.hub_repo_id, config.hub_token_env_var,
                              config.hub_private, log=context.log.info)
    message_files = sorted((paths.exports_dir / "messages").glob("*.jsonl"))
    report = acct.chain_accounting(ingestion, rejects, config.ingestion_stages, message_files, rejected)
    png_bytes = histogram_png(result.lengths_by_dataset, config.max_seq_length)

    report_dir = paths.report_dir("fine_tuning_exports")
    accounting_path = write_json(report, report_dir / "accounting.json")
    png = report_dir / "token_lengths.png"
    with atomic_path(png) as tmp:
        tmp.write_bytes(png_bytes)
    summary = checks.exports_summary(result, base_model=base_model, max_seq_length=config.max_seq_length,
                                     accounting_path=accounting_path, histogram_path=png, hub=hub, voice=voice)
    report_path = write_json(summary, report_dir / "summary.json")
    rule = settings_from(config, sizes.SizeRule)
    metadata = checks.exports_metadata(result, base_model=base_model, histogram_png=png_bytes, report_path=report_path)
    return materialize_result(
        metadata, checks.exports_verdicts(result, report, rejected, rule, voice.sources, config.max_seq_length)
    )


defs = dg.Definitions(assets=[splits, fine_tuning_exports])
