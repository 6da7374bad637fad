"""One `splits` row -> the record each trainer's format expects.

- messages (TRL / OpenAI chat): `{"messages": [system?, user, assistant, ...], "metadata": {...}}` (docs/CONTRACTS.md);
  multi-turn conversations keep every turn (`DEFAULT_CONVERSATION_TURNS`), so a trainer learns every therapist turn.
- LitGPT JSON: `{"instruction", "input", "output"}` — `litgpt finetune --data JSON --data.json_path DIR` reads
  `DIR/train.json` and `DIR/val.json`, each a JSON list of such dicts ('instruction' and 'output' required).
- ShareGPT: `{"conversations": [{"from": "human"|"gpt", "value"}], "system": ...}` (Axolotl, LLaMA-Factory).
- The seeds' standard conversation format: client / therapist turns plus metadata.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from pixel_pipeline.core.records import DATASET_SEGMENTS, id_column
from pixel_pipeline.splits.system_prompts import system_prompt


def clean(value: Any) -> Any:
    """Parquet values -> plain JSON values (NaN/NA -> None, numpy scalars/arrays -> Python)."""
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        return [clean(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    try:
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return None
    except ImportError:  # pragma: no cover
        pass
    return value


def _int_or_none(value: Any) -> int | None:
    value = clean(value)
    return None if value is None else int(value)


def _float_or_none(value: Any) -> float | None:
    value = clean(value)
    return None if value is None else float(value)


def pair_metadata(row: Mapping[str, Any]) -> dict[str, Any]:
    """The metadata docs/CONTRACTS.md fixes for every exported pair (plus split and augmentation)."""
    dataset = row["dataset"]
    key = id_column(dataset)
    flags = clean(row.get("crisis_flags"))
    meta = {
        "dataset": dataset,
        "stage": _int_or_none(row.get("stage")),
        "expert": _int_or_none(row.get("expert")),
        "style": clean(row.get("style")),
        key: clean(row.get(key)),
        "source": clean(row.get("source")),
        "file": clean(row.get("file")),
        "scores": {"quality": _float_or_none(row.get("quality")), "alignment": _float_or_none(row.get("alignment")),
                   "quality_classifier": _float_or_none(row.get("quality_classifier"))},
        "crisis_flags": [str(f) for f in flags] if isinstance(flags, list) else [],
        "split": row.get("split"),
    }
    if clean(row.get("generator")):
        meta["generator"] = clean(row.get("generator"))  # the prompt's source (prompts.generators)
    if clean(row.get("shaping")):
        meta["shaping"] = clean(row.get("shaping"))  # what curation cut from the segment (curation.shaping)
    if bool(clean(row.get("augmented")) or False):
        meta["augmented"] = True
    return meta


CONVERSATION_TURNS = ("pair", "all")
# Multi-turn conversations keep every turn by default: a (first question, final answer) pair can answer a later client
# turn that is not in the prompt. "pair" remains for trainers or studies that want docs/CONTRACTS.md's single pair.
DEFAULT_CONVERSATION_TURNS = "all"
_CHAT_ROLE = {"client": "user", "therapist": "assistant"}


def conversation_turns_of(row: Mapping[str, Any]) -> tuple[list[dict[str, str]] | None, dict[str, Any]]:
    """The (redacted) turns and metadata of a conversation row's standard-format JSON, or (None, {})."""
    raw = clean(row.get("conversation"))
    if not isinstance(raw, str) or not raw.strip():
        return None, {}
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError:
        return None, {}
    if not isinstance(parsed, dict) or not isinstance(parsed.get("conversation"), list):
        return None, {}
    turns = [{"role": str(t.get("role")), "content": str(t.get("content"))}
             for t in parsed["conversation"] if isinstance(t, dict)]
    meta = parsed.get("metadata") if isinstance(parsed.get("metadata"), dict) else {}
    return turns or None, meta


def _alternating_chat(turns: list[dict[str, str]] | None) -> list[dict[str, str]] | None:
    """client/therapist turns as user/assistant when they alternate, start with the client and end with the therapist."""
    if not turns or len(turns) < 2 or len(turns) % 2:
        return None
    expected = ["client", "therapist"] * (len(turns) // 2)
    if [t["role"] for t in turns] != expected or not all(t["content"].strip() for t in turns):
        return None
    return [{"role": _CHAT_ROLE[t["role"]], "content": t["content"]} for t in turns]


def chat_messages(
    row: Mapping[str, Any], include_system_prompt: bool = True, conversation_turns: str = DEFAULT_CONVERSATION_TURNS
) -> list[dict[str, str]]:
    """System (per expert), then the pair — or, with conversation_turns="all", every turn of a multi-turn
    conversation that alternates cleanly (the pair of first question and final answer can be incoherent there)."""
    if conversation_turns not in CONVERSATION_TURNS:
        raise ValueError(f"conversation_turns must be one of {CONVERSATION_TURNS}, got {conversation_turns!r}")
    messages = []
    if include_system_prompt:
        style = clean(row.get("style")) if row["dataset"] == DATASET_SEGMENTS else None
        messages.append({"role": "system", "content": system_prompt(style)})
    full = _alternating_chat(conversation_turns_of(row)[0]) if conversation_turns == "all" else None
    if full and len(full) > 2:
        return messages + full
    messages.append({"role": "user", "content": str(row["prompt"])})
    messages.append({"role": "assistant", "content": str(row["response"])})
    return messages


def messages_record(
    row: Mapping[str, Any], include_system_prompt: bool = True, conversation_turns: str = DEFAULT_CONVERSATION_TURNS
) -> dict[str, Any]:
    return {"messages": chat_messages(row, include_system_prompt, conversation_turns), "metadata": pair_metadata(row)}


def litgpt_record(row: Mapping[str, Any]) -> dict[str, str]:
    """LitGPT's Alpaca-shaped, single-turn sample; LitGPT adds its own prompt style, so no system prompt here."""
    return {"instruction": str(row["prompt"]), "input": "", "output": str(row["response"])}


def sharegpt_record(messages_rec: Mapping[str, Any]) -> dict[str, Any]:
    meta = messages_rec["metadata"]
    rec: dict[str, Any] = {}
    system = [m["content"] for m in messages_rec["messages"] if m["role"] == "system"]
    if system:
        rec["system"] = system[0]
    rec["conversations"] = [
        {"from": "human" if m["role"] == "user" else "gpt", "value": m["content"]}
        for m in messages_rec["messages"]
        if m["role"] in ("user", "assistant")
    ]
    rec["id"] = meta.get("segment_id") or meta.get("record_id")
    return rec


def conversation_record(row: Mapping[str, Any], messages_rec: Mapping[str, Any]) -> dict[str, Any]:
    """Standard format. Conversations keep all their (redacted) turns; segments become one client/therapist pair."""
    turns, original_meta = conversation_turns_of(row)
    if not turns:
        turns = [
            {"role": "client", "content": str(row["prompt"])},
            {"role": "therapist", "content": str(row["response"])},
        ]
    meta = {**original_meta, **messages_rec["metadata"]}
    if clean(row.get("quality_band")) is not None:
        meta.setdefault("quality_level", clean(row.get("quality_band")))
    return {"conversation": turns, "metadata": meta}


def hf_row(messages_rec: Mapping[str, Any]) -> dict[str, Any]:
    """Flat columns for the Hugging Face dataset (filterable without parsing nested metadata)."""
    meta = messages_rec["metadata"]
    return {
        "messages": messages_rec["messages"],
        "dataset": meta["dataset"],
        "stage": meta["stage"],
        "expert": meta["expert"],
        "style": meta["style"],
        "segment_id": meta.get("segment_id"),
        "record_id": meta.get("record_id"),
        "source": meta["source"],
        "file": meta["file"],
        "quality": meta["scores"]["quality"],
        "alignment": meta["scores"]["alignment"],
        "crisis_flags": meta["crisis_flags"],
        "augmented": bool(meta.get("augmented", False)),
        "n_tokens": meta.get("n_tokens"),
        "exceeds_max_length": meta.get("exceeds_max_length"),
    }


def hf_features():
    from datasets import Features, List, Value

    return Features(
        {
            "messages": List({"role": Value("string"), "content": Value("string")}),
            "dataset": Value("string"),
            "stage": Value("int64"),
            "expert": Value("int64"),
            "style": Value("string"),
            "segment_id": Value("string"),
            "record_id": Value("string"),
            "source": Value("string"),
            "file": Value("string"),
            "quality": Value("float64"),
            "alignment": Value("float64"),
            "crisis_flags": List(Value("string")),
            "augmented": Value("bool"),
            "n_tokens": Value("int64"),
            "exceeds_max_length": Value("bool"),
        }
    )
