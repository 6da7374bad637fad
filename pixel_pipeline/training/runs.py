"""What each training asset asks the trainer to do (no Dagster import): which export folder a stage trains on,
when a stage has nothing of its own to train, the trainer run configs, and the `latest.json` pointers through which
each asset hands its adapter to the next."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pixel_pipeline.core.io import write_json
from pixel_pipeline.core.records import STAGE_ASSETS as _STAGE_ASSETS, STAGE_NAMES, STYLES
from pixel_pipeline.core.settings import PipelinePaths

STRATEGIES = ("staged", "mixed", "curriculum")
STAGE_ASSETS = tuple(_STAGE_ASSETS[n] for n in sorted(_STAGE_ASSETS))
STAGE_EXPORT_DIRS = {_STAGE_ASSETS[n]: STAGE_NAMES[n] for n in sorted(STAGE_NAMES)}
# Keys of the per-asset hyper-parameters that are the asset's own, not the trainer's.
NOT_TRAINER_FIELDS = ("expert_learning_rates", "styles")


# ------------------------------------------------------------------------------------------------- pointers
def pointer_path(paths: PipelinePaths, asset: str) -> Path:
    return paths.training_dir(asset) / "latest.json"


def read_pointer(paths: PipelinePaths, asset: str) -> dict[str, Any]:
    p = pointer_path(paths, asset)
    if not p.exists():
        raise FileNotFoundError(f"{asset} has not been trained yet ({p} missing): materialize it first")
    return json.loads(p.read_text())


def write_pointer(paths: PipelinePaths, asset: str, pointer: Mapping[str, Any]) -> None:
    write_json(dict(pointer), pointer_path(paths, asset))


def experts_pointer(root: Path, runs: list[dict[str, Any]], chaining: str) -> dict[str, Any]:
    """The experts' pointer: their common folder, the base they sit on, and each expert's adapter folder."""
    return {"adapter_path": str(root), "base_model": runs[0]["base_model"] if chaining == "continue"
            else str(root / runs[0]["name"] / "merged_base"),
            "experts": {r["name"]: str(root / r["name"] / "adapter") for r in runs}}


# ------------------------------------------------------------------------------------------------- stages
def check_strategy(strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")


def stage_export_folder(paths: PipelinePaths, asset: str, strategy: str) -> Path:
    """staged: the stage's own files; mixed / curriculum: the plan's files (trained in stage 1)."""
    if strategy == "staged":
        return paths.exports_dir / "stages" / STAGE_EXPORT_DIRS[asset]
    return paths.exports_dir / "plans" / strategy


def count_rows(path: Path) -> int:
    with open(path, encoding="utf-8") as fh:
        return sum(1 for line in fh if line.strip())


def has_no_pairs(train_file: Path) -> bool:
    """An export that exists but is empty (a missing one is an error the run config raises)."""
    return train_file.exists() and count_rows(train_file) == 0


def stage_skip_reason(strategy: str, chained: bool, train_file: Path) -> str | None:
    """Why a later stage has nothing of its own to train (None: it trains). Mixed / curriculum plans are trained
    whole in stage 1; an empty stage export trains nothing. Stage 1 always trains."""
    if strategy != "staged" and chained:
        return f"strategy={strategy}: all stages were trained together in lora_stage1_counseling"
    if chained and has_no_pairs(train_file):
        return f"{train_file} has no pairs (e.g. no corpus of this kind in PIXEL_DATA_DIR)"
    return None


def skipped_note(reason: str) -> str:
    return f"{reason}; the previous stage's adapter is carried over unchanged"


# ------------------------------------------------------------------------------------------------- run configs
def trainer_run(name: str, hyperparameters: Mapping[str, Any], runtime: Mapping[str, Any], train_files: Iterable,
                validation_files: Iterable, output_dir: Path, init: Mapping[str, Any] | None,
                **overrides) -> dict[str, Any]:
    """One trainer run config (a TrainingConfig as JSON). `hyperparameters` are the asset's Config fields,
    `runtime` the LoraTraining settings (base_model resolved, models_dir, trust_remote_code, chaining, dtype,
    device, cpu_threads, report_to); `init` the previous asset's pointer (None: a fresh adapter)."""
    train_files, validation_files = list(train_files), list(validation_files)
    missing = [str(f) for f in train_files if not Path(f).is_file()]
    if missing:
        raise FileNotFoundError(f"{name}: training data {missing} not found; materialize fine_tuning_exports first")
    fields = {k: v for k, v in hyperparameters.items() if k not in NOT_TRAINER_FIELDS}
    # After stage 1, the base is the one the previous adapter was trained on (continue), or that base with the
    # previous adapter merged in by the trainer (merge: the chain's base grows stage by stage).
    base_model = init["base_model"] if init else runtime["base_model"]
    return {
        **fields,
        "name": name,
        "train_files": [str(f) for f in train_files],
        "validation_files": [str(f) for f in validation_files if Path(f).exists()],
        "output_dir": str(output_dir),
        "base_model": base_model,
        "models_dir": str(runtime["models_dir"]),
        "trust_remote_code": runtime["trust_remote_code"],
        "init_adapter": init["adapter_path"] if init else None,
        "chaining": runtime["chaining"],
        "dtype": runtime["dtype"],
        "device": runtime["device"],
        "cpu_threads": runtime["cpu_threads"],
        "report_to": list(runtime["report_to"]),
        **overrides,
    }


def expert_runs(hyperparameters: Mapping[str, Any], runtime: Mapping[str, Any], exports_dir: Path, root: Path,
                init: Mapping[str, Any]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """One run per requested style with training pairs (each at its own learning rate), and why the others are
    skipped. No expert with pairs is an error: the asset would train nothing."""
    runs, skipped = [], {}
    for style in hyperparameters["styles"]:
        if style not in STYLES:
            raise ValueError(f"unknown style {style!r}; expected {STYLES}")
        folder = exports_dir / "experts" / style
        if has_no_pairs(folder / "train.jsonl"):
            skipped[style] = f"{folder / 'train.jsonl'} has no pairs"
            continue
        learning_rate = hyperparameters["expert_learning_rates"].get(style, hyperparameters["learning_rate"])
        runs.append(trainer_run(style, hyperparameters, runtime, [folder / "train.jsonl"],
                                [folder / "validation.jsonl"], root / style, init, learning_rate=learning_rate))
    if not runs:
        raise ValueError(f"no expert has training pairs: {skipped}")
    return runs, skipped
