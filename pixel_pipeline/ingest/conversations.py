"""Counseling and chain-of-thought conversations -> the standard conversation format (docs/CONTRACTS.md).

Counseling (`Context`, `Response`): from the Hugging Face Hub through `datasets.load_dataset` when
`counseling_hub_id` is set and reachable, else from `counseling/*.{csv,json,jsonl,parquet}`. Falling back is logged
and reported in metadata (`counseling_origin`), never silent. Repeated questions with different answers are all
kept: they share a `question_id` (the split group key), so they cannot leak across splits.

CoT (`cot/*.json` list, `*.jsonl` one per line): each record is `{"conversation": [{role, content}...],
"metadata": {...}}`; `messages` / `conversations` lists and ShareGPT `{from, value}` turns are accepted too. Roles
are normalised to client / therapist (ROLE_ALIASES); a system turn is kept in metadata, not in the turns.

record_id = core.ids.record_id(turns) over the normalised turns with each content stripped of surrounding
whitespace; metadata is not part of the id. An exact repeat of an earlier record (same record_id) is rejected
as `duplicate`. Per-file functions return `FileResult`s like the segment loaders.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pixel_pipeline.core.ids import content_id, record_id
from pixel_pipeline.core.records import DATASET_COT, DATASET_COUNSELING, reject_row, rejects_frame
from pixel_pipeline.ingest.cache import FileResult
from pixel_pipeline.ingest.inputs import scan_input_folder
from pixel_pipeline.ingest.rows import BrokenRecord, csv_records, decode_text, json_list_records, jsonl_records
from pixel_pipeline.ingest.segments import invalid_file_result, split_exact_repeats, with_dtypes
from pixel_pipeline.ingest.text import CONTROL_CHAR_RE, SURROGATE_RE, bytes_id, snippet, strip_invisible

log = logging.getLogger(__name__)

CONVERSATION_COLUMNS = {
    "record_id": "str",
    "dataset": "str",
    "question_id": "str",
    "prompt": "str",
    "response": "str",
    "conversation": "str",
    "n_turns": "int64",
    "source": "str",
    "input_file": "str",
    "row_index": "int64",
}
COUNSELING_EXTENSIONS = (".csv", ".json", ".jsonl", ".parquet")
COT_EXTENSIONS = (".json", ".jsonl")
DEFAULT_COUNSELING_HUB_ID = "Amod/mental_health_counseling_conversations"

ROLE_ALIASES = {
    "client": "client", "user": "client", "human": "client", "patient": "client", "question": "client",
    "seeker": "client", "help_seeker": "client", "prompter": "client",
    "therapist": "therapist", "assistant": "therapist", "gpt": "therapist", "counselor": "therapist",
    "counsellor": "therapist", "model": "therapist", "bot": "therapist", "ai": "therapist", "answer": "therapist",
    "helper": "therapist", "supporter": "therapist",
    "system": "system",
}


@dataclass(frozen=True)
class ConversationSettings:
    """Validation of conversation records. Field names equal the conversation assets' Config fields.

    min_chars / max_chars: bounds on each turn's content (stripped); outside -> rejected.
    quality_level: `metadata.quality_level` given to records that carry none.
    """

    min_chars: int = 2
    max_chars: int = 50_000
    quality_level: str = "unrated"

    def fingerprint(self) -> dict[str, Any]:
        return asdict(self)


def _content_problem(name: str, value: Any, settings: ConversationSettings) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"missing_field: {name}"
    if not isinstance(value, str):
        return f"wrong_type: {name} is {type(value).__name__}, expected string"
    if SURROGATE_RE.search(value):
        return f"invalid_utf8: {name} holds bytes that are not valid UTF-8"
    if CONTROL_CHAR_RE.search(value):
        return f"binary_content: {name} holds control characters"
    stripped = value.strip()
    if not stripped:
        return f"empty_text: {name}"
    if len(stripped) < settings.min_chars:
        return f"too_short: {name} has {len(stripped)} characters < min_chars {settings.min_chars}"
    if len(stripped) > settings.max_chars:
        return f"too_long: {name} has {len(stripped):,} characters > max_chars {settings.max_chars:,}"
    return None


def conversation_row(turns: list[dict[str, str]], metadata: dict[str, Any], dataset: str, source: str, input_file: str, row_index: int) -> dict[str, Any]:
    rid = record_id(turns)
    first_client = next(t["content"] for t in turns if t["role"] == "client")
    meta = {**metadata, "source": source, "dataset": dataset, "record_id": rid}
    return {
        "record_id": rid,
        "dataset": dataset,
        "question_id": content_id(first_client),
        "prompt": first_client,
        "response": turns[-1]["content"],
        "conversation": json.dumps({"conversation": turns, "metadata": meta}, ensure_ascii=False),
        "n_turns": len(turns),
        "source": source,
        "input_file": input_file,
        "row_index": row_index,
    }


def conversation_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return with_dtypes(pd.DataFrame(rows, columns=list(CONVERSATION_COLUMNS)), CONVERSATION_COLUMNS)


def _reject_id(value: Any) -> str:
    return bytes_id(snippet(value, 100_000).encode("utf-8", "replace"))


# ---------------------------------------------------------------------------------------------------------------
# counseling


def _unreadable_record(record: Any, index: int, input_file: str, dataset: str, stage: str, source: str | None,
                       expected: str) -> dict | None:
    """The reject row of a record the reader could not parse, or that is not an object; None for a usable one."""
    if isinstance(record, BrokenRecord):
        details = {"input_file": input_file, "row_index": index, "raw": snippet(record.raw)}
        return reject_row(dataset, _reject_id(record.raw), stage, [record.reason], details, source, None)
    if not isinstance(record, dict):
        details = {"input_file": input_file, "row_index": index, "raw": snippet(record)}
        reason = f"not_an_object: expected {expected}, got {type(record).__name__}"
        return reject_row(dataset, _reject_id(record), stage, [reason], details, source, None)
    return None


def _counseling_row(record: Any, index: int, input_file: str, source: str, settings: ConversationSettings, stage: str) -> tuple[dict | None, dict | None]:
    """(row, None) or (None, reject) for one counseling record ({Context, Response, ...}, keys case-insensitive)."""
    problem = _unreadable_record(record, index, input_file, DATASET_COUNSELING, stage, source,
                                 "an object with Context and Response")
    if problem:
        return None, problem
    keys = {str(k).strip().lower(): k for k in record}
    context, response = (record.get(keys[name]) if name in keys else None for name in ("context", "response"))
    reasons = []
    for name, value in (("Context", context), ("Response", response)):
        problem = f"missing_column: {name}" if name.lower() not in keys else _content_problem(name, _clean(value), settings)
        if problem:
            reasons.append(problem)
    if reasons:
        raw = {"Context": snippet(context), "Response": snippet(response)}
        details = {"input_file": input_file, "row_index": index, "raw": raw, "offending": raw}
        return None, reject_row(DATASET_COUNSELING, _reject_id([context, response]), stage, reasons, details, source, None)
    turns = [{"role": "client", "content": _clean(context).strip()}, {"role": "therapist", "content": _clean(response).strip()}]
    return conversation_row(turns, {"quality_level": settings.quality_level}, DATASET_COUNSELING, source, input_file, index), None


def _clean(value: Any) -> Any:
    """Turn contents without invisible format characters (ingest.text.INVISIBLE_RE); other values as they are."""
    return strip_invisible(value) if isinstance(value, str) else value


def records_result(records: list[Any], input_file: str, source: str, settings: ConversationSettings, dataset: str = DATASET_COUNSELING, stage: str = "counseling_conversations") -> FileResult:
    """Validate records one by one: every record is a row or a reject (rows_in = len(records))."""
    rows, rejects = [], []
    for index, record in enumerate(records):
        if dataset == DATASET_COUNSELING:
            row, reject = _counseling_row(record, index, input_file, source, settings, stage)
        else:
            row, reject = cot_record(record, index, input_file, settings, stage)
        if row is not None:
            rows.append(row)
        else:
            rejects.append(reject)
    return FileResult(input_file, conversation_frame(rows), rejects_frame(rejects), len(records))


def counseling_records_from_frame(df: pd.DataFrame, input_file: str, source: str, settings: ConversationSettings, stage: str = "counseling_conversations") -> FileResult:
    """Validate the rows of one table (the Hub split), row by row."""
    return records_result(df.to_dict("records"), input_file, source, settings, DATASET_COUNSELING, stage)


def read_table_records(path: Path) -> tuple[list[Any], str | None]:
    """A counseling file's records one by one (csv, json list / object of columns, jsonl, parquet), or why the file
    as a whole is unreadable."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        try:
            import pyarrow.parquet as pq

            return pq.read_table(path).to_pylist(), None
        except Exception as exc:  # noqa: BLE001 - any Parquet reader error: the file is not readable as a whole
            return [], f"unreadable parquet ({type(exc).__name__}: {snippet(str(exc), 160)})"
    text = decode_text(path.read_bytes())
    if suffix == ".csv":
        return csv_records(text), None
    if suffix == ".jsonl":
        return jsonl_records(text), None
    return json_list_records(text)


def load_counseling_file(path: str | Path, relative_name: str, settings: ConversationSettings) -> FileResult:
    path = Path(path)
    records, error = read_table_records(path)
    if error:
        return invalid_file_result(path.read_bytes(), relative_name, error, DATASET_COUNSELING, "counseling_conversations")
    return records_result(records, relative_name, path.name, settings)


def load_counseling_hub(hub_id: str, split: str, settings: ConversationSettings) -> FileResult:
    """The Hub split through `datasets.load_dataset` (raises when the Hub or the set is unreachable)."""
    import datasets

    dataset = datasets.load_dataset(hub_id, split=split)
    df = dataset.to_pandas()
    return counseling_records_from_frame(df, f"hub:{hub_id}[{split}]", hub_id, settings)


def load_counseling(
    counseling_dir: Path,
    data_dir: Path,
    settings: ConversationSettings,
    counseling_hub_id: str = "",
    counseling_hub_split: str = "train",
    logger: Callable[[str], None] = log.info,
) -> tuple[list[FileResult], str]:
    """(per-file results, where they came from). Hub first when configured; local files otherwise or on failure."""
    if counseling_hub_id:
        try:
            result = load_counseling_hub(counseling_hub_id, counseling_hub_split, settings)
            return [result], f"hub {counseling_hub_id} (split {counseling_hub_split})"
        except Exception as exc:  # noqa: BLE001 - offline, unknown id, missing columns: all mean "use local files"
            why = f"{type(exc).__name__}: {snippet(str(exc), 200)}"
            logger(f"counseling hub {counseling_hub_id} unreachable ({why}); falling back to local files in {counseling_dir}")
            origin = f"local files (hub {counseling_hub_id} unreachable: {why})"
    else:
        origin = "local files"
    files, _ = scan_input_folder(counseling_dir, data_dir, COUNSELING_EXTENSIONS)
    return [load_counseling_file(p, p.relative_to(data_dir).as_posix(), settings) for p in files], origin


# ---------------------------------------------------------------------------------------------------------------
# chain of thought


def normalise_turns(raw_turns: Any) -> tuple[list[dict[str, str]], str | None, list[str], dict[str, Any]]:
    """(client/therapist turns, system prompt, problems, offending values) of one record's turn list."""
    if not isinstance(raw_turns, list) or not raw_turns:
        return [], None, ["missing_field: conversation (a non-empty list of turns)"], {"conversation": snippet(raw_turns)}
    turns, system, problems, offending = [], None, [], {}
    for i, turn in enumerate(raw_turns):
        if not isinstance(turn, dict):
            problems.append(f"wrong_type: turn {i} is {type(turn).__name__}, expected object")
            offending[f"turn_{i}"] = snippet(turn)
            continue
        role = turn.get("role", turn.get("from"))
        content = turn.get("content", turn.get("value"))
        canonical = ROLE_ALIASES.get(str(role).strip().lower()) if isinstance(role, str) else None
        if canonical is None:
            problems.append(f"unknown_role: turn {i} role {snippet(role, 40)!r}")
            offending[f"turn_{i}_role"] = snippet(role, 40)
            continue
        if canonical == "system":
            system = content if isinstance(content, str) else None
            continue
        turns.append({"role": canonical, "content": _clean(content)})
    return turns, system, problems, offending


def validate_turns(turns: list[dict[str, Any]], settings: ConversationSettings) -> tuple[list[str], dict[str, Any]]:
    problems, offending = [], {}
    for i, turn in enumerate(turns):
        problem = _content_problem(f"turn {i} content", turn["content"], settings)
        if problem:
            problems.append(problem)
            offending[f"turn_{i}_content"] = snippet(turn["content"])
    if turns and not any(t["role"] == "client" for t in turns):
        problems.append("no_client_turn: the conversation never has a client/user turn")
    if turns and turns[-1]["role"] != "therapist":
        problems.append("no_final_therapist_turn: the conversation must end with a therapist/assistant turn")
    return problems, offending


def cot_record(record: Any, index: int, input_file: str, settings: ConversationSettings, stage: str = "cot_conversations") -> tuple[dict | None, dict | None]:
    """(row, None) or (None, reject) for one reasoning record."""
    file_name = Path(input_file).name
    problem = _unreadable_record(record, index, input_file, DATASET_COT, stage, file_name, "a JSON object")
    if problem:
        return None, problem
    raw_turns = next((record[k] for k in ("conversation", "messages", "conversations") if k in record), None)
    turns, system, problems, offending = normalise_turns(raw_turns)
    more, more_offending = validate_turns(turns, settings)
    problems += more
    offending.update(more_offending)
    metadata = record.get("metadata") if isinstance(record.get("metadata"), dict) else {}
    source = metadata.get("source") if isinstance(metadata.get("source"), str) and metadata.get("source").strip() else file_name
    if problems or not turns:
        details = {"input_file": input_file, "row_index": index, "raw": snippet(json.dumps(record, ensure_ascii=False, default=str)), "offending": offending}
        return None, reject_row(DATASET_COT, _reject_id(record), stage, problems or ["missing_field: conversation"], details, source, None)
    turns = [{"role": t["role"], "content": t["content"].strip()} for t in turns]
    meta = {k: v for k, v in metadata.items() if k not in ("source", "dataset", "record_id")}
    meta.setdefault("quality_level", settings.quality_level)
    if system:
        meta["system_prompt"] = system
    return conversation_row(turns, meta, DATASET_COT, source, input_file, index), None


def load_cot_file(path: str | Path, relative_name: str, settings: ConversationSettings) -> FileResult:
    """Every record of one cot/*.json (a list) or *.jsonl file, a broken line or item rejected on its own."""
    path = Path(path)
    data = path.read_bytes()
    text = decode_text(data)
    if path.suffix.lower() == ".jsonl":
        records, error = jsonl_records(text), None
    else:
        records, error = json_list_records(text, "conversations", columns_ok=False)
    if error:
        return invalid_file_result(data, relative_name, error, DATASET_COT, "cot_conversations")
    return records_result(records, relative_name, path.name, settings, DATASET_COT, "cot_conversations")


def load_cot(cot_dir: Path, data_dir: Path, settings: ConversationSettings) -> list[FileResult]:
    files, _ = scan_input_folder(cot_dir, data_dir, COT_EXTENSIONS)
    return [load_cot_file(p, p.relative_to(data_dir).as_posix(), settings) for p in files]


# ---------------------------------------------------------------------------------------------------------------
# corpus-wide


def combine_conversation_results(results: Iterable[FileResult], dataset: str, stage: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All files' rows in order; an exact repeat (same record_id) of an accepted record is rejected as duplicate."""
    results = list(results)
    frames = [r.rows for r in results if r.rows is not None and len(r.rows)]
    rows = pd.concat(frames, ignore_index=True) if frames else conversation_frame([])
    reject_frames = [r.rejects for r in results if len(r.rejects)]
    rows, duplicate_rejects = split_exact_repeats(rows, dataset, stage, "record_id", "prompt", "conversation")
    if duplicate_rejects:
        reject_frames.append(rejects_frame(duplicate_rejects))
    rejects = pd.concat(reject_frames, ignore_index=True) if reject_frames else rejects_frame([])
    return rows, rejects


def repeated_questions(rows: pd.DataFrame) -> dict[str, Any]:
    """How often one question has several different answers (the reason splits group by question_id)."""
    if not len(rows):
        return {"questions": 0, "questions_with_several_answers": 0, "max_answers_per_question": 0}
    per_question = rows.groupby("question_id").size()
    return {
        "questions": int(len(per_question)),
        "questions_with_several_answers": int((per_question > 1).sum()),
        "max_answers_per_question": int(per_question.max()),
    }


__all__ = [
    "ConversationSettings",
    "load_counseling",
    "load_counseling_file",
    "load_counseling_hub",
    "load_cot",
    "load_cot_file",
    "combine_conversation_results",
    "normalise_turns",
]
