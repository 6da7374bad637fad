"""The training assets through Dagster: Pipes round trip, chained stages, strategies, and the Kubernetes pod spec."""

from __future__ import annotations

import json
from types import SimpleNamespace

import dagster as dg
import pytest
from peft import PeftModel

from pixel_pipeline.core.io import write_json
from pixel_pipeline.defs.resources import PixelStorage
from pixel_pipeline.defs.training import (
    GPU_OP_TAGS,
    LoraTraining,
    expert_adapters,
    launch_trainer,
    lora_stage1_counseling,
    lora_stage2_reasoning,
    trainer_pod_spec,
)
from pixel_pipeline.training.base_model import DEFAULT_BASE_MODEL, load_base_model
from pixel_pipeline.training.runs import stage_export_folder
from pixel_pipeline.testing.training_exports import write_synthetic_exports
from pixel_pipeline.training.trainer import TrainingConfig, train

TINY = {"epochs": 1, "learning_rate": 1e-3, "lora_r": 4, "lora_alpha": 8, "max_seq_length": 256,
        "micro_batch_size": 1, "packing": False, "checkpoint_every_steps": 2}


def resources(strategy: str = "staged"):
    return {"storage": PixelStorage(), "lora_training": LoraTraining(strategy=strategy, cpu_threads=1),
            "pipes_training_client": dg.PipesSubprocessClient()}


def test_stages_train_through_pipes_report_metadata_and_checks_and_chain(tmp_paths):
    write_synthetic_exports(tmp_paths.exports_dir, n_train=4, n_validation=2, seed=5)
    result = dg.materialize(
        [lora_stage1_counseling, lora_stage2_reasoning], resources=resources(),
        run_config={"ops": {"lora_stage1_counseling": {"config": TINY}, "lora_stage2_reasoning": {"config": TINY}}},
    )
    assert result.success
    checks = [(e.asset_key.path[-1], e.check_name, e.passed) for e in result.get_asset_check_evaluations()]
    assert all(passed for _, _, passed in checks), checks
    assert ("lora_stage2_reasoning", "starts_from_previous_stage", True) in checks
    assert len(checks) == 5

    mats = {e.asset_key.path[-1]: e.event_specific_data.materialization.metadata
            for e in result.get_asset_materialization_events()}
    s1, s2 = mats["lora_stage1_counseling"], mats["lora_stage2_reasoning"]
    assert isinstance(s1["adapter_path"], dg.PathMetadataValue)
    assert s1["base_model"].value == DEFAULT_BASE_MODEL
    for key in ("val_loss_initial", "val_loss_final", "val_perplexity", "tokens_per_second", "steps"):
        assert s1[key].value is not None, key
    assert s1["loss_curves"].value.startswith("![")
    assert s1["strategy"].value == "staged"
    assert len(s1) <= 11, sorted(s1)
    # the rest of the run is in its result.json, beside the adapter
    report1 = json.loads(open(s1["report_path"].value).read())
    assert report1["peak_memory_mb"] is not None and report1["train_loss_final"] is not None
    assert report1["chaining"] == "continue" and report1["train_files"][0].endswith("train.jsonl")
    init = json.loads(open(s2["report_path"].value).read())["init"]
    assert init["mode"] == "continue" and init["init_adapter"] == s1["adapter_path"].value
    assert init["max_abs_diff"] == 0.0
    # the reported adapter folder is what PEFT loads
    base = load_base_model(DEFAULT_BASE_MODEL, tmp_paths.models_dir)
    assert isinstance(PeftModel.from_pretrained(base, s2["adapter_path"].value), PeftModel)
    pointer = json.loads((tmp_paths.training_dir("lora_stage2_reasoning") / "latest.json").read_text())
    assert pointer["adapter_path"] == s2["adapter_path"].value


def test_experts_train_on_top_of_stage3_and_report_validation_loss_per_expert(tmp_paths):
    exports = write_synthetic_exports(tmp_paths.exports_dir, n_train=3, n_validation=2, seed=7)
    stage3 = train(TrainingConfig(
        name="lora_stage3_voice", train_files=[str(exports / "stages" / "stage3_voice" / "train.jsonl")],
        output_dir=str(tmp_paths.training_dir("lora_stage3_voice")), models_dir=str(tmp_paths.models_dir),
        epochs=1, lora_r=4, lora_alpha=8, max_seq_length=256, micro_batch_size=1, packing=False, cpu_threads=1),
        log=lambda _: None)
    write_json({"adapter_path": stage3["adapter_path"], "base_model": stage3["base_model"]},
               tmp_paths.training_dir("lora_stage3_voice") / "latest.json")
    experts = {**TINY, "styles": ["empathetic", "practical"],
               "expert_learning_rates": {"empathetic": 2e-3, "practical": 5e-4}}
    result = dg.materialize([expert_adapters], resources=resources(),
                            run_config={"ops": {"expert_adapters": {"config": experts}}})
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"loss_finite_and_decreasing": True, "adapter_loads_in_peft": True,
                      "starts_from_previous_stage": True, "validation_loss_per_expert": True}
    meta = result.get_asset_materialization_events()[0].event_specific_data.materialization.metadata
    assert not [key for key in meta if "/" in key], "no per-expert prefixed keys"
    assert meta["experts_skipped"].value == {} and "| empathetic |" in meta["summary"].value
    reports = {style: json.loads(open(p).read()) for style, p in meta["report_paths"].value.items()}
    assert {style: r["learning_rate"] for style, r in reports.items()} == {"empathetic": 2e-3, "practical": 5e-4}
    assert reports["empathetic"]["val_loss_final"] > 0 and reports["practical"]["val_loss_final"] > 0
    assert reports["empathetic"]["init"]["init_adapter"] == stage3["adapter_path"]
    assert meta["adapter_path_practical"].value == reports["practical"]["adapter_path"]
    base = load_base_model(DEFAULT_BASE_MODEL, tmp_paths.models_dir)
    model = PeftModel.from_pretrained(base, meta["adapter_path"].value, subfolder="practical/adapter")
    assert isinstance(model, PeftModel)


def test_mixed_strategy_trains_the_plan_in_stage1_and_later_stages_carry_its_adapter(tmp_paths):
    assert stage_export_folder(tmp_paths, "lora_stage1_counseling", "mixed") == tmp_paths.exports_dir / "plans" / "mixed"
    assert stage_export_folder(tmp_paths, "lora_stage3_voice", "staged").name == "stage3_voice"
    write_json({"adapter_path": "/somewhere/adapter", "base_model": DEFAULT_BASE_MODEL},
               tmp_paths.training_dir("lora_stage1_counseling") / "latest.json")
    result = dg.materialize([lora_stage2_reasoning], resources=resources("mixed"))
    assert result.success
    meta = result.get_asset_materialization_events()[0].event_specific_data.materialization.metadata
    assert meta["adapter_path"].value == "/somewhere/adapter"
    assert "lora_stage1_counseling" in meta["skipped_training"].value


def test_missing_exports_fail_with_a_clear_error(tmp_paths):
    with pytest.raises(FileNotFoundError, match="materialize fine_tuning_exports first"):
        dg.materialize([lora_stage1_counseling], resources=resources(),
                       run_config={"ops": {"lora_stage1_counseling": {"config": TINY}}})


def test_training_assets_are_gpu_pooled_and_tagged_for_kubernetes():
    assert lora_stage1_counseling.op.pool == "gpu"
    tag = lora_stage1_counseling.op.tags["dagster-k8s/config"]
    tag = json.loads(tag) if isinstance(tag, str) else tag
    assert tag["container_config"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert GPU_OP_TAGS["dagster-k8s/config"]["pod_spec_config"]["tolerations"][0]["key"] == "nvidia.com/gpu"


def test_pipes_k8s_pod_requests_a_gpu_with_the_trainer_image_and_env(monkeypatch):
    from dagster_k8s.pipes import build_pod_body

    monkeypatch.setenv("PIXEL_OUTPUT_PVC", "pixel-output")
    monkeypatch.setenv("PIXEL_OUTPUT_DIR", "/data/output")
    pod = build_pod_body(
        pod_name="dagster-lora-stage1", image="ghcr.io/example/pixel-trainer:1.0",
        command=["python", "-m", "pixel_pipeline.training.trainer"],
        env_vars={"DAGSTER_PIPES_CONTEXT": "ctx", "PIXEL_OUTPUT_DIR": "/data/output"},
        base_pod_meta=None, base_pod_spec=trainer_pod_spec(),
    )
    container = pod.spec.containers[0]
    assert container.image == "ghcr.io/example/pixel-trainer:1.0"
    assert container.command == ["python", "-m", "pixel_pipeline.training.trainer"]
    assert container.resources.limits["nvidia.com/gpu"] == "1"
    assert container.resources.requests["nvidia.com/gpu"] == "1"
    env = {e.name: e.value for e in container.env}
    assert env["DAGSTER_PIPES_CONTEXT"] == "ctx" and env["PIXEL_OUTPUT_DIR"] == "/data/output"
    assert container.volume_mounts[0].mount_path == "/data/output"
    assert pod.spec.volumes[0].persistent_volume_claim.claim_name == "pixel-output"
    assert pod.spec.tolerations[0].key == "nvidia.com/gpu"
    assert pod.spec.restart_policy == "Never"


def test_a_kubernetes_pipes_client_gets_the_image_command_and_gpu_pod_spec(tmp_path, monkeypatch):
    class RecordingClient:  # stands in for dagster_k8s.PipesK8sClient, which needs a cluster
        def run(self, **kwargs):
            self.kwargs = kwargs
            return SimpleNamespace(get_materialize_result=lambda: dg.MaterializeResult(metadata={"ok": True}))

    monkeypatch.setenv("PIXEL_TRAINER_IMAGE", "registry.example/pixel:2")
    monkeypatch.setenv("PIXEL_OUTPUT_DIR", "/data/output")
    client = RecordingClient()
    runs = [{"name": "lora_stage1_counseling", "train_files": ["/data/output/exports/x.jsonl"]}]
    result = launch_trainer(None, client, runs, ["adapter_loads_in_peft"], tmp_path / "trainer_config.json")
    assert result.metadata == {"ok": True}
    sent = client.kwargs
    assert sent["image"] == "registry.example/pixel:2"
    assert sent["command"] == ["python", "-m", "pixel_pipeline.training.trainer"]
    assert sent["extras"]["trainer_config"] == {"runs": runs}  # the pod reads its config from the Pipes extras
    assert sent["env"]["PIXEL_OUTPUT_DIR"] == "/data/output"
    assert sent["base_pod_spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    monkeypatch.delenv("PIXEL_TRAINER_IMAGE")
    with pytest.raises(RuntimeError, match="PIXEL_TRAINER_IMAGE"):
        launch_trainer(None, client, runs, [], tmp_path / "trainer_config.json")
