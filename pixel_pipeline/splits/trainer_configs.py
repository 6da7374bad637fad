"""Ready-to-run configs for other trainers, written beside the exports (`exports/trainer_configs/`).

One config per run — the three stages and the four experts — for TRL (`trl sft --config`), Axolotl, LLaMA-Factory
(`dataset_info.json` + a training YAML) and LitGPT (a command and a prompt style that keeps the system prompt).
Every path inside is relative to the exports folder: run the commands from there (`cd exports`). ShareGPT and LitGPT
need their own row shapes, so each run's files are also written in those shapes under `trainer_configs/data/`.

Stages chain in our trainer (stage N+1 continues stage N's adapter); these tools train each config from
`model_name_or_path`, so to chain with them point a stage's model at the previous stage's merged output.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pixel_pipeline.core.io import write_json, write_jsonl, write_text
from pixel_pipeline.core.records import STYLES
from pixel_pipeline.splits.assign import STAGE_NAMES

CONFIG_DIR = "trainer_configs"
STAGE_RUNS = tuple(STAGE_NAMES.values())
# Hub ids for the names our own trainer resolves locally; other tools download these.
HUB_IDS = {"smollm2-135m-instruct": "HuggingFaceTB/SmolLM2-135M-Instruct",
           "pixel-tiny-llama": "HuggingFaceTB/SmolLM2-135M-Instruct"}  # the embedded model exists only here
LITGPT_SPLITS = {"train": "train", "validation": "val", "test": "test"}
LORA = {"r": 16, "alpha": 32, "dropout": 0.05}
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
EXPERT_EPOCHS, EXPERT_LEARNING_RATE = 2, 1e-4

# LitGPT's JSON rows carry `system`; this prompt style renders it (LitGPT passes every field of a row to `apply`).
LITGPT_PROMPT_STYLE = '''"""ChatML with the row's system prompt, for `litgpt finetune_lora --data.prompt_style`."""
from litgpt.prompts import PromptStyle


class PixelChatML(PromptStyle):
    def apply(self, prompt: str, *, system: str = "", **kwargs) -> str:
        head = f"<|im_start|>system\\n{system}<|im_end|>\\n" if system else ""
        return f"{head}<|im_start|>user\\n{prompt}<|im_end|>\\n<|im_start|>assistant\\n"

    def stop_tokens(self, tokenizer):
        return ([tokenizer.eos_id], [tokenizer.token_to_id("<|im_end|>")])
'''


def runs(exports_dir: Path, stage_epochs: Sequence[int], stage_learning_rates: Sequence[float]) -> list[dict[str, Any]]:
    """Every run whose train file has rows: its name, data folder (relative), epochs and learning rate."""
    found = []
    for i, stage in enumerate(STAGE_RUNS):
        found.append({"name": stage, "folder": f"stages/{stage}", "epochs": stage_epochs[i],
                      "learning_rate": stage_learning_rates[i]})
    for style in STYLES:
        found.append({"name": f"expert_{style}", "folder": f"experts/{style}", "epochs": EXPERT_EPOCHS,
                      "learning_rate": EXPERT_LEARNING_RATE})
    return [r for r in found if _has_rows(exports_dir / r["folder"] / "train.jsonl")]


def _has_rows(path: Path) -> bool:
    """A run with an empty train file (e.g. no voice source in the corpus) gets no config: every tool would fail."""
    return path.exists() and any(line.strip() for line in path.open(encoding="utf-8"))


def _read_messages(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


SHAREGPT_ROLES = {"system": "system", "user": "human", "assistant": "gpt"}


def sharegpt_row(messages: list[dict[str, str]]) -> dict[str, Any]:
    """ShareGPT with the system prompt as the first turn (`from: system`): Axolotl's chat_template roles and
    LLaMA-Factory's system_tag both read it there, so one file serves both."""
    return {"conversations": [{"from": SHAREGPT_ROLES[m["role"]], "value": m["content"]} for m in messages]}


def _litgpt_row(messages: list[dict[str, str]]) -> dict[str, str]:
    """Single turn (LitGPT's JSON is Alpaca-shaped): the last user turn and the answer to it, plus the system prompt."""
    system = next((m["content"] for m in messages if m["role"] == "system"), "")
    last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
    answer = next(m["content"] for m in messages[last_user:] if m["role"] == "assistant")
    earlier = "\n\n".join(f"{m['role']}: {m['content']}" for m in messages[:last_user] if m["role"] != "system")
    return {"instruction": messages[last_user]["content"], "input": earlier, "output": answer, "system": system}


def write_trainer_configs(exports_dir: str | Path, base_model: str, max_seq_length: int,
                          stage_epochs: Sequence[int], stage_learning_rates: Sequence[float]) -> dict[str, Any]:
    """Write every config and its data copies; returns {tool: [files]} for the manifest and the card."""
    exports_dir = Path(exports_dir)
    root = exports_dir / CONFIG_DIR
    model = HUB_IDS.get(base_model, base_model)
    written: dict[str, list[str]] = {"trl": [], "axolotl": [], "llamafactory": [], "litgpt": []}
    dataset_info: dict[str, Any] = {}
    commands = []
    for run in runs(exports_dir, stage_epochs, stage_learning_rates):
        name, folder = run["name"], run["folder"]
        splits = {s: _read_messages(exports_dir / folder / f"{s}.jsonl") for s in ("train", "validation", "test")}
        splits = {s: rows for s, rows in splits.items() if rows or s == "train"}
        sharegpt = {}
        for split, rows in splits.items():
            path = f"{CONFIG_DIR}/data/sharegpt/{name}/{split}.jsonl"
            write_jsonl([sharegpt_row(r["messages"]) for r in rows], exports_dir / path)
            sharegpt[split] = path
            litgpt = exports_dir / CONFIG_DIR / "data" / "litgpt" / name / f"{LITGPT_SPLITS[split]}.json"
            write_json([_litgpt_row(r["messages"]) for r in rows], litgpt)
        has_validation = "validation" in splits
        out = f"runs/{name}"
        trl = {"model_name_or_path": model, "dataset_name": folder, "dataset_train_split": "train",
               "output_dir": out, "num_train_epochs": run["epochs"], "learning_rate": run["learning_rate"],
               "lr_scheduler_type": "cosine", "warmup_ratio": 0.1, "max_length": max_seq_length, "packing": True,
               "assistant_only_loss": True, "use_peft": True, "lora_r": LORA["r"], "lora_alpha": LORA["alpha"],
               "lora_dropout": LORA["dropout"], "lora_target_modules": LORA_TARGETS, "bf16": True,
               "per_device_train_batch_size": 2, "gradient_accumulation_steps": 4, "logging_steps": 10}
        if has_validation:
            trl.update({"dataset_test_split": "validation", "eval_strategy": "epoch"})
        written["trl"].append(_yaml(trl, root / "trl" / f"{name}.yaml"))

        def sharegpt_block(path: str) -> dict[str, Any]:
            return {"path": path, "ds_type": "json", "type": "chat_template", "field_messages": "conversations",
                    "message_property_mappings": {"role": "from", "content": "value"},
                    "roles": {"user": ["human"], "assistant": ["gpt"], "system": ["system"]},
                    "roles_to_train": ["assistant"]}

        axolotl = {"base_model": model, "chat_template": "tokenizer_default", "datasets": [sharegpt_block(sharegpt["train"])],
                   "sequence_len": max_seq_length, "sample_packing": True, "adapter": "lora", "lora_r": LORA["r"],
                   "lora_alpha": LORA["alpha"], "lora_dropout": LORA["dropout"], "lora_target_modules": LORA_TARGETS,
                   "num_epochs": run["epochs"], "learning_rate": run["learning_rate"], "lr_scheduler": "cosine",
                   "warmup_ratio": 0.1, "micro_batch_size": 2, "gradient_accumulation_steps": 4, "bf16": "auto",
                   "output_dir": f"{out}-axolotl"}
        if has_validation:
            axolotl["test_datasets"] = [{**sharegpt_block(sharegpt["validation"]), "split": "train"}]
        written["axolotl"].append(_yaml(axolotl, root / "axolotl" / f"{name}.yaml"))

        for split, path in sharegpt.items():
            dataset_info[f"{name}_{split}"] = {
                "file_name": str(Path(path).relative_to(f"{CONFIG_DIR}/data/sharegpt")), "formatting": "sharegpt",
                "columns": {"messages": "conversations"},
                "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
                         "system_tag": "system"}}
        factory = {"model_name_or_path": model, "stage": "sft", "do_train": True, "finetuning_type": "lora",
                   "lora_rank": LORA["r"], "lora_alpha": LORA["alpha"], "lora_dropout": LORA["dropout"],
                   "lora_target": "all", "dataset_dir": f"{CONFIG_DIR}/data/sharegpt", "dataset": f"{name}_train",
                   "template": "chatml", "cutoff_len": max_seq_length, "packing": False,
                   "num_train_epochs": run["epochs"], "learning_rate": run["learning_rate"],
                   "lr_scheduler_type": "cosine", "warmup_ratio": 0.1, "per_device_train_batch_size": 2,
                   "gradient_accumulation_steps": 4, "bf16": True, "output_dir": f"{out}-llamafactory"}
        if has_validation:
            factory.update({"eval_dataset": f"{name}_validation", "eval_strategy": "epoch"})
        written["llamafactory"].append(_yaml(factory, root / "llamafactory" / f"{name}.yaml"))

        litgpt_dir = f"{CONFIG_DIR}/data/litgpt/{name}"
        commands.append(
            f"PYTHONPATH={CONFIG_DIR}/litgpt litgpt finetune_lora checkpoints/{model} --data JSON "
            f"--data.json_path {litgpt_dir} --data.prompt_style pixel_prompt_style.PixelChatML "
            f"--train.epochs {run['epochs']} --optimizer.lr {run['learning_rate']} --train.max_seq_length "
            f"{max_seq_length} --out_dir {out}-litgpt")
    write_json(dataset_info, root / "data" / "sharegpt" / "dataset_info.json")
    written["llamafactory"].append(str((root / "data" / "sharegpt" / "dataset_info.json").relative_to(exports_dir)))
    write_text(LITGPT_PROMPT_STYLE, root / "litgpt" / "pixel_prompt_style.py")
    commands_text = (f"# run from the exports folder; first: litgpt download {model}\n" + "\n".join(commands) + "\n")
    write_text(commands_text, root / "litgpt" / "commands.sh")
    written["litgpt"] += [f"{CONFIG_DIR}/litgpt/commands.sh", f"{CONFIG_DIR}/litgpt/pixel_prompt_style.py"]
    write_text(_readme(model, written), root / "README.md")
    return {tool: [str(Path(f)) for f in files] for tool, files in written.items()}


def _yaml(data: Mapping[str, Any], path: Path) -> str:
    """YAML written as JSON (JSON is valid YAML 1.2): no PyYAML needed to write, any YAML loader reads it."""
    write_text("# generated by pixel_pipeline.splits.trainer_configs; paths are relative to the exports folder\n"
               + json.dumps(data, indent=2) + "\n", path)
    return str(path.relative_to(path.parents[2]))


def _readme(model: str, written: Mapping[str, list[str]]) -> str:
    lines = ["# Trainer configs", "", f"Every config trains a LoRA adapter on `{model}`; run from the exports folder.",
             "", "```bash", "cd exports",
             "trl sft --config trainer_configs/trl/stage1_counseling.yaml",
             "axolotl train trainer_configs/axolotl/stage1_counseling.yaml",
             "llamafactory-cli train trainer_configs/llamafactory/stage1_counseling.yaml",
             "bash trainer_configs/litgpt/commands.sh   # one line per run; needs `litgpt download` first", "```", "",
             "Stages and experts are separate configs; to chain stages, point stage N+1's model at stage N's merged "
             "output. LitGPT rows are single-turn (earlier turns go to `input`); the other tools get every turn.", ""]
    for tool, files in written.items():
        lines.append(f"- {tool}: " + ", ".join(f"`{f}`" for f in files))
    return "\n".join(lines) + "\n"
