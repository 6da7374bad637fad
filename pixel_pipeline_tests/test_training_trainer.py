"""The trainer: resume after an interruption, stage chaining (continue and merge), adapters that load back."""

from __future__ import annotations

import json
import math

import pytest
import torch

from pixel_pipeline.testing.training_exports import write_synthetic_exports
from pixel_pipeline.training.trainer import (
    SimulatedInterruption,
    TrainingConfig,
    cosine_lr_lambda,
    load_adapter_file,
    train,
)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    return write_synthetic_exports(tmp_path_factory.mktemp("exports"), n_train=6, n_validation=3, seed=3)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("models"))


def config(exports, models_dir, out, stage="stage1_counseling", **kw) -> TrainingConfig:
    folder = exports / "stages" / stage
    base = dict(name=stage, train_files=[str(folder / "train.jsonl")],
                validation_files=[str(folder / "validation.jsonl")], output_dir=str(out), models_dir=models_dir,
                epochs=2, learning_rate=1e-3, lora_r=4, lora_alpha=8, max_seq_length=256, micro_batch_size=1,
                packing=False, checkpoint_every_steps=2, warmup_ratio=0.2, cpu_threads=1)
    return TrainingConfig(**{**base, **kw})


def test_cosine_schedule_warms_up_then_decays_to_the_floor():
    f = cosine_lr_lambda(total_steps=10, warmup_steps=2, min_lr_ratio=0.1)
    assert f(0) == pytest.approx(0.5) and f(1) == pytest.approx(1.0)
    assert f(2) == pytest.approx(1.0) and f(10) == pytest.approx(0.1)
    assert all(f(i) >= f(i + 1) for i in range(2, 10))


def test_interrupted_run_resumes_from_its_checkpoint_and_ends_where_an_uninterrupted_one_does(
        exports, models_dir, tmp_path):
    full = train(config(exports, models_dir, tmp_path / "full"), log=lambda _: None)
    assert full["steps"] == full["total_steps"] == 12
    with pytest.raises(SimulatedInterruption):
        train(config(exports, models_dir, tmp_path / "killed", stop_after_steps=5), log=lambda _: None)
    assert sorted(p.name for p in (tmp_path / "killed" / "checkpoints").iterdir() if p.name.startswith("step_")) == \
        ["step_0000002", "step_0000004"]  # every 2 steps, the newest 2 kept; step 5 was lost with the "crash"
    resumed = train(config(exports, models_dir, tmp_path / "killed"), log=lambda _: None)
    assert resumed["resumed_from_steps"] == [4]
    assert resumed["steps"] == 12
    assert resumed["train_loss_final"] == pytest.approx(full["train_loss_final"], abs=1e-4)
    assert resumed["val_loss_final"] == pytest.approx(full["val_loss_final"], abs=1e-4)
    a, b = load_adapter_file(tmp_path / "full" / "adapter"), load_adapter_file(tmp_path / "killed" / "adapter")
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-4
    # loss finite and going down; the saved adapter loads back into PEFT with the same logits
    assert full["loss_check"]["finite"] and full["loss_check"]["decreasing"]
    assert full["adapter_reload"]["matches"] and full["adapter_reload"]["logits_max_abs_diff"] < 1e-4
    assert full["val_perplexity"] == pytest.approx(math.exp(full["val_loss_final"]))
    assert (tmp_path / "full" / "tensorboard").is_dir() and any((tmp_path / "full" / "tensorboard").iterdir())
    # result.json (the asset's report_path) keeps what the materialization metadata leaves out
    report = json.loads((tmp_path / "full" / "result.json").read_text())
    assert full["report_path"] == str(tmp_path / "full" / "result.json")
    for key in ("train_loss_final", "peak_memory_mb", "mfu", "resumed_from_steps", "init", "tensorboard_dir",
                "trackers", "train_data", "validation_data", "learning_rate", "chaining", "train_files"):
        assert key in report, key
    assert report["rows_truncated"] == report["train_data"]["rows_truncated"] + \
        report["validation_data"]["rows_truncated"]
    assert report["last_checkpoint"].endswith("step_0000012") and report["learning_rate"] == 1e-3


def test_changed_data_does_not_resume_someone_elses_checkpoint(exports, models_dir, tmp_path):
    with pytest.raises(SimulatedInterruption):
        train(config(exports, models_dir, tmp_path / "run", stop_after_steps=2), log=lambda _: None)
    other = config(exports, models_dir, tmp_path / "run", stage="stage2_reasoning", epochs=1)
    assert train(other, log=lambda _: None)["resumed_from_steps"] == []


def test_next_stage_continues_from_the_previous_adapter_verified_on_tensors(exports, models_dir, tmp_path):
    s1 = train(config(exports, models_dir, tmp_path / "s1", epochs=1), log=lambda _: None)
    s2 = train(config(exports, models_dir, tmp_path / "s2", stage="stage2_reasoning", epochs=1,
                      init_adapter=s1["adapter_path"], lora_r=8), log=lambda _: None)
    assert s2["init"]["mode"] == "continue"
    assert s2["init"]["starts_from_previous"] and s2["init"]["max_abs_diff"] == 0.0
    assert s2["init"]["previous_adapter_nonzero"] and s2["init"]["tensors_compared"] > 0
    assert s2["base_model"] == s1["base_model"]
    before, after = load_adapter_file(s1["adapter_path"]), load_adapter_file(s2["adapter_path"])
    assert before.keys() == after.keys()  # the same adapter (r=4 inherited, the r=8 setting does not apply)
    assert any(not torch.equal(before[k], after[k]) for k in before)  # ...and stage 2 trained it further
    # merge mode: stage 1 is folded into the base, stage 2 gets a fresh adapter; the merge itself is verified
    s2m = train(config(exports, models_dir, tmp_path / "s2m", stage="stage2_reasoning", epochs=1,
                       init_adapter=s1["adapter_path"], chaining="merge"), log=lambda _: None)
    assert s2m["init"]["mode"] == "merge" and s2m["init"]["starts_from_previous"]
    assert s2m["init"]["fresh_adapter_is_noop"] and s2m["init"]["max_abs_diff"] < 1e-4
    assert s2m["base_model"].endswith("merged_base") and s2m["adapter_reload"]["matches"]


def test_gradient_accumulation_matches_one_big_batch(exports, models_dir, tmp_path):
    """The step loss is normalised by the target tokens of the whole step, so 2 x 1 row == 1 x 2 rows."""
    common = dict(epochs=1, lora_dropout=0.0, checkpoint_every_steps=100)
    accumulated = train(config(exports, models_dir, tmp_path / "acc", micro_batch_size=1,
                               gradient_accumulation_steps=2, **common), log=lambda _: None)
    big = train(config(exports, models_dir, tmp_path / "big", micro_batch_size=2, **common), log=lambda _: None)
    assert accumulated["steps"] == big["steps"] == 3
    a, b = load_adapter_file(accumulated["adapter_path"]), load_adapter_file(big["adapter_path"])
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5


def test_a_sigkilled_trainer_process_resumes_on_rerun(exports, models_dir, tmp_path):
    """The real thing: kill -9 the CLI after its first checkpoint, run again, end where an unbroken run ends."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    cfg = config(exports, models_dir, tmp_path / "run", epochs=4, checkpoint_every_steps=3, lora_dropout=0.0)
    (tmp_path / "run.json").write_text(json.dumps(cfg.__dict__))
    proc = subprocess.Popen([sys.executable, "-m", "pixel_pipeline.training.trainer", "--config",
                             str(tmp_path / "run.json")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "DAGSTER_PIPES_CONTEXT": ""})
    checkpoints = tmp_path / "run" / "checkpoints"
    deadline = time.time() + 120
    while not any(checkpoints.glob("step_*")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "run" / "result.json").exists(), "the run finished before it could be killed"
    resumed = train(config(exports, models_dir, tmp_path / "run", epochs=4, checkpoint_every_steps=3,
                           lora_dropout=0.0), log=lambda _: None)
    unbroken = train(config(exports, models_dir, tmp_path / "unbroken", epochs=4, checkpoint_every_steps=3,
                            lora_dropout=0.0), log=lambda _: None)
    assert resumed["resumed_from_steps"] and resumed["resumed_from_steps"][0] % 3 == 0
    assert resumed["steps"] == unbroken["steps"] == 24
    assert resumed["val_loss_final"] == pytest.approx(unbroken["val_loss_final"], abs=1e-4)
