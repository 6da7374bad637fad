"""The model a run trains: base model plus LoRA adapter (fresh, continued from the previous stage, or fresh on a
base with the previous adapter merged in), the tensor comparisons that prove where its weights came from, and the
reload check on the saved adapter folder."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixel_pipeline.core.io import swap_in_dir
from pixel_pipeline.training.data import collate_rows

if TYPE_CHECKING:
    from pixel_pipeline.training.train_config import TrainingConfig


def lora_tensors(model) -> dict[str, Any]:
    """The adapter's tensors under the names PEFT saves them with (adapter name stripped)."""
    from peft.utils import get_peft_model_state_dict

    return {k: v.detach().float().cpu() for k, v in get_peft_model_state_dict(model).items()}


def load_adapter_file(adapter_dir: str | Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return {k: v.float() for k, v in load_file(str(Path(adapter_dir) / "adapter_model.safetensors")).items()}


def build_model(cfg: TrainingConfig, device: str, log: Callable[[str], None]):
    """Base model + the adapter to train, and a record proving where its starting weights came from."""
    from peft import LoraConfig, PeftModel, get_peft_model

    from pixel_pipeline.training.base_model import load_base_model

    base = load_base_model(cfg.base_model, cfg.models_dir, dtype=cfg.dtype, device=device,
                           trust_remote_code=cfg.trust_remote_code)
    base.config.use_cache = False
    init: dict[str, Any] = {"mode": "fresh" if not cfg.init_adapter else cfg.chaining, "init_adapter": cfg.init_adapter}
    base_model_name = cfg.base_model
    fresh_config = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                              target_modules=list(cfg.lora_target_modules), task_type="CAUSAL_LM", bias="none")
    if cfg.init_adapter and cfg.chaining == "continue":
        model = PeftModel.from_pretrained(base, cfg.init_adapter, is_trainable=True)
        expected = load_adapter_file(cfg.init_adapter)
        actual = lora_tensors(model)
        init.update(_compare_tensors(expected, actual))
        init["previous_adapter_nonzero"] = bool(any(v.abs().sum() > 0 for k, v in expected.items() if "lora_B" in k))
        init["lora_settings_inherited"] = True  # r / alpha / targets come from the previous adapter
    elif cfg.init_adapter and cfg.chaining == "merge":
        before = {k: v.detach().float().cpu().clone() for k, v in base.state_dict().items()}
        merged = PeftModel.from_pretrained(base, cfg.init_adapter).merge_and_unload()
        init.update(_verify_merge(before, merged, cfg.init_adapter))
        merged_dir = Path(cfg.output_dir) / "merged_base"
        _save_merged_base(merged, cfg, merged_dir)
        base_model_name = str(merged_dir)
        model = get_peft_model(merged, fresh_config)
        init["fresh_adapter_is_noop"] = bool(all(v.abs().sum() == 0 for k, v in lora_tensors(model).items()
                                                 if "lora_B" in k))
    else:
        model = get_peft_model(base, fresh_config)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    n_total = sum(p.numel() for p in model.parameters())
    log(f"{cfg.name}: {n_trainable:,} trainable of {n_total:,} parameters ({init['mode']})")
    return model, init, base_model_name, n_total


def _compare_tensors(expected: dict[str, Any], actual: dict[str, Any]) -> dict[str, Any]:
    missing = sorted(set(expected) ^ set(actual))
    diff = max((float((expected[k] - actual[k]).abs().max()) for k in set(expected) & set(actual)), default=float("inf"))
    return {"tensors_compared": len(set(expected) & set(actual)), "tensor_names_mismatched": len(missing),
            "max_abs_diff": diff, "starts_from_previous": not missing and diff == 0.0}


def _verify_merge(before: dict[str, Any], merged, adapter_dir: str) -> dict[str, Any]:
    """W_merged - W_base must equal scale * B @ A of the previous adapter for every targeted weight."""
    adapter = load_adapter_file(adapter_dir)
    conf = json.loads((Path(adapter_dir) / "adapter_config.json").read_text())
    scale = conf["lora_alpha"] / conf["r"]
    after = merged.state_dict()
    worst, n = 0.0, 0
    for key_a, a in adapter.items():
        if "lora_A" not in key_a:
            continue
        b = adapter[key_a.replace("lora_A", "lora_B")]
        name = key_a.replace("base_model.model.", "").replace(".lora_A.weight", ".weight")
        delta = after[name].float().cpu() - before[name]
        worst = max(worst, float((delta - scale * (b @ a)).abs().max()))
        n += 1
    return {"tensors_compared": n, "max_abs_diff": worst, "starts_from_previous": n > 0 and worst < 1e-4}


def _save_merged_base(model, cfg: TrainingConfig, merged_dir: Path) -> None:
    from pixel_pipeline.training.base_model import load_tokenizer

    tmp = Path(tempfile.mkdtemp(prefix=".merged.", dir=Path(cfg.output_dir)))
    model.save_pretrained(tmp, safe_serialization=True)
    load_tokenizer(cfg.base_model, cfg.models_dir, cfg.trust_remote_code).save_pretrained(tmp)
    swap_in_dir(tmp, merged_dir)


def verify_adapter_reload(model, trained_on: str, cfg: TrainingConfig, adapter_dir: Path, examples, device, pad_id):
    """Load the saved folder into a fresh base with PeftModel.from_pretrained and compare tensors and logits."""
    import torch
    from peft import PeftModel

    from pixel_pipeline.training.base_model import load_base_model

    base = load_base_model(trained_on, cfg.models_dir, dtype=cfg.dtype, device=device,
                           trust_remote_code=cfg.trust_remote_code)
    reloaded = PeftModel.from_pretrained(base, str(adapter_dir)).eval()
    tensors = _compare_tensors(lora_tensors(model), lora_tensors(reloaded))
    batch = collate_rows(examples, [[0]], pad_id)
    model.eval()
    with torch.no_grad():
        a = model(input_ids=batch.input_ids.to(device), position_ids=batch.position_ids.to(device)).logits.float()
        b = reloaded(input_ids=batch.input_ids.to(device), position_ids=batch.position_ids.to(device)).logits.float()
    logits_diff = float((a - b).abs().max())
    del reloaded, base
    return {"loads": True, "tensor_max_abs_diff": tensors["max_abs_diff"], "tensors": tensors["tensors_compared"],
            "logits_max_abs_diff": logits_diff,
            "matches": tensors["starts_from_previous"] and logits_diff < 1e-3}
