"""One adapter's training run as plain data: the `TrainingConfig` the trainer reads, and its fingerprint.

The run file (`--config run.json` or the Dagster Pipes extras) holds one TrainingConfig as a JSON object or
`{"runs": [...]}` for several adapters trained one after another (the four experts). The fingerprint is what a
checkpoint must match to be resumed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pixel_pipeline.training.base_model import DEFAULT_BASE_MODEL

CHAINING_MODES = ("continue", "merge")
SMALL_MODEL_PARAMETERS = 50_000_000
DEFAULT_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


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


def load_run_configs(data: dict[str, Any]) -> list[TrainingConfig]:
    runs = data["runs"] if "runs" in data else [data]
    return [TrainingConfig.from_dict(r) for r in runs]


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
