"""Configs for TRL, Axolotl, LLaMA-Factory and LitGPT beside the exports: each names files that exist and that the
tool's data loading reads back as the conversations we exported (every turn, the system prompt kept)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from pixel_pipeline.splits.trainer_configs import CONFIG_DIR, STAGE_RUNS, write_trainer_configs
from pixel_pipeline.testing.training_exports import write_synthetic_exports


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> Path:
    exports = write_synthetic_exports(tmp_path_factory.mktemp("exports"), n_train=4, n_validation=2, seed=9)
    multi = {"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q1"},
                          {"role": "assistant", "content": "A1"}, {"role": "user", "content": "Q2"},
                          {"role": "assistant", "content": "A2"}], "metadata": {}}
    with open(exports / "stages" / "stage2_reasoning" / "train.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(multi) + "\n")
    write_trainer_configs(exports, "smollm2-135m-instruct", 1024, (3, 2, 2), (2e-4, 1e-4, 5e-5))
    return exports


def messages_of(exports: Path, folder: str, split: str) -> list[list[dict]]:
    lines = (exports / folder / f"{split}.jsonl").read_text().splitlines()
    return [json.loads(line)["messages"] for line in lines if line.strip()]


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_every_stage_and_expert_gets_a_config_for_each_tool(exports):
    root = exports / CONFIG_DIR
    names = [*STAGE_RUNS, "expert_therapeutic", "expert_educational", "expert_empathetic", "expert_practical"]
    for tool in ("trl", "axolotl", "llamafactory"):
        assert sorted(p.stem for p in (root / tool).glob("*.yaml")) == sorted(names), tool
    assert len((root / "litgpt" / "commands.sh").read_text().strip().splitlines()) == 1 + len(names)
    trl = load(root / "trl" / "stage1_counseling.yaml")
    assert trl["model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert trl["dataset_test_split"] == "validation" and trl["assistant_only_loss"] is True


def test_a_run_without_training_pairs_gets_no_config(tmp_path):
    exports = write_synthetic_exports(tmp_path / "exports", n_train=2, n_validation=1, seed=1)
    (exports / "stages" / "stage3_voice" / "train.jsonl").write_text("")
    written = write_trainer_configs(exports, "smollm2-135m-instruct", 512, (3, 2, 2), (2e-4, 1e-4, 5e-5))
    assert not any("stage3_voice" in f for f in written["trl"])
    assert any("stage2_reasoning" in f for f in written["trl"])


def test_trl_config_loads_with_datasets_as_trl_does(exports):
    from datasets import load_dataset

    trl = load(exports / CONFIG_DIR / "trl" / "stage2_reasoning.yaml")
    data = load_dataset(str(exports / trl["dataset_name"]))  # what `trl sft` calls with dataset_name
    assert set(data) >= {trl["dataset_train_split"], trl["dataset_test_split"]}
    assert [[dict(m) for m in row] for row in data["train"]["messages"]] == \
        messages_of(exports, "stages/stage2_reasoning", "train")


def test_axolotl_and_llamafactory_mappings_rebuild_the_exported_conversations(exports):
    from datasets import load_dataset

    axolotl = load(exports / CONFIG_DIR / "axolotl" / "stage2_reasoning.yaml")
    block = axolotl["datasets"][0]
    assert block["type"] == "chat_template" and block["field_messages"] == "conversations"
    assert block["message_property_mappings"] == {"role": "from", "content": "value"}
    rows = load_dataset("json", data_files=str(exports / block["path"]), split="train")  # ds_type json
    to_role = {alias: role for role, aliases in block["roles"].items() for alias in aliases}
    rebuilt = [[{"role": to_role[t[block["message_property_mappings"]["role"]]],
                 "content": t[block["message_property_mappings"]["content"]]} for t in row[block["field_messages"]]]
               for row in rows]
    assert rebuilt == messages_of(exports, "stages/stage2_reasoning", "train")
    assert any(len(conv) == 5 for conv in rebuilt)  # the multi-turn conversation keeps every turn

    factory = load(exports / CONFIG_DIR / "llamafactory" / "stage2_reasoning.yaml")
    info = json.loads((exports / factory["dataset_dir"] / "dataset_info.json").read_text())
    for key in (factory["dataset"], factory["eval_dataset"]):
        assert (exports / factory["dataset_dir"] / info[key]["file_name"]).is_file()
        assert info[key]["formatting"] == "sharegpt" and info[key]["tags"]["system_tag"] == "system"


def test_litgpt_rows_keep_the_system_prompt_and_the_prompt_style_renders_it(exports):
    folder = exports / CONFIG_DIR / "data" / "litgpt" / "stage1_counseling"
    rows = json.loads((folder / "train.json").read_text())
    first = messages_of(exports, "stages/stage1_counseling", "train")[0]
    assert rows[0] == {"instruction": first[1]["content"], "input": "", "output": first[2]["content"],
                       "system": first[0]["content"]}
    assert (folder / "val.json").is_file()
    command = (exports / CONFIG_DIR / "litgpt" / "commands.sh").read_text().splitlines()[1]
    assert command.split()[2:4] == ["finetune_lora", "checkpoints/HuggingFaceTB/SmolLM2-135M-Instruct"]  # positional
    if importlib.util.find_spec("litgpt") is None:
        pytest.skip("litgpt not installed: its JSON loader and PromptStyle were not exercised here")
    import sys

    sys.path.insert(0, str(exports / CONFIG_DIR / "litgpt"))
    from litgpt.data import JSON
    from pixel_prompt_style import PixelChatML

    data = JSON(json_path=folder, prompt_style=PixelChatML())
    data.prepare_data()
    prompt = PixelChatML().apply(rows[0]["instruction"], **{k: v for k, v in rows[0].items() if k != "instruction"})
    assert prompt.startswith(f"<|im_start|>system\n{rows[0]['system']}")
