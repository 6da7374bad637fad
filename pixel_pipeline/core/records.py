"""Names shared by every table: datasets, id columns, styles/experts, and the reject schema.

Tables that mix datasets carry both `segment_id` (set for dataset "segments") and `record_id` (set for
"counseling" and "cot"); exactly one is non-null per row, mirroring `rejected.jsonl` in docs/CONTRACTS.md.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

DATASET_SEGMENTS = "segments"
DATASET_COUNSELING = "counseling"
DATASET_COT = "cot"
DATASETS = (DATASET_SEGMENTS, DATASET_COUNSELING, DATASET_COT)

# The four styles map to four experts, in this order (issue 4: therapeutic 0 ... practical 3).
STYLES = ("therapeutic", "educational", "empathetic", "practical")
EXPERT_INDEX = {style: i for i, style in enumerate(STYLES)}

# The three training stages: their number (the `stage` column of splits and exports), their name (export folders
# under exports/stages/) and their training asset (`lora_<name>`). Written once here.
STAGE_COUNSELING, STAGE_REASONING, STAGE_VOICE = 1, 2, 3
STAGE_NAMES = {STAGE_COUNSELING: "stage1_counseling", STAGE_REASONING: "stage2_reasoning", STAGE_VOICE: "stage3_voice"}
STAGE_ASSETS = {number: f"lora_{name}" for number, name in STAGE_NAMES.items()}


def id_column(dataset: str) -> str:
    """`segment_id` for segments, `record_id` for conversations."""
    if dataset == DATASET_SEGMENTS:
        return "segment_id"
    if dataset in (DATASET_COUNSELING, DATASET_COT):
        return "record_id"
    raise ValueError(f"unknown dataset {dataset!r}; expected one of {DATASETS}")


def row_id(row: Mapping[str, Any]) -> str | None:
    """The id of a row of a mixed table, whichever of the two id columns it uses."""
    value = row.get(id_column(row["dataset"]))
    return None if value is None or (isinstance(value, float) and value != value) else str(value)


# ---- rejects: one row per input record dropped at some stage -------------------------------------------
REJECT_COLUMNS = ["dataset", "segment_id", "record_id", "dropped_by", "reasons", "details", "source", "file"]


def reject_row(
    dataset: str,
    item_id: str | None,
    dropped_by: str,
    reasons: Sequence[str],
    details: Mapping[str, Any] | None = None,
    source: str | None = None,
    file: str | None = None,
) -> dict[str, Any]:
    """One reject row; `dropped_by` names the asset that dropped it. `reasons` are short rule names (optionally `rule: explanation`); `details` holds scores."""
    if not reasons:
        raise ValueError("a reject needs at least one reason")
    col = id_column(dataset)
    return {
        "dataset": dataset,
        "segment_id": item_id if col == "segment_id" else None,
        "record_id": item_id if col == "record_id" else None,
        "dropped_by": dropped_by,
        "reasons": [str(r) for r in reasons],
        "details": json.dumps(dict(details or {}), ensure_ascii=False, default=str, sort_keys=True),
        "source": source,
        "file": file,
    }


def reason_key(reason: Any) -> str:
    """The rule key of a reject reason: reasons are written `<rule>: <why, with figures>` (or just `<rule>`)."""
    return str(reason).split(":", 1)[0].strip()


def rejects_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """A DataFrame with exactly REJECT_COLUMNS (empty frames keep the schema)."""
    df = pd.DataFrame(list(rows), columns=REJECT_COLUMNS)
    for col in ("segment_id", "record_id", "source", "file", "details"):
        df[col] = df[col].astype("object")
    return df


# ---- the educator's voice ------------------------------------------------------------------------------
# Stage 3 is trained on the educator's own channel(s), the "voice sources"; every other channel only feeds the
# style experts. No channel name lives in the code: the sources come from a setting, else they are detected in the
# corpus (raw_segments resolves them once and writes VoiceChoice; curation and splits read that file).
VOICE_SOURCES_ENV_VAR = "PIXEL_VOICE_SOURCES"
VOICE_SOURCES_FILE = "voice_sources.json"  # a corpus may declare its own: PIXEL_DATA_DIR/voice_sources.json


class VoiceSourceError(ValueError):
    """The voice sources cannot be resolved: a configured source is absent, or no source clearly leads."""


@dataclass(frozen=True)
class VoiceRule:
    """When nothing is configured, the corpus's most frequent source is the educator when it *clearly* leads: at
    least `min_lead_ratio` times the segments of the runner-up and at least `min_segments` segments. A corpus of
    one source is unambiguous and needs neither (whether it has enough data is training_data_sizes' question)."""

    min_lead_ratio: float = 1.5
    min_segments: int = 20


@dataclass(frozen=True)
class VoiceChoice:
    """The resolved voice sources, how they were chosen, and the corpus's source counts behind the choice."""

    sources: tuple[str, ...]
    origin: str  # "asset setting", "PIXEL_VOICE_SOURCES", "detected" or "none (no segments)"
    segments: dict[str, int]  # segments per chosen source
    total_segments: int
    candidates: list[dict[str, Any]] = field(default_factory=list)  # the top sources with their counts
    rule: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        if not self.sources:
            return f"no voice source ({self.origin}): stage 3 is empty"
        shown = ", ".join(f"{s} ({self.segments.get(s, 0):,} segments)" for s in self.sources)
        return f"voice sources {shown} of {self.total_segments:,} segments; {self.origin}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "sources": list(self.sources), "description": self.describe()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "VoiceChoice":
        return cls(
            sources=tuple(data["sources"]), origin=str(data["origin"]), segments=dict(data.get("segments", {})),
            total_segments=int(data.get("total_segments", 0)), candidates=list(data.get("candidates", [])),
            rule=dict(data.get("rule", {})),
        )


def configured_voice_sources(voice_sources: Sequence[str] | None = None, data_dir: str | os.PathLike | None = None) -> tuple[tuple[str, ...], str]:
    """(sources, where the setting came from): the asset setting when given, else PIXEL_VOICE_SOURCES (a JSON list,
    or one channel name), else the corpus's own `voice_sources.json` (a JSON list) in `data_dir`; ((), "") when
    nothing is configured, which means: detect."""
    if voice_sources:
        return tuple(voice_sources), "asset setting"
    raw = os.environ.get(VOICE_SOURCES_ENV_VAR, "").strip()
    corpus_file = os.path.join(data_dir, VOICE_SOURCES_FILE) if data_dir is not None else None
    if not raw and corpus_file and os.path.isfile(corpus_file):
        with open(corpus_file, encoding="utf-8") as fh:
            parsed = json.load(fh)
        if not isinstance(parsed, list) or not parsed or not all(isinstance(s, str) and s for s in parsed):
            raise ValueError(f"{corpus_file} must hold a JSON list of channel names, got {parsed!r}")
        return tuple(parsed), f"the corpus's {VOICE_SOURCES_FILE}"
    if not raw:
        return (), ""
    if raw.startswith("["):
        parsed = json.loads(raw)
        if not isinstance(parsed, list) or not parsed or not all(isinstance(s, str) and s for s in parsed):
            raise ValueError(f"{VOICE_SOURCES_ENV_VAR} must be a JSON list of channel names, got {raw!r}")
        return tuple(parsed), VOICE_SOURCES_ENV_VAR
    return (raw,), VOICE_SOURCES_ENV_VAR


def _counts_list(counts: Sequence[tuple[str, int]], limit: int = 10) -> str:
    shown = ", ".join(f"{s!r}: {n:,}" for s, n in counts[:limit])
    return shown + (f", ... ({len(counts) - limit} more)" if len(counts) > limit else "")


def choose_voice_sources(
    source_counts: Mapping[str, int], voice_sources: Sequence[str] | None = None, rule: VoiceRule = VoiceRule(),
    data_dir: str | os.PathLike | None = None,
) -> VoiceChoice:
    """Resolve the voice sources against the corpus's segments per source (raises VoiceSourceError with the
    corpus's sources and counts when a configured source is absent or no source clearly leads)."""
    counts = sorted(((str(s), int(n)) for s, n in source_counts.items() if n > 0), key=lambda kv: (-kv[1], kv[0]))
    total = sum(n for _, n in counts)
    candidates = [{"source": s, "segments": n} for s, n in counts[:10]]
    configured, origin = configured_voice_sources(voice_sources, data_dir)
    if configured:
        present = dict(counts)
        absent = [s for s in configured if s not in present]
        if absent:
            raise VoiceSourceError(
                f"voice source(s) {absent} (from {origin}) are not in the corpus; its sources with segment counts: "
                f"{_counts_list(counts) or 'none (no segments)'}. Set {VOICE_SOURCES_ENV_VAR} (a JSON list) or the "
                f"raw_segments setting voice_sources to one of them (or write {VOICE_SOURCES_FILE} in the data "
                "directory), or leave them all empty to detect the educator."
            )
        return VoiceChoice(configured, origin, {s: present[s] for s in configured}, total, candidates, asdict(rule))
    if not counts:
        return VoiceChoice((), "none (no segments)", {}, 0, [], asdict(rule))
    (leader, n1), runner_up = counts[0], (counts[1][1] if len(counts) > 1 else 0)
    clear = runner_up == 0 or (n1 >= rule.min_segments and n1 >= rule.min_lead_ratio * runner_up)
    if not clear:
        raise VoiceSourceError(
            f"no voice source configured and no source clearly leads the corpus (the rule: at least "
            f"{rule.min_lead_ratio:g}x the next source and at least {rule.min_segments} segments); candidates with "
            f"segment counts: {_counts_list(counts)}. Set {VOICE_SOURCES_ENV_VAR} (a JSON list, e.g. "
            f"'[\"{leader}\"]'), the raw_segments setting voice_sources, or {VOICE_SOURCES_FILE} in the data directory."
        )
    lead = f"{n1 / runner_up:.1f}x the next source" if runner_up else "the only source"
    why = f"detected: the dominant source, {lead} ({n1:,} vs {runner_up:,} segments)"
    return VoiceChoice((leader,), why, {leader: n1}, total, candidates, asdict(rule))


def read_voice_choice(path: str | os.PathLike) -> VoiceChoice:
    """The choice raw_segments wrote (curation and splits read it instead of deciding again)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} is missing: materialize raw_segments first (it resolves the voice sources)")
    with open(path, encoding="utf-8") as fh:
        return VoiceChoice.from_dict(json.load(fh))
