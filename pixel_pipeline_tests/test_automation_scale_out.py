"""Scale-out on paper: the Kubernetes objects Dagster would send for a training step, rendered with dagster-k8s.

No cluster is needed: the same helpers the `k8s_job_executor` / `K8sRunLauncher` and `PipesK8sClient` use turn the
assets' tags and the trainer's pod spec into Kubernetes manifests, and the tests read those manifests.
"""

from __future__ import annotations

import json

import dagster as dg
import kubernetes
import pytest
from dagster_k8s.job import DagsterK8sJobConfig, construct_dagster_k8s_job, get_user_defined_k8s_config
from dagster_k8s.pipes import build_pod_body

from pixel_pipeline.defs.automation import INPUT_FILE_SEGMENTS, incremental_defs
from pixel_pipeline.definitions import defs

TRAINING_ASSETS_ON_GPU = {"lora_stage1_counseling", "lora_stage2_reasoning", "lora_stage3_voice", "expert_adapters"}
IMAGE = "registry.example.com/pixel-pipeline:1.0"


def step_job_manifest(assets_def: dg.AssetsDefinition, step_key: str) -> dict:
    """The batch/v1 Job the k8s_job_executor creates for one step (op tags `dagster-k8s/config` merged in)."""
    user_config = get_user_defined_k8s_config(assets_def.op.tags)
    job_config = DagsterK8sJobConfig(job_image=IMAGE, dagster_home="/opt/dagster/dagster_home", instance_config_map="dagster-instance")
    job = construct_dagster_k8s_job(
        job_config, ["dagster", "api", "execute_step"], f"dagster-step-{step_key}", user_defined_k8s_config=user_config, component="step_worker"
    )
    return kubernetes.client.ApiClient().sanitize_for_serialization(job)


@pytest.fixture(scope="module")
def asset_graph():
    return defs.get_repository_def().asset_graph


def test_training_steps_request_a_gpu_and_tolerate_gpu_nodes(asset_graph):
    gpu_assets = {k.to_user_string() for k in asset_graph.get_all_asset_keys() if asset_graph.get(k).assets_def.op.pool == "gpu"}
    assert TRAINING_ASSETS_ON_GPU <= gpu_assets, f"training assets without pool='gpu': {TRAINING_ASSETS_ON_GPU - gpu_assets}"
    for name in sorted(gpu_assets):
        manifest = step_job_manifest(asset_graph.get(dg.AssetKey(name)).assets_def, name.replace("_", "-"))
        pod = manifest["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["image"] == IMAGE
        assert int(container["resources"]["requests"]["nvidia.com/gpu"]) >= 1, name
        assert container["resources"]["limits"]["nvidia.com/gpu"] == container["resources"]["requests"]["nvidia.com/gpu"]
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"], name


def test_data_assets_stay_on_cpu_nodes(asset_graph):
    for key in asset_graph.get_all_asset_keys():
        node = asset_graph.get(key)
        if node.group_name == "training":
            continue
        container = step_job_manifest(node.assets_def, "data")["spec"]["template"]["spec"]["containers"][0]
        assert "nvidia.com/gpu" not in json.dumps(container.get("resources") or {}), key.to_user_string()


def test_the_pipes_pod_for_the_trainer_requests_a_gpu_and_mounts_the_shared_output(monkeypatch):
    from pixel_pipeline.defs import training

    monkeypatch.setenv("PIXEL_OUTPUT_DIR", "/data/output")
    spec = training.trainer_pod_spec(gpu_count=2, output_pvc="pixel-output")
    pod = kubernetes.client.ApiClient().sanitize_for_serialization(
        build_pod_body("pixel-train-stage1", IMAGE, ["python", "-m", training.TRAINER_MODULE], {"PIXEL_OUTPUT_DIR": "/data/output"}, None, spec)
    )
    container = pod["spec"]["containers"][0]
    assert container["resources"]["requests"]["nvidia.com/gpu"] == "2"
    assert container["command"] == ["python", "-m", training.TRAINER_MODULE]
    assert {"name": "pixel-output", "mountPath": "/data/output"} in container["volumeMounts"]
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "pixel-output"
    assert pod["spec"]["restartPolicy"] == "Never"


def test_per_file_work_is_partitioned_so_an_executor_can_fan_it_out():
    node = incremental_defs.get_repository_def().asset_graph.get(INPUT_FILE_SEGMENTS)
    assert isinstance(node.partitions_def, dg.DynamicPartitionsDefinition)
    assert node.assets_def.op.pool != "gpu"
