"""From exported messages JSONL to packed, padding-free batches with the loss on assistant tokens only.

* Tokenisation uses the base model's own chat template. The assistant mask is computed from rendered prefixes
  (render the conversation up to each assistant turn with the generation prompt, then up to the end of that turn):
  it works for any template whose prompt rendering is a prefix of the full rendering (ChatML, Llama 3, Qwen...),
  with or without `{% generation %}` markers.
* Pairs longer than `max_seq_length` are truncated from the end (`overlong="truncate"`, default) or dropped
  (`overlong="drop"`); a truncated pair whose assistant tokens were all cut is dropped. Both are counted.
* Packing: best-fit-decreasing into rows of at most `max_seq_length` tokens. Each row is a concatenation of whole
  sequences with `position_ids` restarting at 0 per sequence and no attention mask: transformers then builds a
  block-diagonal causal mask (SDPA / eager) or uses FlashAttention's varlen path, so tokens never attend across
  sequences; the first label of every sequence is masked so no loss crosses a boundary either.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

IGNORE_INDEX = -100
VALID_ROLES = {"system", "user", "assistant"}
OVERLONG_POLICIES = ("truncate", "drop")


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]  # IGNORE_INDEX on prompt tokens

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def n_target_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE_INDEX)


@dataclass
class DatasetStats:
    """Accounting for one split: rows read = rows kept + rows invalid + rows dropped."""

    rows_read: int = 0
    rows_kept: int = 0
    rows_invalid: int = 0
    rows_truncated: int = 0
    rows_dropped_overlong: int = 0
    tokens: int = 0
    target_tokens: int = 0
    invalid_reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def read_messages_jsonl(paths: Sequence[str | Path]) -> tuple[list[list[dict[str, str]]], DatasetStats]:
    """Conversations from messages-format JSONL files; malformed lines are counted with a reason, not skipped."""
    stats = DatasetStats()
    conversations: list[list[dict[str, str]]] = []
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                stats.rows_read += 1
                reason = None
                try:
                    record = json.loads(line)
                    messages = record.get("messages") if isinstance(record, dict) else None
                    reason = _invalid_reason(messages)
                except json.JSONDecodeError:
                    reason = "invalid_json"
                if reason:
                    stats.rows_invalid += 1
                    stats.invalid_reasons[reason] = stats.invalid_reasons.get(reason, 0) + 1
                    continue
                conversations.append([{"role": m["role"], "content": m["content"]} for m in messages])
    return conversations, stats


def _invalid_reason(messages: Any) -> str | None:
    if not isinstance(messages, list) or not messages:
        return "no_messages"
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in VALID_ROLES or not isinstance(m.get("content"), str):
            return "bad_message"
    if not any(m["role"] == "assistant" and m["content"].strip() for m in messages):
        return "no_assistant_content"
    return None


def user_prompts_jsonl(path: str | Path) -> list[str]:
    """The last user message of every conversation in a messages JSONL file (router training text)."""
    conversations, _ = read_messages_jsonl([path])
    prompts = []
    for conv in conversations:
        users = [m["content"] for m in conv if m["role"] == "user"]
        if users:
            prompts.append(users[-1])
    return prompts


def _render_ids(tokenizer, messages: list[dict[str, str]], add_generation_prompt: bool) -> list[int]:
    out = tokenizer.apply_chat_template(
        messages, tokenize=True, add_generation_prompt=add_generation_prompt, return_dict=True
    )
    return list(out["input_ids"])


def tokenize_conversation(tokenizer, messages: list[dict[str, str]]) -> Example:
    """Token ids of the whole conversation, labels only on assistant turns (their content and end token)."""
    full = _render_ids(tokenizer, messages, add_generation_prompt=False)
    labels = [IGNORE_INDEX] * len(full)
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = len(_render_ids(tokenizer, messages[:i], add_generation_prompt=True)) if i else 0
        end = len(_render_ids(tokenizer, messages[: i + 1], add_generation_prompt=False))
        # Trailing whitespace after the end-of-turn token is template formatting, not something to learn.
        while end > start and tokenizer.decode(full[end - 1 : end]).strip() == "":
            end -= 1
        labels[start:end] = full[start:end]
    return Example(input_ids=full, labels=labels)


def tokenize_conversations(
    tokenizer,
    conversations: Iterable[list[dict[str, str]]],
    max_seq_length: int,
    overlong: str = "truncate",
    stats: DatasetStats | None = None,
) -> tuple[list[Example], DatasetStats]:
    if overlong not in OVERLONG_POLICIES:
        raise ValueError(f"overlong must be one of {OVERLONG_POLICIES}, got {overlong!r}")
    stats = stats or DatasetStats()
    examples = []
    for messages in conversations:
        ex = tokenize_conversation(tokenizer, messages)
        if len(ex) > max_seq_length:
            if overlong == "drop":
                stats.rows_dropped_overlong += 1
                continue
            ex = Example(ex.input_ids[:max_seq_length], ex.labels[:max_seq_length])
            if ex.n_target_tokens == 0:  # the prompt alone filled the window
                stats.rows_dropped_overlong += 1
                continue
            stats.rows_truncated += 1
        examples.append(ex)
        stats.rows_kept += 1
        stats.tokens += len(ex)
        stats.target_tokens += ex.n_target_tokens
    return examples, stats


def pack_examples(lengths: Sequence[int], max_seq_length: int) -> list[list[int]]:
    """Best-fit-decreasing bin packing of example indices into rows of at most `max_seq_length` tokens.

    Longest first, each into the fullest row that still has room (bisect over rows sorted by free space), so it
    runs in O(n log n) and stays fast at hundreds of thousands of pairs. Deterministic for given lengths.
    """
    import bisect

    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    rows: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (free tokens, row index), ascending
    for i in order:
        n = lengths[i]
        if n > max_seq_length:
            raise ValueError(f"example {i} has {n} tokens > max_seq_length {max_seq_length}; tokenize first")
        k = bisect.bisect_left(free, (n, -1))
        if k < len(free):
            space, r = free.pop(k)
            rows[r].append(i)
            bisect.insort(free, (space - n, r))
        else:
            rows.append([i])
            bisect.insort(free, (max_seq_length - n, len(rows) - 1))
    return rows


@dataclass
class Batch:
    input_ids: Any  # LongTensor [rows, length]
    labels: Any
    position_ids: Any
    n_tokens: int  # real (non-padding) tokens
    n_padding: int
    n_target_tokens: int
    n_sequences: int


def collate_rows(examples: Sequence[Example], rows: Sequence[Sequence[int]], pad_token_id: int) -> Batch:
    """Rows of packed examples -> tensors. Rows shorter than the longest are padded with a padding block whose
    positions restart at 0, so it forms a sequence of its own that nothing attends to and no loss is taken on."""
    import torch

    width = max(sum(len(examples[i]) for i in row) for row in rows)
    ids, labels, positions = [], [], []
    n_tokens = n_targets = n_seqs = 0
    for row in rows:
        r_ids, r_labels, r_pos = [], [], []
        for i in row:
            ex = examples[i]
            r_ids += ex.input_ids
            r_labels += [IGNORE_INDEX] + ex.labels[1:]  # never predict a sequence's first token from the previous one
            r_pos += list(range(len(ex)))
            n_targets += sum(1 for x in ex.labels[1:] if x != IGNORE_INDEX)
            n_seqs += 1
        n_tokens += len(r_ids)
        pad = width - len(r_ids)
        r_ids += [pad_token_id] * pad
        r_labels += [IGNORE_INDEX] * pad
        r_pos += list(range(pad))
        ids.append(r_ids)
        labels.append(r_labels)
        positions.append(r_pos)
    return Batch(
        input_ids=torch.tensor(ids, dtype=torch.long),
        labels=torch.tensor(labels, dtype=torch.long),
        position_ids=torch.tensor(positions, dtype=torch.long),
        n_tokens=n_tokens,
        n_padding=len(rows) * width - n_tokens,
        n_target_tokens=n_targets,
        n_sequences=n_seqs,
    )


def epoch_batches(
    examples: Sequence[Example],
    max_seq_length: int,
    micro_batch_size: int,
    seed: int,
    epoch: int,
    packing: bool = True,
    shuffle: bool = True,
) -> list[list[list[int]]]:
    """The micro-batches of one epoch as lists of rows of example indices.

    A pure function of (lengths, seed, epoch) so a resumed run replays exactly the same order. With packing the
    packed rows are shuffled; without it each example is its own row (rows of similar length are not grouped, the
    honest unpacked baseline). `shuffle=False` keeps file order (curriculum plans).
    """
    lengths = [len(e) for e in examples]
    if packing:
        if shuffle:
            rng = random.Random(seed * 100_003 + epoch)
            order = list(range(len(examples)))
            rng.shuffle(order)
            rows_local = pack_examples([lengths[i] for i in order], max_seq_length)
            rows = [[order[i] for i in row] for row in rows_local]
            rng.shuffle(rows)
        else:
            rows = _pack_in_order(lengths, max_seq_length)
    else:
        rows = [[i] for i in range(len(examples))]
        if shuffle:
            random.Random(seed * 100_003 + epoch).shuffle(rows)
    return [rows[i : i + micro_batch_size] for i in range(0, len(rows), micro_batch_size)]


def _pack_in_order(lengths: Sequence[int], max_seq_length: int) -> list[list[int]]:
    """Greedy packing that keeps file order (for curricula, where order is the point)."""
    rows: list[list[int]] = []
    used = max_seq_length + 1
    for i, n in enumerate(lengths):
        if used + n > max_seq_length:
            rows.append([])
            used = 0
        rows[-1].append(i)
        used += n
    return rows
