"""A small, readable LoRA trainer (nanoGPT-style loop) for the staged adapters and the style experts.

Run on its own:      python -m pixel_pipeline.training.trainer --config run.json
Run by Dagster:      the training assets launch the same module through Dagster Pipes (subprocess or a Kubernetes
                     pod); it then reads its config from the Pipes extras and reports metadata and checks back.

`run.json` holds one `TrainingConfig` (as a JSON object) or `{"runs": [...]}` for several adapters trained one
after another in the same process (the four experts).

Design in one paragraph: exported chat pairs are tokenised with the base model's chat template, the loss is taken
on assistant tokens only, and sequences are packed padding-free (see data.py). The loss of an optimizer step is the
sum of token losses over all micro-batches of the step divided by the step's target-token count, so gradient
accumulation gives the same update as one big batch. The learning rate follows linear warmup then cosine decay to
`min_lr_ratio`. Every `checkpoint_every_steps` optimizer steps the adapter (safetensors) plus optimizer, scheduler,
RNG states and loss history are written atomically; a re-run with the same config and data resumes from the
newest checkpoint and replays the same data order, so it ends at the same loss as an uninterrupted run.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pixel_pipeline.core.io import swap_in_dir, write_text
from pixel_pipeline.training.base_model import DEFAULT_BASE_MODEL
from pixel_pipeline.training.data import (
    IGNORE_INDEX,
    Example,
    collate_rows,
    epoch_batches,
    read_messages_jsonl,
    tokenize_conversations,
)

CHAINING_MODES = ("continue", "merge")
SMALL_MODEL_PARAMETERS = 50_000_000
DEFAULT_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# Dense bf16 peak FLOP/s per GPU, for MFU (set `peak_flops` for anything else).
PEAK_FLOPS_BY_NAME = {"H100": 989e12, "H200": 989e12, "H800": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12,
                      "L4": 121e12, "4090": 165e12}


@dataclass
class TrainingConfig:
    """One adapter's training run. Field names are the Dagster Config field names (defs/training.py)."""

    name: str
    train_files: list[str]
    output_dir: str
    validation_files: list[str] = field(default_factory=list)
    base_model: str = DEFAULT_BASE_MODEL
    models_dir: str = "output/models"
    trust_remote_code: bool = False
    # chaining from a previous adapter (None: a fresh adapter on the base model)
    init_adapter: str | None = None
    chaining: str = "continue"  # how init_adapter is used; ignored without one
    # LoRA
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_TARGET_MODULES))
    # optimisation
    epochs: int = 3
    learning_rate: float = 2e-4
    warmup_ratio: float = 0.1
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    micro_batch_size: int = 2
    gradient_accumulation_steps: int = 1
    max_steps: int = -1
    gradient_checkpointing: bool = False
    # data
    max_seq_length: int = 1024
    overlong: str = "truncate"
    packing: bool = True
    shuffle: bool = True
    # runtime
    seed: int = 42
    dtype: str = "auto"
    device: str = ""
    # CPU threads for torch. 0 = auto: 1 for models under SMALL_MODEL_PARAMETERS (their matmuls are too small to gain
    # from threads, and on a busy machine extra threads make them ~30x slower), torch's default otherwise.
    cpu_threads: int = 0
    checkpoint_every_steps: int = 25
    keep_checkpoints: int = 2
    resume: bool = True
    eval_every_steps: int = 0  # 0: at the start and the end of every epoch
    report_to: list[str] = field(default_factory=list)  # "wandb" / "mlflow" besides TensorBoard (always on)
    peak_flops: float = 0.0
    stop_after_steps: int = 0  # >0: exit after this many steps as if killed (crash drills and tests)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainingConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown training config keys: {sorted(unknown)}")
        return cls(**data)

    def validate(self) -> None:
        if self.chaining not in CHAINING_MODES:
            raise ValueError(f"chaining must be one of {CHAINING_MODES}, got {self.chaining!r}")
        if not self.train_files:
            raise ValueError(f"{self.name}: no train_files")
        for f in [*self.train_files, *self.validation_files]:
            if not Path(f).is_file():
                raise FileNotFoundError(f"{self.name}: data file {f} does not exist (materialize fine_tuning_exports)")
        if self.micro_batch_size < 1 or self.gradient_accumulation_steps < 1 or self.epochs < 1:
            raise ValueError("micro_batch_size, gradient_accumulation_steps and epochs must be >= 1")


class SimulatedInterruption(RuntimeError):
    """Raised by `stop_after_steps`: the run stops as a killed one would, leaving only its checkpoints."""


# ----------------------------------------------------------------------------------------------------- helpers
def _sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run_fingerprint(cfg: TrainingConfig) -> str:
    """What a checkpoint must match to be resumed: config (minus runtime-only knobs) and the data's bytes."""
    skip = {"output_dir", "resume", "cpu_threads", "stop_after_steps", "checkpoint_every_steps", "keep_checkpoints", "report_to",
            "eval_every_steps", "peak_flops"}
    payload = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in skip}
    payload["data"] = [_sha256_file(f) for f in [*cfg.train_files, *cfg.validation_files]]
    if cfg.init_adapter:
        payload["init_adapter"] = _sha256_file(Path(cfg.init_adapter) / "adapter_model.safetensors")
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cosine_lr_lambda(total_steps: int, warmup_steps: int, min_lr_ratio: float) -> Callable[[int], float]:
    def f(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return f


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    import numpy as np
    import torch

    state = {"python": random.getstate(), "numpy": np.random.get_state()[1].tolist(),
             "numpy_pos": int(np.random.get_state()[2]), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    import numpy as np
    import torch

    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    np.random.set_state(("MT19937", np.array(state["numpy"], dtype=np.uint32), state["numpy_pos"], 0, 0.0))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def peak_memory_mb(device: str) -> float:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB: the process's peak RSS


def detect_peak_flops(device: str) -> float:
    import torch

    if not device.startswith("cuda"):
        return 0.0
    name = torch.cuda.get_device_name()
    for key, flops in PEAK_FLOPS_BY_NAME.items():
        if key in name:
            return flops
    return 0.0


class Trackers:
    """TensorBoard always; Weights & Biases / MLflow when asked for (report_to or WANDB_PROJECT /
    MLFLOW_TRACKING_URI set) and importable. A tracker that cannot start is reported, never fatal."""

    def __init__(self, cfg: TrainingConfig, log_dir: Path, log: Callable[[str], None]):
        from torch.utils.tensorboard import SummaryWriter

        self.tb = SummaryWriter(log_dir=str(log_dir))
        self.wandb = self.mlflow = None
        self.active = ["tensorboard"]
        wanted = set(cfg.report_to)
        if os.environ.get("WANDB_PROJECT"):
            wanted.add("wandb")
        if os.environ.get("MLFLOW_TRACKING_URI"):
            wanted.add("mlflow")
        if "wandb" in wanted:
            try:
                import wandb

                self.wandb = wandb.init(project=os.environ.get("WANDB_PROJECT", "pixel_pipeline"), name=cfg.name,
                                        config=dataclasses.asdict(cfg), reinit=True)
                self.active.append("wandb")
            except Exception as exc:  # noqa: BLE001 - optional integration
                log(f"wandb not started: {exc}")
        if "mlflow" in wanted:
            try:
                import mlflow

                mlflow.start_run(run_name=cfg.name)
                mlflow.log_params({k: str(v)[:250] for k, v in dataclasses.asdict(cfg).items()})
                self.mlflow = mlflow
                self.active.append("mlflow")
            except Exception as exc:  # noqa: BLE001
                log(f"mlflow not started: {exc}")

    def log(self, metrics: dict[str, float], step: int) -> None:
        for k, v in metrics.items():
            self.tb.add_scalar(k, v, step)
        if self.wandb is not None:
            self.wandb.log(metrics, step=step)
        if self.mlflow is not None:
            self.mlflow.log_metrics(metrics, step=step)

    def close(self) -> None:
        self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()
        if self.mlflow is not None:
            self.mlflow.end_run()


# ------------------------------------------------------------------------------------------------ model setup
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


# --------------------------------------------------------------------------------------------------- the loop
def batch_loss_sum(model, batch, device: str):
    """Summed cross-entropy over target tokens (predict token t+1 from tokens <= t, inside each sequence)."""
    import torch.nn.functional as F

    logits = model(input_ids=batch.input_ids.to(device), position_ids=batch.position_ids.to(device),
                   use_cache=False).logits
    labels = batch.labels.to(device)
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=IGNORE_INDEX,
                           reduction="sum")


def evaluate(model, examples: list[Example], cfg: TrainingConfig, device: str, pad_id: int) -> float | None:
    import torch

    if not examples:
        return None
    was_training = model.training
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for rows in epoch_batches(examples, cfg.max_seq_length, cfg.micro_batch_size, cfg.seed, 0, cfg.packing,
                                  shuffle=False):
            batch = collate_rows(examples, rows, pad_id)
            total += float(batch_loss_sum(model, batch, device))
            n += batch.n_target_tokens
    model.train(was_training)
    return total / max(n, 1)


def _checkpoints(ckpt_root: Path) -> list[Path]:
    return sorted(p for p in ckpt_root.glob("step_*") if (p / "trainer_state.pt").exists())


def save_checkpoint(model, optimizer, scheduler, state: dict[str, Any], ckpt_root: Path, keep: int) -> Path:
    """Adapter safetensors + optimizer / scheduler / RNG state, written to a temp folder then renamed."""
    import torch

    final = ckpt_root / f"step_{state['step']:07d}"
    ckpt_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".ckpt.", dir=ckpt_root))
    model.save_pretrained(tmp)
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": _rng_state(),
                "state": state}, tmp / "trainer_state.pt")
    (tmp / "trainer_state.json").write_text(json.dumps(state, indent=1, default=str))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in _checkpoints(ckpt_root)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def train(cfg: TrainingConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train one adapter; returns metrics, curves, data accounting and the facts the asset checks judge."""
    import torch
    from peft import set_peft_model_state_dict

    from pixel_pipeline.training.base_model import load_tokenizer

    cfg.validate()
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu" and cfg.cpu_threads > 0:
        torch.set_num_threads(cfg.cpu_threads)
    fingerprint = run_fingerprint(cfg)
    write_text(json.dumps({**dataclasses.asdict(cfg), "fingerprint": fingerprint}, indent=1), out / "run_config.json")
    seed_everything(cfg.seed)

    tokenizer = load_tokenizer(cfg.base_model, cfg.models_dir, cfg.trust_remote_code)
    train_conv, train_stats = read_messages_jsonl(cfg.train_files)
    train_ex, train_stats = tokenize_conversations(tokenizer, train_conv, cfg.max_seq_length, cfg.overlong, train_stats)
    val_conv, val_stats = read_messages_jsonl(cfg.validation_files)
    val_ex, val_stats = tokenize_conversations(tokenizer, val_conv, cfg.max_seq_length, cfg.overlong, val_stats)
    if not train_ex:
        raise ValueError(f"{cfg.name}: no trainable pairs in {cfg.train_files} ({train_stats.as_dict()})")

    model, init_check, trained_on, n_params = build_model(cfg, device, log)
    if device == "cpu" and cfg.cpu_threads == 0 and n_params < SMALL_MODEL_PARAMETERS:
        torch.set_num_threads(1)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay,
                                  fused=device.startswith("cuda"))
    steps_per_epoch = math.ceil(len(epoch_batches(train_ex, cfg.max_seq_length, cfg.micro_batch_size, cfg.seed, 0,
                                                  cfg.packing, cfg.shuffle)) / cfg.gradient_accumulation_steps)
    total_steps = steps_per_epoch * cfg.epochs
    if cfg.max_steps > 0:
        total_steps = min(total_steps, cfg.max_steps)
    warmup = int(round(cfg.warmup_ratio * total_steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_lr_lambda(total_steps, warmup, cfg.min_lr_ratio))

    state: dict[str, Any] = {"step": 0, "fingerprint": fingerprint, "train_curve": [], "val_curve": [],
                             "tokens_seen": 0, "train_seconds": 0.0, "resumed_from": []}
    ckpt_root = out / "checkpoints"
    existing = _checkpoints(ckpt_root)
    if existing and cfg.resume:
        saved = torch.load(existing[-1] / "trainer_state.pt", weights_only=True)
        if saved["state"].get("fingerprint") == fingerprint:
            set_peft_model_state_dict(model, load_adapter_file(existing[-1]))
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
            _set_rng_state(saved["rng"])
            state = saved["state"]
            state["resumed_from"] = [*state.get("resumed_from", []), state["step"]]
            log(f"{cfg.name}: resumed from {existing[-1].name} (step {state['step']}/{total_steps})")
        else:
            log(f"{cfg.name}: checkpoints in {ckpt_root} belong to another config or data; starting over")
            shutil.rmtree(ckpt_root, ignore_errors=True)
    elif existing:
        shutil.rmtree(ckpt_root, ignore_errors=True)

    trackers = Trackers(cfg, out / "tensorboard", log)
    pad_id = tokenizer.pad_token_id
    if state["step"] == 0 and not state["val_curve"]:
        v = evaluate(model, val_ex, cfg, device, pad_id)
        if v is not None:
            state["val_curve"].append([0, v])
            trackers.log({"val/loss": v}, 0)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    session_steps = 0
    epoch_cache: dict[int, list] = {}
    eval_every = cfg.eval_every_steps or steps_per_epoch
    try:
        while state["step"] < total_steps:
            epoch, group_index = divmod(state["step"], steps_per_epoch)
            if epoch not in epoch_cache:  # the epoch's order is computed once (and identically after a resume)
                epoch_cache.clear()
                epoch_cache[epoch] = epoch_batches(train_ex, cfg.max_seq_length, cfg.micro_batch_size, cfg.seed,
                                                   epoch, cfg.packing, cfg.shuffle)
            batches = epoch_cache[epoch]
            group = batches[group_index * cfg.gradient_accumulation_steps:(group_index + 1) * cfg.gradient_accumulation_steps]
            collated = [collate_rows(train_ex, rows, pad_id) for rows in group]
            n_target = sum(b.n_target_tokens for b in collated)
            t0 = time.perf_counter()
            loss_sum = 0.0
            for batch in collated:
                loss = batch_loss_sum(model, batch, device) / max(n_target, 1)
                loss.backward()
                loss_sum += loss.detach().item()
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm))
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            n_tok = sum(b.n_tokens for b in collated)
            state["step"] += 1
            state["tokens_seen"] += n_tok
            state["padding"] = state.get("padding", 0) + sum(b.n_padding for b in collated)
            state["train_seconds"] += dt
            session_steps += 1
            state["train_curve"].append([state["step"], loss_sum])
            lr = scheduler.get_last_lr()[0]
            trackers.log({"train/loss": loss_sum, "train/lr": lr, "train/grad_norm": grad_norm,
                          "train/tokens_per_second": n_tok / dt,
                          "train/padding_fraction": sum(b.n_padding for b in collated) /
                          max(1, sum(b.n_padding + b.n_tokens for b in collated))}, state["step"])
            if not math.isfinite(loss_sum):
                log(f"{cfg.name}: non-finite loss at step {state['step']}; stopping")
                break
            if state["step"] % eval_every == 0 or state["step"] == total_steps:
                v = evaluate(model, val_ex, cfg, device, pad_id)
                if v is not None:
                    state["val_curve"].append([state["step"], v])
                    trackers.log({"val/loss": v, "val/perplexity": math.exp(min(v, 50))}, state["step"])
                log(f"{cfg.name}: step {state['step']}/{total_steps} epoch {epoch + 1} loss {loss_sum:.4f} "
                    f"val {v if v is None else round(v, 4)} lr {lr:.2e}")
            if state["step"] % cfg.checkpoint_every_steps == 0 or state["step"] == total_steps:
                save_checkpoint(model, optimizer, scheduler, state, ckpt_root, cfg.keep_checkpoints)
            if cfg.stop_after_steps and session_steps >= cfg.stop_after_steps and state["step"] < total_steps:
                raise SimulatedInterruption(f"{cfg.name}: stopped after {session_steps} steps (stop_after_steps)")
    finally:
        trackers.close()

    adapter_dir = out / "adapter"
    tmp = Path(tempfile.mkdtemp(prefix=".adapter.", dir=out))
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    swap_in_dir(tmp, adapter_dir)  # adapter/ is never missing while it is replaced

    # throughput of the optimizer steps themselves (forward, backward, update), summed over resumed sessions
    tokens_per_second = state["tokens_seen"] / max(state["train_seconds"], 1e-9)
    peak_flops = cfg.peak_flops or detect_peak_flops(device)
    flops_per_token = 4 * n_params  # LoRA: forward 2N + activation gradients 2N, no weight gradients for N
    mfu = tokens_per_second * flops_per_token / peak_flops if peak_flops else None
    reload = verify_adapter_reload(model, trained_on, cfg, adapter_dir, val_ex or train_ex, device, pad_id)
    train_losses = [loss for _, loss in state["train_curve"]]
    val_losses = [loss for _, loss in state["val_curve"]]
    result = {
        "name": cfg.name,
        "adapter_path": str(adapter_dir),
        "base_model": trained_on,
        "fingerprint": fingerprint,
        "device": device,
        "steps": state["step"],
        "total_steps": total_steps,
        "epochs": cfg.epochs,
        "resumed_from_steps": state["resumed_from"],
        "train_curve": state["train_curve"],
        "val_curve": state["val_curve"],
        "train_loss_final": train_losses[-1] if train_losses else None,
        "val_loss_initial": val_losses[0] if val_losses else None,
        "val_loss_final": val_losses[-1] if val_losses else None,
        "val_perplexity": math.exp(min(val_losses[-1], 50)) if val_losses else None,
        "tokens_per_second": tokens_per_second,
        "padding_fraction": state.get("padding", 0) / max(1, state.get("padding", 0) + state["tokens_seen"]),
        "peak_memory_mb": peak_memory_mb(device),
        "mfu": mfu,
        "n_parameters": n_params,
        "train_data": train_stats.as_dict(),
        "validation_data": val_stats.as_dict(),
        "checkpoints": [str(p) for p in _checkpoints(ckpt_root)],
        "tensorboard_dir": str(out / "tensorboard"),
        "trackers": trackers.active,
        "init": init_check,
        "adapter_reload": reload,
        "loss_check": loss_trend(train_losses, val_losses),
    }
    write_text(json.dumps(result, indent=1, default=str), out / "result.json")  # atomic: never half-written
    return result


def loss_trend(train_losses: list[float], val_losses: list[float]) -> dict[str, Any]:
    """Finite everywhere, and lower at the end than at the start (validation if there is any, else train:
    mean of the last quarter of steps against the first quarter)."""
    finite = bool(train_losses) and all(math.isfinite(x) for x in [*train_losses, *val_losses])
    if len(val_losses) >= 2:
        start, end, basis = val_losses[0], val_losses[-1], "validation"
    else:
        q = max(1, len(train_losses) // 4)
        start = sum(train_losses[:q]) / q if train_losses else float("nan")
        end = sum(train_losses[-q:]) / q if train_losses else float("nan")
        basis = "train"
    return {"finite": finite, "basis": basis, "start": start, "end": end, "decreasing": finite and end < start}


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


# ---------------------------------------------------------------------------------------------------- the CLI
def load_run_configs(data: dict[str, Any]) -> list[TrainingConfig]:
    runs = data["runs"] if "runs" in data else [data]
    return [TrainingConfig.from_dict(r) for r in runs]


def _pipes_requested() -> bool:
    return bool(os.environ.get("DAGSTER_PIPES_CONTEXT"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="JSON file: one TrainingConfig or {'runs': [...]} (Pipes extras win)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    if _pipes_requested():
        from dagster_pipes import open_dagster_pipes

        from pixel_pipeline.training.reporting import report_to_pipes

        with open_dagster_pipes() as pipes:
            data = pipes.extras.get("trainer_config") or json.loads(Path(args.config).read_text())
            results = [train(c, log=pipes.log.info) for c in load_run_configs(data)]
            report_to_pipes(pipes, results, pipes.extras.get("report", {}))
        return 0
    if not args.config:
        parser.error("--config is required outside Dagster Pipes")
    results = [train(c) for c in load_run_configs(json.loads(Path(args.config).read_text()))]
    summary = [{k: r[k] for k in ("name", "adapter_path", "steps", "val_loss_initial", "val_loss_final",
                                  "tokens_per_second")} for r in results]
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
