"""Synthetic exports in the layout of docs/CONTRACTS.md, for tests and benchmarks when no real exports exist.

The texts are templated, varied in length (so packing and padding are exercised) and labelled by style with
style-specific wording (so the router has something to learn). They are not training data for a real model.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from pixel_pipeline.core.records import STYLES
from pixel_pipeline.splits.assign import STAGE_NAMES, STAGE_VOICE
from pixel_pipeline.splits.system_prompts import system_prompt

STAGES = tuple(STAGE_NAMES.values())

_TOPICS = ["anxiety at work", "grief after losing my father", "setting boundaries with my mother", "panic attacks",
           "feeling numb", "people-pleasing", "arguing with my partner", "burnout", "loneliness", "shame about my past",
           "trouble sleeping", "anger at my kids", "a breakup", "social anxiety", "perfectionism"]
_QUESTIONS = {
    "therapeutic": ["What might be underneath my {t}?", "Why do I keep repeating the same pattern with {t}?",
                    "How do I heal the part of me that struggles with {t}?"],
    "educational": ["Can you explain the psychology behind {t}?", "What does research say about {t}?",
                    "How does the nervous system react during {t}?"],
    "empathetic": ["I feel so alone with {t}. Is that normal?", "I'm exhausted and hurting because of {t}.",
                   "Nobody understands how hard {t} is for me."],
    "practical": ["What are concrete steps to deal with {t}?", "Give me a script for handling {t}.",
                  "What can I do today about {t}?"],
}
_ANSWERS = {
    "therapeutic": "Let's gently explore what {t} protects you from. Often the pattern began as a way to stay safe. ",
    "educational": "Research shows that {t} involves the stress response: the amygdala signals threat and cortisol rises. ",
    "empathetic": "I hear how much pain {t} brings you, and it makes complete sense that you feel this way. ",
    "practical": "Step one: notice {t} early. Step two: breathe slowly for one minute. Step three: write one next action. ",
}


def _record(style: str | None, rng: random.Random, dataset: str, stage: str | None, max_repeats: int = 6) -> dict:
    topic = rng.choice(_TOPICS)
    s = style or rng.choice(STYLES)
    question = rng.choice(_QUESTIONS[s]).format(t=topic)
    # log-uniform answer lengths: many short answers, a long tail, like real counseling responses
    answer = (_ANSWERS[s].format(t=topic)) * max(1, int(round(max_repeats ** rng.random())))
    if dataset == "cot":
        answer = f"Let me think step by step about {topic}. First, ... Therefore, " + answer
    return {"messages": [{"role": "system", "content": system_prompt(style)},
                         {"role": "user", "content": question},
                         {"role": "assistant", "content": answer.strip()}],
            "metadata": {"dataset": dataset, "stage": stage, "style": s, "expert": STYLES.index(s)}}


def _write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def write_synthetic_exports(exports_dir: str | Path, n_train: int = 24, n_validation: int = 8, seed: int = 0,
                            max_repeats: int = 6) -> Path:
    """stages/, experts/ and plans/ with `n_train` / `n_validation` pairs per file."""
    exports = Path(exports_dir)
    rng = random.Random(seed)
    datasets = dict(zip(STAGES, ("counseling", "cot", "segments")))
    for stage in STAGES:
        for split, n in (("train", n_train), ("validation", n_validation)):
            style = None if stage != STAGE_NAMES[STAGE_VOICE] else "therapeutic"
            _write(exports / "stages" / stage / f"{split}.jsonl",
                   [_record(style, rng, datasets[stage], stage, max_repeats) for _ in range(n)])
    for style in STYLES:
        for split, n in (("train", n_train), ("validation", n_validation)):
            _write(exports / "experts" / style / f"{split}.jsonl", [_record(style, rng, "segments", None) for _ in range(n)])
    for plan in ("mixed", "curriculum"):
        for split, n in (("train", n_train), ("validation", n_validation)):
            _write(exports / "plans" / plan / f"{split}.jsonl",
                   [_record(None, rng, rng.choice(list(datasets.values())), None) for _ in range(n)])
    return exports
