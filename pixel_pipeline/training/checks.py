"""Check verdicts and materialization metadata of the training assets, as plain data (no Dagster import).

The trainer's own checks (loss, adapter reload, chaining) are judged inside the trainer process
(`reporting.check_verdicts`) and come back through Pipes; this module holds the ones the assets build themselves: a
stage that carries the previous adapter on, the router's accuracy, and the evaluation's two checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pixel_pipeline.core.verdicts import ERROR, WARN, Verdict, json_value, md, path

CHECK_ROUTER_ACCURACY = "router_accuracy_above_floor"


# ------------------------------------------------------------------------------------------------- skipped stage
def skipped_stage_verdicts(checks: Iterable[str], note: str) -> list[Verdict]:
    """A stage that trains nothing passes its checks, saying why: the adapter it hands on was checked when trained."""
    return [Verdict(check_name, passed=True, metadata={"skipped": note}) for check_name in checks]


def skipped_stage_metadata(init: Mapping[str, Any], strategy: str, note: str) -> dict[str, Any]:
    return {"adapter_path": path(init["adapter_path"]), "base_model": init["base_model"], "strategy": strategy,
            "skipped_training": note}


# ------------------------------------------------------------------------------------------------- router
def router_verdict(report: Mapping[str, Any], floor: float) -> Verdict:
    """Validation accuracy at least `floor`; no validation prompts (accuracy None) fails."""
    accuracy = report["validation_accuracy"]
    return Verdict(
        CHECK_ROUTER_ACCURACY,
        passed=accuracy is not None and accuracy >= floor,
        # A warning, not an error: with questions a person would ask (issue 13) the prompts no longer carry the
        # style words the router used to learn, so on the sample it sits near chance; the experts still train and
        # the routed expert is still answerable. docs/prompts.md has its accuracy on real client questions.
        severity=WARN,
        description=f"router validation accuracy {accuracy} vs floor {floor} (chance 0.25)",
        metadata={"validation_accuracy": accuracy, "floor": floor, "validation_rows": report["validation_rows"]},
    )


def router_metadata(router_path: Path, embedding_model: str, report: Mapping[str, Any]) -> dict[str, Any]:
    from pixel_pipeline.core.plots import figure_to_markdown
    from pixel_pipeline.training.router import confusion_figure

    return {
        "router_path": path(router_path),
        "embedding_model": embedding_model,
        "dagster/row_count": report["train_rows"],
        "validation_rows": report["validation_rows"],
        "validation_accuracy": report["validation_accuracy"],
        "train_accuracy": report["train_accuracy"],
        "rows_per_style": json_value(report["rows_per_style"]),
        "confusion_matrix": md(report["confusion_markdown"] + "\n\n" +
                               figure_to_markdown(confusion_figure(report), "confusion matrix")),
    }


# ------------------------------------------------------------------------------------------------- evaluation
def evaluation_check_verdicts(verdicts: Sequence[Mapping[str, Any]]) -> list[Verdict]:
    """The evaluation's verdicts (`evaluation.evaluation_verdicts`, the shape evaluation.json keeps) as Verdicts,
    their facts under `details`."""
    return [Verdict(v["check_name"], passed=v["passed"], severity=WARN if v.get("severity") == "warn" else ERROR,
                    metadata={"details": json_value(v["metadata"])})
            for v in verdicts]


def evaluation_metadata(report: Mapping[str, Any], report_path: Path) -> dict[str, Any]:
    from pixel_pipeline.training import evaluation as ev

    drops = ev.stage_perplexity_drops(report["perplexity"])
    return {
        "base_model": report["base_model"],
        "report_path": path(report_path),
        "perplexity_stages": md(ev.perplexity_matrix_markdown(report["perplexity"], "stages")),
        "perplexity_experts": md(ev.perplexity_matrix_markdown(report["perplexity"], "experts")),
        "generations": md(ev.generations_markdown(report["generations"])),
        "voice_scores": md(ev.voice_markdown(report["voice_scores"])),
        "voice_references": report["voice_references"],
        "own_perplexity_drop": json_value({k: round(v["drop"], 4) for k, v in drops.items()}),
        "dagster/row_count": len(report["perplexity"]),
    }
