"""Counseling and chain-of-thought conversations -> the standard conversation format (../shared/DESIGN.md).

Counseling (`Context`, `Response`): from the Hugging Face Hub through `datasets.load_dataset` when
`counseling_hub_id` is set and reachable, else from `counseling/*.{csv,json,jsonl,parquet}`. Falling back is logged
and reported in metadata (`counseling_origin`), never silent. Repeated questions with different answers are all
kept: they share a `question_id` (the split group key), so they cannot leak across splits.

CoT (`cot/*.json` list, `*.jsonl` one per line): each record is `{"conversation": [{role, content}...],
"metadata": {...}}`; `messages` / `conversations` lists and ShareGPT `{from, value}` turns are accepted too. Roles
are normalised to client / therapist (ROLE_ALIASES); a system turn is kept in metadata, not in the turns.

record_id = core.ids.record_id(turns) over the normalised turns with each content stripped of surrounding
whitespace; metadata is not part of the id. An exact repeat of an earlier record (same record_id) is quarantined
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
from pixel_pipeline.ingest.segments import invalid_file_result, parse_json_list, split_exact_repeats, with_dtypes
from pixel_pipeline.ingest.text import CONTROL_CHAR_RE, SURROGATE_RE, bytes_id, snippet

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

    min_chars / max_chars: bounds on each turn's content (stripped); outside -> quarantined.
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


def counseling_records_from_frame(df: pd.DataFrame, input_file: str, source: str, settings: ConversationSettings, stage: str = "counseling_conversations") -> FileResult:
    """Validate `Context` / `Response` rows of one table (a local file or the Hub split)."""
    columns = {str(c).strip().lower(): c for c in df.columns}
    missing = [c for c in ("context", "response") if c not in columns]
    if missing:
        reason = f"missing columns {', '.join(m.capitalize() for m in missing)} (found {', '.join(map(str, df.columns)) or 'none'})"
        raw = json.dumps(df.head(3).to_dict("records"), default=str).encode()
        return invalid_file_result(raw, input_file, reason, DATASET_COUNSELING, stage)
    rows, rejects = [], []
    contexts, responses = df[columns["context"]].tolist(), df[columns["response"]].tolist()
    for index, (context, response) in enumerate(zip(contexts, responses)):
        reasons = [r for r in (_content_problem("Context", context, settings), _content_problem("Response", response, settings)) if r]
        if reasons:
            raw = {"Context": snippet(context), "Response": snippet(response)}
            details = {"input_file": input_file, "row_index": index, "raw": raw, "offending": raw}
            rejects.append(reject_row(DATASET_COUNSELING, _reject_id([context, response]), stage, reasons, details, source, None))
            continue
        turns = [{"role": "client", "content": context.strip()}, {"role": "therapist", "content": response.strip()}]
        rows.append(conversation_row(turns, {"quality_level": settings.quality_level}, DATASET_COUNSELING, source, input_file, index))
    return FileResult(input_file, conversation_frame(rows), rejects_frame(rejects), len(contexts))


def read_table_file(path: Path) -> pd.DataFrame:
    """A counseling file as a DataFrame (csv, json list/object-of-columns, jsonl, parquet). Raises ValueError."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[], encoding="utf-8")
    if suffix == ".parquet":
        return pd.read_parquet(path)
    data = path.read_bytes()
    if suffix == ".jsonl":
        records = []
        for lineno, line in enumerate(data.decode("utf-8").splitlines(), 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"line {lineno} is not valid JSON: {exc.msg}") from exc
        if not all(isinstance(r, dict) for r in records):
            raise ValueError("every JSONL line must be a JSON object")
        return pd.DataFrame.from_records(records)
    parsed = json.loads(data.decode("utf-8-sig"))
    if isinstance(parsed, list):
        if not all(isinstance(r, dict) for r in parsed):
            raise ValueError("a JSON list of objects was expected")
        return pd.DataFrame.from_records(parsed)
    if isinstance(parsed, dict) and all(isinstance(v, list) for v in parsed.values()):
        return pd.DataFrame(parsed)
    raise ValueError(f"expected a JSON list of objects, got a JSON {type(parsed).__name__}")


def load_counseling_file(path: str | Path, relative_name: str, settings: ConversationSettings) -> FileResult:
    path = Path(path)
    try:
        df = read_table_file(path)
    except (ValueError, UnicodeDecodeError, json.JSONDecodeError, OSError, Exception) as exc:  # noqa: BLE001 - any parser error
        reason = f"unreadable {path.suffix.lstrip('.')} ({type(exc).__name__}: {snippet(str(exc), 160)})"
        return invalid_file_result(path.read_bytes(), relative_name, reason, DATASET_COUNSELING, "counseling_conversations")
    return counseling_records_from_frame(df, relative_name, path.name, settings)


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
    files = sorted(p for p in counseling_dir.glob("*") if p.is_file() and p.suffix.lower() in COUNSELING_EXTENSIONS) if counseling_dir.is_dir() else []
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
        turns.append({"role": canonical, "content": content})
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
    if not isinstance(record, dict):
        details = {"input_file": input_file, "row_index": index, "raw": snippet(record)}
        reason = f"not_an_object: expected a JSON object, got {type(record).__name__}"
        return None, reject_row(DATASET_COT, _reject_id(record), stage, [reason], details, file_name, None)
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
    path = Path(path)
    data = path.read_bytes()
    stage = "cot_conversations"
    if path.suffix.lower() == ".jsonl":
        try:
            text = data.decode("utf-8-sig", errors="surrogateescape")
        except UnicodeDecodeError as exc:  # pragma: no cover - surrogateescape never raises
            return invalid_file_result(data, relative_name, str(exc), DATASET_COT, stage)
        records: list[Any] = []
        line_problems: dict[int, str] = {}
        for lineno, line in enumerate(text.splitlines()):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                line_problems[len(records)] = f"invalid_json_line: line {lineno + 1}: {exc.msg}"
                records.append(_BrokenLine(line))
    else:
        parsed, error = parse_json_list(data)
        if error:
            return invalid_file_result(data, relative_name, error.replace("segments", "conversations"), DATASET_COT, stage)
        records, line_problems = parsed, {}
    rows, rejects = [], []
    for index, record in enumerate(records):
        if index in line_problems:
            details = {"input_file": relative_name, "row_index": index, "raw": snippet(record.line)}
            rejects.append(reject_row(DATASET_COT, _reject_id(record.line), stage, [line_problems[index]], details, path.name, None))
            continue
        row, reject = cot_record(record, index, relative_name, settings, stage)
        if row is not None:
            rows.append(row)
        else:
            rejects.append(reject)
    return FileResult(relative_name, conversation_frame(rows), rejects_frame(rejects), len(records))


@dataclass
class _BrokenLine:
    line: str


def load_cot(cot_dir: Path, data_dir: Path, settings: ConversationSettings) -> list[FileResult]:
    files = sorted(p for p in cot_dir.glob("*") if p.is_file() and p.suffix.lower() in COT_EXTENSIONS) if cot_dir.is_dir() else []
    return [load_cot_file(p, p.relative_to(data_dir).as_posix(), settings) for p in files]


# ---------------------------------------------------------------------------------------------------------------
# corpus-wide


def combine_conversation_results(results: Iterable[FileResult], dataset: str, stage: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All files' rows in order; an exact repeat (same record_id) of an accepted record is quarantined as duplicate."""
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
