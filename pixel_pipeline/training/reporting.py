"""Turn trainer results into materialization metadata and asset-check verdicts.

Plain functions (no Dagster import): the trainer calls them inside the Pipes session, so the same verdicts reach
Dagster whether the trainer ran as a local subprocess or in a Kubernetes pod. Verdicts and typed metadata values
are `core.verdicts`' plain data, whose typed values are Pipes' own wire shape.
"""

from __future__ import annotations

import math
from typing import Any

from pixel_pipeline.core.verdicts import ERROR, Verdict, json_value, md, path

# Check names (declared as AssetCheckSpecs in defs/training.py; the trainer reports the ones asked for).
CHECK_LOSS = "loss_finite_and_decreasing"
CHECK_STARTS_FROM_PREVIOUS = "starts_from_previous_stage"
CHECK_ADAPTER_LOADS = "adapter_loads_in_peft"
CHECK_VALIDATION_LOSS = "validation_loss_per_expert"


def _num(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and not math.isfinite(value)) else round(float(value), 6)


def loss_curve_markdown(results: list[dict[str, Any]]) -> str:
    from pixel_pipeline.core.plots import line_markdown

    curves = {}
    for r in results:
        prefix = f"{r['name']} " if len(results) > 1 else ""
        if r["train_curve"]:
            curves[f"{prefix}train"] = tuple(zip(*r["train_curve"]))
        if r["val_curve"]:
            curves[f"{prefix}validation"] = tuple(zip(*r["val_curve"]))
    return line_markdown(curves, "loss per optimizer step", "step", "loss (assistant tokens)")


# Per run, the headline numbers a user scans first. Everything else the trainer knows about the run (train loss,
# peak memory, MFU, the row accounting, resumes, the chaining facts, checkpoints, trackers, TensorBoard folder,
# learning rate) is in the run's result.json (`report_path`), written by the trainer beside the adapter.
HEADLINE_KEYS = ("val_loss_initial", "val_loss_final", "val_perplexity", "tokens_per_second")


def run_metadata(r: dict[str, Any]) -> dict[str, Any]:
    """One run's headline numbers and its report (result.json) path."""
    return {**{k: _num(r[k]) for k in HEADLINE_KEYS}, "steps": r["steps"], "report_path": path(r["report_path"])}


def summary_markdown(results: list[dict[str, Any]]) -> str:
    """One row per run (the experts): what each run's `run_metadata` holds for a single stage."""
    rows = ["| run | val loss start | val loss end | perplexity | tokens/s | steps | learning rate |",
            "|---|---|---|---|---|---|---|"]
    for r in results:
        rows.append(f"| {r['name']} | {_fmt(r['val_loss_initial'])} | {_fmt(r['val_loss_final'])} | "
                    f"{_fmt(r['val_perplexity'])} | {_fmt(r['tokens_per_second'], 0)} | {r['steps']} | "
                    f"{r['learning_rate']:g} |")
    return "\n".join(rows)


def materialization_metadata(results: list[dict[str, Any]], adapter_path: str | None = None) -> dict[str, Any]:
    """Metadata for one asset: one run (a stage: its headline numbers and `report_path`) or several (the experts:
    one summary table, each expert's adapter folder as `adapter_path_<name>` and its result.json in
    `report_paths`)."""
    first = results[0]
    meta: dict[str, Any] = {
        "adapter_path": path(adapter_path or first["adapter_path"]),
        "base_model": first["base_model"],
        "device": first["device"],
        "loss_curves": md(loss_curve_markdown(results)),
    }
    if len(results) == 1:
        meta.update(run_metadata(first))
    else:
        for r in results:
            meta[f"adapter_path_{r['name']}"] = path(r["adapter_path"])
        meta["summary"] = md(summary_markdown(results))
        meta["report_paths"] = json_value({r["name"]: r["report_path"] for r in results})
    return meta


def _fmt(x: float | None, digits: int = 4) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def check_verdicts(results: list[dict[str, Any]], checks: list[str]) -> list[Verdict]:
    """One verdict per requested check, over every run of the asset (all runs must pass)."""
    verdicts = []
    for name in checks:
        if name == CHECK_LOSS:
            per_run = {r["name"]: r["loss_check"] for r in results}
            passed = all(v["finite"] and v["decreasing"] for v in per_run.values())
        elif name == CHECK_STARTS_FROM_PREVIOUS:
            per_run = {r["name"]: r["init"] for r in results}
            passed = all(v.get("starts_from_previous") is True and v.get("previous_adapter_nonzero", True)
                         for v in per_run.values())
        elif name == CHECK_ADAPTER_LOADS:
            per_run = {r["name"]: r["adapter_reload"] for r in results}
            passed = all(v["loads"] and v["matches"] for v in per_run.values())
        elif name == CHECK_VALIDATION_LOSS:
            per_run = {r["name"]: {"val_loss_final": r["val_loss_final"], "validation_rows": r["validation_data"]["rows_kept"]}
                       for r in results}
            passed = all(v["val_loss_final"] is not None and math.isfinite(v["val_loss_final"]) for v in per_run.values())
        else:
            raise ValueError(f"unknown check {name!r}")
        verdicts.append(Verdict(name, passed=passed, severity=ERROR, metadata={"per_run": json_value(per_run)}))
    return verdicts


def report_to_pipes(pipes, results: list[dict[str, Any]], options: dict[str, Any]) -> None:
    # the data version is the runs' fingerprints: config + data bytes + starting adapter
    version = "-".join(r["fingerprint"] for r in results)
    pipes.report_asset_materialization(metadata=materialization_metadata(results, options.get("adapter_path")),
                                       data_version=version)
    for v in check_verdicts(results, list(options.get("checks", []))):
        pipes.report_asset_check(check_name=v.check_name, passed=v.passed, severity=v.severity,
                                 metadata=dict(v.metadata))
