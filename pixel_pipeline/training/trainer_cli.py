"""The trainer's command line: `python -m pixel_pipeline.training.trainer --config run.json` (that module calls
`main` here). Under Dagster Pipes the run config comes from the Pipes extras and the results go back as
materialization metadata and check verdicts; on its own it prints a short summary."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from pixel_pipeline.training.train_config import load_run_configs

DESCRIPTION = "A small, readable LoRA trainer (nanoGPT-style loop) for the staged adapters and the style experts."


def _pipes_requested() -> bool:
    return bool(os.environ.get("DAGSTER_PIPES_CONTEXT"))


def main(argv: list[str] | None = None) -> int:
    from pixel_pipeline.training.trainer import train  # here: the trainer module imports this one

    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument("--config", help="JSON file: one TrainingConfig or {'runs': [...]} (Pipes extras win)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    if _pipes_requested():
        from dagster_pipes import open_dagster_pipes

        from pixel_pipeline.training.reporting import report_to_pipes

        with open_dagster_pipes() as pipes:
            data = pipes.extras.get("trainer_config") or json.loads(Path(args.config).read_text())
            results = [train(c, log=pipes.log.info) for c in load_run_configs(data)]
            report_to_pipes(pipes, results, pipes.extras.get("report", {}))
        return 0
    if not args.config:
        parser.error("--config is required outside Dagster Pipes")
    results = [train(c) for c in load_run_configs(json.loads(Path(args.config).read_text()))]
    summary = [{k: r[k] for k in ("name", "adapter_path", "steps", "val_loss_initial", "val_loss_final",
                                  "tokens_per_second")} for r in results]
    print(json.dumps(summary, indent=1))
    return 0
