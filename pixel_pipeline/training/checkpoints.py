"""Checkpoints a killed run resumes from: adapter (safetensors) plus optimizer, scheduler, RNG states and loss
history, written to a temporary folder then renamed, so a checkpoint is whole or absent. Restoring the RNG states
replays the same data order, so a resumed run ends where an unbroken one does."""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

from pixel_pipeline.training.model_setup import load_adapter_file


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


def list_checkpoints(ckpt_root: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
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
    for old in list_checkpoints(ckpt_root)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(checkpoint: Path) -> dict[str, Any]:
    """The saved optimizer, scheduler, RNG and loop state of one checkpoint (the adapter is loaded on restore)."""
    import torch

    return torch.load(checkpoint / "trainer_state.pt", weights_only=True)


def restore_checkpoint(checkpoint: Path, saved: dict[str, Any], model, optimizer, scheduler) -> dict[str, Any]:
    """Put the adapter, optimizer, scheduler and RNG back as they were; returns the loop state, noting the resume."""
    from peft import set_peft_model_state_dict

    set_peft_model_state_dict(model, load_adapter_file(checkpoint))
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    _set_rng_state(saved["rng"])
    state = saved["state"]
    state["resumed_from"] = [*state.get("resumed_from", []), state["step"]]
    return state
