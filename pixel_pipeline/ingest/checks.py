"""Ingestion's asset checks and metadata as plain data (`core.verdicts`), built without Dagster.

Every ingestion asset shares four checks (`schema`, `row_accounting`, `not_empty`, `invalid_files`) over an
`Ingested` outcome; raw_segments adds the rejected share, style agreement and the given-confidence scale,
counseling_conversations the hub fallback, audited_schema the anomaly shares. `defs/ingestion.py` reads, calls
these and writes; tests call them directly with tiny frames.

Metadata is two-tier (issue 16): `*_report` builds everything an asset knows as plain JSON (written to
reports/<asset>/summary.json; audited_schema's report is its audit.json), and `*_metadata` picks the few headline
values, the output paths and one to three tables / plots from it for the UI.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from pixel_pipeline.core.records import STYLES, VoiceChoice
from pixel_pipeline.core.verdicts import WARN, Verdict, json_value, md, plain, table
from pixel_pipeline.ingest.audit import AuditSettings
from pixel_pipeline.ingest.cache import FileResult
from pixel_pipeline.ingest.conversations import repeated_questions
from pixel_pipeline.ingest.segments import accounting, reject_reason_counts
from pixel_pipeline.ingest.style import confusion_markdown
from pixel_pipeline.ingest.text import count_invisible

SEGMENTS_PREVIEW = ["segment_id", "origin", "source", "style_given", "style_predicted", "style_confidence", "word_count", "text"]
CONVERSATIONS_PREVIEW = ["record_id", "source", "n_turns", "prompt", "response"]


@dataclass(frozen=True)
class Ingested:
    """One ingestion asset's outcome: its per-file results, accepted rows, rejects, input count and skip notes."""

    asset: str
    results: Sequence[FileResult]
    rows: pd.DataFrame
    rejects: pd.DataFrame
    n_inputs: int
    notes: Sequence[str] = ()

    @cached_property
    def accounting(self) -> dict[str, Any]:
        """rows in (counted while parsing) vs accepted + rejected, overall and per file (`segments.accounting`)."""
        return accounting(self.results, self.rows, self.rejects)

    @cached_property
    def invalid_files(self) -> list[dict[str, str]]:
        return [{"file": r.input_file, "reason": r.file_error} for r in self.results if r.file_error]

    @cached_property
    def reject_reasons(self) -> dict[str, int]:
        return reject_reason_counts(self.rejects)


# ---------------------------------------------------------------------------------------------------------------
# small tables


def counts_table(counts: Mapping[str, int], key: str = "value") -> dict[str, Any]:
    return table([{key: k, "count": v} for k, v in counts.items()], [key, "count"])


def preview(df: pd.DataFrame, columns: Sequence[str], n: int = 5, width: int = 80) -> dict[str, Any]:
    """The first rows as a markdown table, long strings cut to `width` characters."""
    if df.empty:
        return md("_empty_")
    head = df[list(columns)].head(n).to_dict("records")
    cut = [{k: (str(v)[:width] + "…" if isinstance(v, str) and len(v) > width else v) for k, v in r.items()} for r in head]
    return table(cut, list(columns))


def skipped_inputs(notes: Sequence[str]) -> list[str]:
    """Entries skipped at the data-directory boundary (dangling links, directories, links outside), with the reason."""
    return [n.removeprefix("skipped ") for n in notes if n.startswith("skipped ")]


def _bullets(items: Sequence[str]) -> str:
    return "\n".join(f"- {i}" for i in items)


# ---------------------------------------------------------------------------------------------------------------
# the four checks of every ingestion asset


def schema_verdict(problems: Sequence[str], n_rows: int) -> Verdict:
    return Verdict(
        "schema",
        passed=not problems,
        description=problems[0] if problems else "columns, dtypes, ids and value ranges match docs/CONTRACTS.md",
        metadata={"problems": md(_bullets(problems) or "_none_"), "rows": n_rows},
    )


def row_accounting_verdict(acc: Mapping[str, Any]) -> Verdict:
    """rows in = kept + rejected, per input file and overall (see `segments.accounting`)."""
    per_file = [{"input_file": k, **v} for k, v in acc["per_file"].items()][:50]
    description = f"rows in {acc['rows_in']} = kept {acc['kept']} + rejected {acc['rejected']}"
    if not acc["balanced"]:
        description += f"; mismatch in {list(acc['mismatched_files']) + acc['unknown_files']}"
    return Verdict(
        "row_accounting",
        passed=acc["balanced"],
        description=description,
        metadata={
            "rows_in": acc["rows_in"],
            "kept": acc["kept"],
            "rejected": acc["rejected"],
            "mismatched_files": json_value(acc["mismatched_files"]),
            "per_file": table(per_file, ["input_file", "rows_in", "kept", "rejected"]),
        },
    )


def not_empty_verdict(asset: str, n_inputs: int, n_rows: int, n_rejects: int, rows_in: int) -> Verdict:
    """An empty table is fine only when there was nothing to read."""
    if n_inputs == 0:
        description = "no input files: an empty table is expected"
    elif n_rows:
        description = f"{n_rows} rows kept from {n_inputs} input files"
    elif rows_in == 0:
        description = f"{n_inputs} input files but they hold no rows"
    else:
        description = f"{n_inputs} input files but every row was rejected; see rejects/{asset}.parquet"
    return Verdict(
        "not_empty",
        passed=n_inputs == 0 or n_rows > 0,
        description=description,
        metadata={"input_files": n_inputs, "rows": n_rows, "rejected": n_rejects},
    )


def invalid_files_verdict(invalid: Sequence[Mapping[str, str]]) -> Verdict:
    description = "every input file was readable"
    if invalid:
        description = f"{len(invalid)} unreadable input files (each has one reject row): " + "; ".join(
            f"{i['file']}: {i['reason']}" for i in invalid[:3]
        )
    return Verdict(
        "invalid_files",
        passed=not invalid,
        severity=WARN,
        description=description,
        metadata={"invalid_files": table(invalid, ["file", "reason"]), "count": len(invalid)},
    )


def common_verdicts(ingested: Ingested, schema_problems: Sequence[str]) -> list[Verdict]:
    acc = ingested.accounting
    return [
        schema_verdict(schema_problems, len(ingested.rows)),
        row_accounting_verdict(acc),
        not_empty_verdict(ingested.asset, ingested.n_inputs, len(ingested.rows), len(ingested.rejects), acc["rows_in"]),
        invalid_files_verdict(ingested.invalid_files),
    ]


def accounting_report(ingested: Ingested) -> dict[str, Any]:
    """The counts, reasons, unreadable and skipped inputs every ingestion asset reports (plain JSON)."""
    acc = ingested.accounting
    return {
        "rows_in": acc["rows_in"],
        "kept": acc["kept"],
        "rejected": acc["rejected"],
        "input_files": ingested.n_inputs,
        "invalid_files": list(ingested.invalid_files),
        "reject_reasons": dict(ingested.reject_reasons),
        "skipped_inputs": skipped_inputs(ingested.notes),
        "notes": list(ingested.notes),
    }


def headline_metadata(report: Mapping[str, Any], n_rows: int, outputs: Mapping[str, Any]) -> dict[str, Any]:
    """What every ingestion asset shows first: its row count, the files written (as `path`s), rows in / kept /
    rejected and the rejects per reason."""
    return {
        "dagster/row_count": n_rows,
        **outputs,
        "rows_in": report["rows_in"],
        "kept": report["kept"],
        "rejected": report["rejected"],
        "reject_reasons": counts_table(report["reject_reasons"], "reason"),
    }


def notes_metadata(report: Mapping[str, Any]) -> dict[str, Any]:
    """The notes (skipped inputs, a sources.json problem) as a bullet list, only when there are some."""
    return {"notes": md(_bullets(report["notes"]))} if report["notes"] else {}


# ---------------------------------------------------------------------------------------------------------------
# raw_segments


def rejected_share_verdict(rows_in: int, rejected: int, reasons: Mapping[str, int], max_share: float) -> Verdict:
    """More than `max_share` of input rows rejected usually means a format change, not bad rows."""
    share = rejected / rows_in if rows_in else 0.0
    return Verdict(
        "rejected_share",
        passed=share <= max_share,
        severity=WARN,
        description=f"{share:.1%} of {rows_in} input rows rejected (limit {max_share:.0%})",
        metadata={"rejected_share": round(share, 4), "max_rejected_share": max_share, "reasons": counts_table(reasons, "reason")},
    )


def style_agreement_verdict(agreement: Mapping[str, Any], min_kappa: float) -> Verdict:
    """Given labels and predictions agree beyond chance; no labelled rows passes (nothing to compare)."""
    kappa = agreement.get("kappa")
    description = "no labelled segments" if kappa is None else (
        f"given vs predicted style agree on {agreement['agreement']:.0%} (chance {agreement['chance_agreement']:.0%}, "
        f"kappa {kappa:.2f}, limit {min_kappa})"
    )
    return Verdict(
        "style_agreement",
        passed=kappa is None or kappa >= min_kappa,
        severity=WARN,
        description=description,
        metadata={
            "labelled_rows": agreement["n_labelled"],
            "agreement": agreement.get("agreement"),
            "chance_agreement": agreement.get("chance_agreement"),
            "kappa": kappa,
            "min_style_kappa": min_kappa,
            "confusion": md(confusion_markdown(dict(agreement))),
        },
    )


def given_confidence_verdict(confidence_given: pd.Series) -> Verdict:
    """Any given confidence outside [0, 1] means the field is an unscaled score, not a probability."""
    conf = confidence_given.dropna()
    outside = int(((conf < 0) | (conf > 1)).sum())
    return Verdict(
        "given_confidence_is_probability",
        passed=outside == 0,
        severity=WARN,
        description=f"{outside} of {len(conf)} given confidence values lie outside [0, 1]"
        + (": treat confidence_given as an unscaled score" if outside else ""),
        metadata={
            "outside_unit_interval": outside,
            "share": round(outside / len(conf), 4) if len(conf) else 0.0,
            "max_confidence_given": float(conf.max()) if len(conf) else None,
        },
    )


def raw_segments_verdicts(
    ingested: Ingested, schema_problems: Sequence[str], agreement: Mapping[str, Any], max_rejected_share: float, min_style_kappa: float
) -> list[Verdict]:
    acc = ingested.accounting
    return [
        *common_verdicts(ingested, schema_problems),
        rejected_share_verdict(acc["rows_in"], acc["rejected"], ingested.reject_reasons, max_rejected_share),
        style_agreement_verdict(agreement, min_style_kappa),
        given_confidence_verdict(ingested.rows["confidence_given"]),
    ]


def style_report(rows: pd.DataFrame, agreement: Mapping[str, Any], expert_style_from: str) -> dict[str, Any]:
    """Given, predicted and expert style per style, and how well given and predicted agree (`style_confusion`: given
    style -> predicted style -> segments; the markdown table is in the style_agreement check)."""
    per_style = [
        {
            "style": s,
            "given": int((rows["style_given"] == s).sum()),
            "predicted": int((rows["style_predicted"] == s).sum()),
            "expert style": int((rows["style"] == s).sum()),
        }
        for s in STYLES
    ]
    from_prediction = round(float((rows["style"] == rows["style_predicted"]).mean()), 4) if len(rows) else None
    return {
        "per_style": per_style,
        "style_agreement": agreement.get("agreement"),
        "style_kappa": agreement.get("kappa"),
        "style_confusion": dict(agreement.get("confusion", {})),
        "style_per_label": dict(agreement.get("per_style", {})),
        "expert_style_from": expert_style_from,
        "style_from_prediction_share": from_prediction,
    }


def voice_report(rows: pd.DataFrame, voice: VoiceChoice, choice_file: str | Path | None = None) -> dict[str, Any]:
    """The voice sources chosen, how, and their share of the segments (`choice_file`: where the choice was written)."""
    report = {
        "sources": int(rows["source"].nunique()),
        "voice_sources": list(voice.sources),
        "voice_choice": voice.describe(),
        "voice_candidates": list(voice.candidates),
        "voice_share": round(float(rows["source"].isin(list(voice.sources)).mean()), 4) if len(rows) else None,
    }
    if choice_file is not None:
        report["voice_choice_file"] = str(choice_file)
    return report


def raw_segments_report(
    ingested: Ingested,
    agreement: Mapping[str, Any],
    voice: VoiceChoice,
    expert_style_from: str,
    run_info: Mapping[str, Any],
    voice_choice_file: str | Path | None = None,
) -> dict[str, Any]:
    """reports/raw_segments/summary.json: everything raw_segments knows. `run_info`: the style encoder, its
    fingerprint and the file and embedding cache statistics of this run."""
    rows = ingested.rows
    by_origin = rows["origin"].value_counts().to_dict()
    return plain({
        **accounting_report(ingested),
        "by_origin": {str(k): int(v) for k, v in by_origin.items()},
        **voice_report(rows, voice, voice_choice_file),
        **style_report(rows, agreement, expert_style_from),
        **run_info,
        "file_paths_sanitised": sum(int(r.notes.get("file_paths_sanitised", 0)) for r in ingested.results),
        "texts_with_invisible_characters": int(rows["text"].map(count_invisible).gt(0).sum()) if len(rows) else 0,
    })


def raw_segments_metadata(report: Mapping[str, Any], rows: pd.DataFrame, outputs: Mapping[str, Any]) -> dict[str, Any]:
    """What the UI shows for raw_segments, picked from its report: the headline counts and files (`outputs`: `path`,
    `rejects_path`, `report_path`), the voice choice, the file cache of this run, the rejects per reason and a
    preview."""
    metadata = {
        **headline_metadata(report, len(rows), outputs),
        "voice_choice": report["voice_choice"],
        "preview": preview(rows, SEGMENTS_PREVIEW),
    }
    if "file_cache" in report:
        metadata["file_cache"] = json_value(report["file_cache"])
    return {**metadata, **notes_metadata(report)}


# ---------------------------------------------------------------------------------------------------------------
# counseling_conversations and cot_conversations


def hub_reachable_verdict(hub_id: str, origin: str) -> Verdict:
    """With a hub id configured the rows must come from the Hub; a fallback to local files warns with the reason."""
    return Verdict(
        "hub_reachable",
        passed=not hub_id or origin.startswith("hub "),
        severity=WARN,
        description=origin if hub_id else "no hub id configured: local files by design",
        metadata={"counseling_origin": origin, "counseling_hub_id": hub_id or "(none)"},
    )


def conversation_report(ingested: Ingested, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """reports/<asset>/summary.json of a conversation asset; `extra`: what only this asset knows (counseling_origin)."""
    rows = ingested.rows
    return plain({
        **accounting_report(ingested),
        "per_source": {str(k): int(v) for k, v in rows["source"].value_counts().head(20).items()},
        "repeated_questions": repeated_questions(rows),
        "n_turns": {str(k): int(v) for k, v in rows["n_turns"].value_counts().sort_index().items()},
        **(extra or {}),
    })


def conversation_metadata(report: Mapping[str, Any], rows: pd.DataFrame, outputs: Mapping[str, Any]) -> dict[str, Any]:
    """The headline counts and files, the rejects per reason and a preview; `counseling_origin` when reported."""
    metadata = {**headline_metadata(report, len(rows), outputs), "preview": preview(rows, CONVERSATIONS_PREVIEW)}
    if "counseling_origin" in report:
        metadata["counseling_origin"] = report["counseling_origin"]
    return {**metadata, **notes_metadata(report)}


# ---------------------------------------------------------------------------------------------------------------
# audited_schema


def _plain_anomalies(anomalies: Mapping[str, Any]) -> dict[str, Any]:
    return json_value(json.loads(json.dumps(anomalies, default=str)))


def anomaly_shares(anomalies: Mapping[str, Any], settings: AuditSettings) -> dict[str, tuple[float, float]]:
    """{anomaly: (share, limit)} for the three anomalies with a configured limit (a missing share counts as 0)."""
    return {
        "non_latin_script_runs": (anomalies["non_latin_script_runs"]["share"] or 0.0, settings.max_non_latin_share),
        "extreme_lengths": (anomalies["extreme_lengths"]["share"] or 0.0, settings.max_extreme_length_share),
        "near_duplicates": (anomalies["duplicate_texts"]["near_duplicate_share"] or 0.0, settings.max_near_duplicate_share),
    }


def anomalies_verdict(anomalies: Mapping[str, Any], shares: Mapping[str, tuple[float, float]]) -> Verdict:
    over = {k: v for k, v in shares.items() if v[0] > v[1]}
    rows = [{"anomaly": k, "share": f"{s:.1%}", "limit": f"{lim:.0%}"} for k, (s, lim) in shares.items()]
    description = "anomaly shares under their limits" if not over else "over the limit: " + ", ".join(
        f"{k} {s:.1%} > {lim:.0%}" for k, (s, lim) in over.items()
    )
    return Verdict(
        "anomalies",
        passed=not over,
        severity=WARN,
        description=description,
        metadata={"shares": table(rows, ["anomaly", "share", "limit"]), "anomalies": _plain_anomalies(anomalies)},
    )


# The plots audited_schema shows in the UI (of `audit.audit_plots`, by title), under a metadata key; audit.html holds
# every plot.
HEADLINE_PLOTS = {"Segment length by style (words)": "segment_length_by_style",
                  "Segments per source (top 15)": "segments_per_source"}


def audited_schema_metadata(
    report: Mapping[str, Any], counts: Mapping[str, int], outputs: Mapping[str, Any], images: Mapping[str, str]
) -> dict[str, Any]:
    """`report`: the audit (audit.json, where every other figure is); `counts`: rows audited per dataset (segments,
    counseling, cot); `outputs`: `audit_json` and `audit_html`; `images`: plot title -> markdown image."""
    fields = [
        {"field": f, "types": json.dumps(v["types"]), "missing_rate": v["missing_rate"], "null_rate": v["null_rate"]}
        for f, v in report["segments"]["raw_fields"]["fields"].items()
    ]
    return {
        "dagster/row_count": sum(counts.values()),
        **outputs,
        **counts,
        "segment_fields": table(fields, ["field", "types", "missing_rate", "null_rate"]),
        **{key: md(images[title]) for title, key in HEADLINE_PLOTS.items() if title in images},
    }

