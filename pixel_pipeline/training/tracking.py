"""What the trainer logs while it runs: TensorBoard (always), Weights & Biases / MLflow (when asked), memory and
the GPU's peak FLOP/s for MFU."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pixel_pipeline.training.train_config import TrainingConfig

# Dense bf16 peak FLOP/s per GPU, for MFU (set `peak_flops` for anything else).
PEAK_FLOPS_BY_NAME = {"H100": 989e12, "H200": 989e12, "H800": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12,
                      "L4": 121e12, "4090": 165e12}


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
