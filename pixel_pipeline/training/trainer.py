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

Layout: this module is the loop (`train` reads top to bottom as its steps); the config and its fingerprint are in
train_config.py, the model and adapter set-up in model_setup.py, checkpoints in checkpoints.py, trackers in
tracking.py, the command line in trainer_cli.py.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixel_pipeline.core.io import swap_in_dir, write_text
from pixel_pipeline.training.checkpoints import (
    list_checkpoints,
    load_checkpoint,
    restore_checkpoint,
    save_checkpoint,
    seed_everything,
)
from pixel_pipeline.training.data import (
    IGNORE_INDEX,
    Batch,
    DatasetStats,
    Example,
    collate_rows,
    epoch_batches,
    read_messages_jsonl,
    tokenize_conversations,
)
from pixel_pipeline.training.model_setup import build_model, load_adapter_file, lora_tensors, verify_adapter_reload
from pixel_pipeline.training.tracking import PEAK_FLOPS_BY_NAME, Trackers, detect_peak_flops, peak_memory_mb
from pixel_pipeline.training.train_config import (
    CHAINING_MODES,
    DEFAULT_TARGET_MODULES,
    SMALL_MODEL_PARAMETERS,
    TrainingConfig,
    load_run_configs,
    run_fingerprint,
)
from pixel_pipeline.training.trainer_cli import main

__all__ = [  # the loop's own names, and the ones callers import from here since before the split
    "CHAINING_MODES", "DEFAULT_TARGET_MODULES", "PEAK_FLOPS_BY_NAME", "SMALL_MODEL_PARAMETERS", "SimulatedInterruption",
    "TrainingConfig", "batch_loss_sum", "build_model", "cosine_lr_lambda", "detect_peak_flops", "evaluate",
    "load_adapter_file", "load_run_configs", "lora_tensors", "loss_trend", "main", "peak_memory_mb", "run_fingerprint",
    "save_checkpoint", "seed_everything", "train", "verify_adapter_reload",
]


class SimulatedInterruption(RuntimeError):
    """Raised by `stop_after_steps`: the run stops as a killed one would, leaving only its checkpoints."""


# ------------------------------------------------------------------------------------------------ the pieces
def cosine_lr_lambda(total_steps: int, warmup_steps: int, min_lr_ratio: float) -> Callable[[int], float]:
    def f(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return f


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


@dataclass
class TrainingData:
    """The run's tokenised pairs and the accounting of what was kept, truncated, dropped or invalid."""

    tokenizer: Any
    train: list[Example]
    validation: list[Example]
    train_stats: DatasetStats
    validation_stats: DatasetStats


@dataclass
class Loop:
    """What the optimizer steps read and update: the model and its optimizer, the data, the step plan, and `state`,
    the part a checkpoint saves (step, loss curves, token and time counters)."""

    cfg: TrainingConfig
    device: str
    fingerprint: str
    log: Callable[[str], None]
    data: TrainingData
    model: Any
    params: list
    optimizer: Any
    scheduler: Any
    steps_per_epoch: int
    total_steps: int
    state: dict[str, Any]
    trackers: Trackers | None = None
    epoch_order: tuple[int, list] | None = None  # (epoch, its micro-batches): computed once per epoch

    @property
    def out(self) -> Path:
        return Path(self.cfg.output_dir)

    @property
    def checkpoint_root(self) -> Path:
        return self.out / "checkpoints"

    @property
    def pad_id(self) -> int:
        return self.data.tokenizer.pad_token_id

    @property
    def lr(self) -> float:
        return self.scheduler.get_last_lr()[0]


# ------------------------------------------------------------------------------------------------ the run
def train(cfg: TrainingConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train one adapter; returns metrics, curves, data accounting and the facts the asset checks judge."""
    device, fingerprint = prepare_run(cfg)
    data = load_training_data(cfg)
    model, init_check, trained_on, n_params = build_model(cfg, device, log)
    use_one_thread_for_small_models(cfg, device, n_params)
    loop = make_loop(cfg, device, fingerprint, log, data, model)
    resume_from_checkpoint(loop)
    loop.trackers = Trackers(cfg, loop.out / "tensorboard", log)
    evaluate_before_training(loop)
    try:
        run_optimizer_steps(loop)
    finally:
        loop.trackers.close()
    adapter_dir = save_adapter(model, data.tokenizer, loop.out)
    result = run_result(loop, init_check, trained_on, n_params, adapter_dir)
    write_text(json.dumps(result, indent=1, default=str), loop.out / "result.json")  # atomic: never half-written
    return result


def prepare_run(cfg: TrainingConfig) -> tuple[str, str]:
    """Validate, create the output folder, pick the device, record the config with its fingerprint, seed."""
    import torch

    cfg.validate()
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu" and cfg.cpu_threads > 0:
        torch.set_num_threads(cfg.cpu_threads)
    fingerprint = run_fingerprint(cfg)
    write_text(json.dumps({**dataclasses.asdict(cfg), "fingerprint": fingerprint}, indent=1), out / "run_config.json")
    seed_everything(cfg.seed)
    return device, fingerprint


def load_training_data(cfg: TrainingConfig) -> TrainingData:
    """Train and validation pairs tokenised with the base model's chat template; no trainable pair is an error."""
    from pixel_pipeline.training.base_model import load_tokenizer

    tokenizer = load_tokenizer(cfg.base_model, cfg.models_dir, cfg.trust_remote_code)
    train_ex, train_stats = _tokenized(tokenizer, cfg.train_files, cfg)
    val_ex, val_stats = _tokenized(tokenizer, cfg.validation_files, cfg)
    if not train_ex:
        raise ValueError(f"{cfg.name}: no trainable pairs in {cfg.train_files} ({train_stats.as_dict()})")
    return TrainingData(tokenizer, train_ex, val_ex, train_stats, val_stats)


def _tokenized(tokenizer, files: list[str], cfg: TrainingConfig) -> tuple[list[Example], DatasetStats]:
    conversations, stats = read_messages_jsonl(files)
    return tokenize_conversations(tokenizer, conversations, cfg.max_seq_length, cfg.overlong, stats)


def use_one_thread_for_small_models(cfg: TrainingConfig, device: str, n_params: int) -> None:
    """cpu_threads 0 (auto): a small model runs faster on one thread (see TrainingConfig.cpu_threads)."""
    import torch

    if device == "cpu" and cfg.cpu_threads == 0 and n_params < SMALL_MODEL_PARAMETERS:
        torch.set_num_threads(1)


def make_loop(cfg: TrainingConfig, device: str, fingerprint: str, log: Callable[[str], None], data: TrainingData,
              model) -> Loop:
    """AdamW over the adapter's parameters, the step plan (epochs x optimizer steps, capped by max_steps) and the
    warmup + cosine schedule over it, and a fresh loop state."""
    import torch

    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay,
                                  fused=device.startswith("cuda"))
    steps_per_epoch = math.ceil(len(epoch_batches(data.train, cfg.max_seq_length, cfg.micro_batch_size, cfg.seed, 0,
                                                  cfg.packing, cfg.shuffle)) / cfg.gradient_accumulation_steps)
    total_steps = steps_per_epoch * cfg.epochs
    if cfg.max_steps > 0:
        total_steps = min(total_steps, cfg.max_steps)
    warmup = int(round(cfg.warmup_ratio * total_steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_lr_lambda(total_steps, warmup, cfg.min_lr_ratio))
    state: dict[str, Any] = {"step": 0, "fingerprint": fingerprint, "train_curve": [], "val_curve": [],
                             "tokens_seen": 0, "train_seconds": 0.0, "resumed_from": []}
    return Loop(cfg, device, fingerprint, log, data, model, params, optimizer, scheduler, steps_per_epoch, total_steps,
                state)


def resume_from_checkpoint(loop: Loop) -> None:
    """Continue from the newest checkpoint of the same config and data; drop checkpoints that are not (or all of
    them when `resume` is off)."""
    cfg, root = loop.cfg, loop.checkpoint_root
    existing = list_checkpoints(root)
    if existing and cfg.resume:
        saved = load_checkpoint(existing[-1])
        if saved["state"].get("fingerprint") == loop.fingerprint:
            loop.state = restore_checkpoint(existing[-1], saved, loop.model, loop.optimizer, loop.scheduler)
            loop.log(f"{cfg.name}: resumed from {existing[-1].name} (step {loop.state['step']}/{loop.total_steps})")
        else:
            loop.log(f"{cfg.name}: checkpoints in {root} belong to another config or data; starting over")
            shutil.rmtree(root, ignore_errors=True)
    elif existing:
        shutil.rmtree(root, ignore_errors=True)


def evaluate_before_training(loop: Loop) -> None:
    """The validation loss before the first step: where the loss check's "went down" starts from."""
    if loop.state["step"] == 0 and not loop.state["val_curve"]:
        v = evaluate(loop.model, loop.data.validation, loop.cfg, loop.device, loop.pad_id)
        if v is not None:
            loop.state["val_curve"].append([0, v])
            loop.trackers.log({"val/loss": v}, 0)


def run_optimizer_steps(loop: Loop) -> None:
    """Optimizer steps up to total_steps: log each, evaluate and checkpoint on schedule; stop on a non-finite loss
    (the loss check then fails) or, for crash drills, after `stop_after_steps` steps of this session."""
    import torch

    cfg, state = loop.cfg, loop.state
    if loop.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    session_steps = 0
    eval_every = cfg.eval_every_steps or loop.steps_per_epoch
    while state["step"] < loop.total_steps:
        epoch = state["step"] // loop.steps_per_epoch
        batches = next_step_batches(loop)
        loss, grad_norm, seconds = optimizer_step(loop, batches)
        record_step(loop, batches, loss, grad_norm, seconds)
        session_steps += 1
        if not math.isfinite(loss):
            loop.log(f"{cfg.name}: non-finite loss at step {state['step']}; stopping")
            break
        if state["step"] % eval_every == 0 or state["step"] == loop.total_steps:
            evaluate_and_log(loop, epoch, loss)
        if state["step"] % cfg.checkpoint_every_steps == 0 or state["step"] == loop.total_steps:
            save_checkpoint(loop.model, loop.optimizer, loop.scheduler, state, loop.checkpoint_root,
                            cfg.keep_checkpoints)
        if cfg.stop_after_steps and session_steps >= cfg.stop_after_steps and state["step"] < loop.total_steps:
            raise SimulatedInterruption(f"{cfg.name}: stopped after {session_steps} steps (stop_after_steps)")


def next_step_batches(loop: Loop) -> list[Batch]:
    """The collated micro-batches of the next optimizer step. The epoch's order is computed once (and identically
    after a resume: it depends on seed and epoch only)."""
    cfg = loop.cfg
    epoch, group_index = divmod(loop.state["step"], loop.steps_per_epoch)
    if loop.epoch_order is None or loop.epoch_order[0] != epoch:
        loop.epoch_order = (epoch, epoch_batches(loop.data.train, cfg.max_seq_length, cfg.micro_batch_size, cfg.seed,
                                                 epoch, cfg.packing, cfg.shuffle))
    k = cfg.gradient_accumulation_steps
    group = loop.epoch_order[1][group_index * k:(group_index + 1) * k]
    return [collate_rows(loop.data.train, rows, loop.pad_id) for rows in group]


def optimizer_step(loop: Loop, batches: list[Batch]) -> tuple[float, float, float]:
    """Forward and backward over the step's micro-batches, each loss divided by the step's target-token count (so
    accumulation equals one big batch), clip, update. Returns (loss, grad norm, seconds)."""
    import torch

    n_target = sum(b.n_target_tokens for b in batches)
    t0 = time.perf_counter()
    loss_sum = 0.0
    for batch in batches:
        loss = batch_loss_sum(loop.model, batch, loop.device) / max(n_target, 1)
        loss.backward()
        loss_sum += loss.detach().item()
    grad_norm = float(torch.nn.utils.clip_grad_norm_(loop.params, loop.cfg.max_grad_norm))
    loop.optimizer.step()
    loop.scheduler.step()
    loop.optimizer.zero_grad(set_to_none=True)
    if loop.device.startswith("cuda"):
        torch.cuda.synchronize()
    return loss_sum, grad_norm, time.perf_counter() - t0


def record_step(loop: Loop, batches: list[Batch], loss: float, grad_norm: float, seconds: float) -> None:
    """Count the step into the loop state (kept across resumes) and send its metrics to the trackers."""
    state = loop.state
    n_tok = sum(b.n_tokens for b in batches)
    n_pad = sum(b.n_padding for b in batches)
    state["step"] += 1
    state["tokens_seen"] += n_tok
    state["padding"] = state.get("padding", 0) + n_pad
    state["train_seconds"] += seconds
    state["train_curve"].append([state["step"], loss])
    loop.trackers.log({"train/loss": loss, "train/lr": loop.lr, "train/grad_norm": grad_norm,
                       "train/tokens_per_second": n_tok / seconds,
                       "train/padding_fraction": n_pad / max(1, n_pad + n_tok)}, state["step"])


def evaluate_and_log(loop: Loop, epoch: int, loss: float) -> None:
    step = loop.state["step"]
    v = evaluate(loop.model, loop.data.validation, loop.cfg, loop.device, loop.pad_id)
    if v is not None:
        loop.state["val_curve"].append([step, v])
        loop.trackers.log({"val/loss": v, "val/perplexity": math.exp(min(v, 50))}, step)
    loop.log(f"{loop.cfg.name}: step {step}/{loop.total_steps} epoch {epoch + 1} loss {loss:.4f} "
             f"val {v if v is None else round(v, 4)} lr {loop.lr:.2e}")


def save_adapter(model, tokenizer, out: Path) -> Path:
    """adapter/ (PEFT folder plus tokenizer), swapped in whole: never missing while it is replaced."""
    adapter_dir = out / "adapter"
    tmp = Path(tempfile.mkdtemp(prefix=".adapter.", dir=out))
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    swap_in_dir(tmp, adapter_dir)
    return adapter_dir


def throughput(loop: Loop, n_params: int) -> tuple[float, float | None]:
    """Tokens per second of the optimizer steps themselves (forward, backward, update), summed over resumed
    sessions, and the MFU they give when the device's peak FLOP/s is known."""
    tokens_per_second = loop.state["tokens_seen"] / max(loop.state["train_seconds"], 1e-9)
    peak_flops = loop.cfg.peak_flops or detect_peak_flops(loop.device)
    flops_per_token = 4 * n_params  # LoRA: forward 2N + activation gradients 2N, no weight gradients for N
    return tokens_per_second, (tokens_per_second * flops_per_token / peak_flops if peak_flops else None)


def run_result(loop: Loop, init_check: dict[str, Any], trained_on: str, n_params: int,
               adapter_dir: Path) -> dict[str, Any]:
    """Everything known about the run and the facts the asset checks judge: written whole to result.json (its
    `report_path`), of which the asset's materialization metadata shows the headline numbers (reporting.py)."""
    cfg, state, data = loop.cfg, loop.state, loop.data
    checkpoints = [str(p) for p in list_checkpoints(loop.checkpoint_root)]
    train_stats, val_stats = data.train_stats.as_dict(), data.validation_stats.as_dict()
    tokens_per_second, mfu = throughput(loop, n_params)
    reload = verify_adapter_reload(loop.model, trained_on, cfg, adapter_dir, data.validation or data.train,
                                   loop.device, loop.pad_id)
    train_losses = [loss for _, loss in state["train_curve"]]
    val_losses = [loss for _, loss in state["val_curve"]]
    return {
        "name": cfg.name,
        "adapter_path": str(adapter_dir),
        "report_path": str(loop.out / "result.json"),
        "base_model": trained_on,
        "fingerprint": loop.fingerprint,
        "device": loop.device,
        "steps": state["step"],
        "total_steps": loop.total_steps,
        "epochs": cfg.epochs,
        "learning_rate": cfg.learning_rate,
        "chaining": cfg.chaining,
        "train_files": list(cfg.train_files),
        "validation_files": list(cfg.validation_files),
        "resumed_from_steps": state["resumed_from"],
        "train_curve": state["train_curve"],
        "val_curve": state["val_curve"],
        "train_loss_final": train_losses[-1] if train_losses else None,
        "val_loss_initial": val_losses[0] if val_losses else None,
        "val_loss_final": val_losses[-1] if val_losses else None,
        "val_perplexity": math.exp(min(val_losses[-1], 50)) if val_losses else None,
        "tokens_per_second": tokens_per_second,
        "padding_fraction": state.get("padding", 0) / max(1, state.get("padding", 0) + state["tokens_seen"]),
        "peak_memory_mb": peak_memory_mb(loop.device),
        "mfu": mfu,
        "n_parameters": n_params,
        "train_data": train_stats,
        "validation_data": val_stats,
        **{key: train_stats[key] + val_stats[key] for key in ("rows_truncated", "rows_dropped_overlong",
                                                              "rows_invalid")},
        "checkpoints": checkpoints,
        "last_checkpoint": checkpoints[-1] if checkpoints else None,
        "tensorboard_dir": str(loop.out / "tensorboard"),
        "trackers": loop.trackers.active,
        "init": init_check,
        "adapter_reload": reload,
        "loss_check": loss_trend(train_losses, val_losses),
    }


if __name__ == "__main__":
    sys.exit(main())
