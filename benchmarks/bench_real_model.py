"""A real pretrained model through the whole training group on CPU: SmolLM2-135M-Instruct, three stages, four
experts, the router and `training_evaluation`, on a sample of real exports, through Dagster (the same assets and
checks as production).

    python benchmarks/bench_real_model.py --exports /tmp/out_base/exports --out /tmp/real_model_run

It copies a seeded random sample of each stage's and expert's train / validation files into `OUT/exports` (so the
real exports are never modified), materializes the training group and the evaluation into `OUT`, and writes
`OUT/bench_real_model.json`: per-stage and per-expert validation loss before/after, wall seconds per asset, the
perplexity matrices, voice scores, the generations table and every check. The defaults fit in about 25 minutes on
2 busy CPU cores; on a GPU raise the sample sizes (`--train-pairs 0` = every pair) and `--max-seq-length`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

STAGES = ("stage1_counseling", "stage2_reasoning", "stage3_voice")


def sample_lines(src: Path, dst: Path, n: int, seed: int) -> int:
    """A seeded random sample of `n` lines of a JSONL file (all when n <= 0), in file order."""
    lines = [line for line in src.read_text(encoding="utf-8").splitlines() if line.strip()] if src.exists() else []
    if 0 < n < len(lines):
        keep = sorted(random.Random(seed).sample(range(len(lines)), n))
        lines = [lines[i] for i in keep]
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return len(lines)


def voice_stage_from_experts(exports: Path, out: Path, source: str) -> dict[str, int]:
    """Stage 3 as `splits` writes it once the educator is a voice source: the expert files' segments of `source`
    (same rows, same split, same system prompt), for exports made while the voice sources were empty."""
    from pixel_pipeline.core.records import STYLES

    counts = {}
    for split in ("train", "validation"):
        lines = []
        for style in STYLES:
            path = exports / "experts" / style / f"{split}.jsonl"
            for line in path.read_text(encoding="utf-8").splitlines() if path.exists() else []:
                if line.strip() and json.loads(line)["metadata"].get("source") == source:
                    lines.append(line)
        (out / f"{split}.jsonl").parent.mkdir(parents=True, exist_ok=True)
        (out / f"{split}.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        counts[split] = len(lines)
    if not counts["train"]:
        raise ValueError(f"no expert rows of source {source!r}: no voice stage to train")
    return counts


def sample_exports(exports: Path, out: Path, args) -> dict[str, dict[str, int]]:
    from pixel_pipeline.core.records import STYLES

    voice = exports / "stages" / "stage3_voice" / "train.jsonl"
    if not voice.exists() or not voice.read_text(encoding="utf-8").strip():
        if not args.voice_source:
            raise ValueError(f"{voice} has no pairs (voice sources were empty when it was exported): pass "
                             "--voice-source <educator> to take stage 3 from the expert files' segments of that source")
        derived = out.parent / "voice_from_experts"
        print(f"stage 3 from expert rows of {args.voice_source}: {voice_stage_from_experts(exports, derived, args.voice_source)}")
        exports = _overlay(exports, derived, out.parent / "source_exports")
    counts = {}
    folders = [("stages/" + s, args.train_pairs) for s in STAGES] + [("experts/" + s, args.expert_train_pairs)
                                                                     for s in STYLES]
    for folder, n_train in folders:
        if not (exports / folder / "train.jsonl").exists():
            raise FileNotFoundError(f"{exports / folder / 'train.jsonl'} missing: materialize fine_tuning_exports")
        counts[folder] = {
            "train": sample_lines(exports / folder / "train.jsonl", out / folder / "train.jsonl", n_train, args.seed),
            "validation": sample_lines(exports / folder / "validation.jsonl", out / folder / "validation.jsonl",
                                       args.val_pairs, args.seed),
        }
    return counts


def _overlay(exports: Path, voice_dir: Path, view: Path) -> Path:
    """A folder of symlinks to the real exports with stages/stage3_voice replaced by `voice_dir` (nothing copied)."""
    import shutil

    shutil.rmtree(view, ignore_errors=True)
    (view / "stages").mkdir(parents=True)
    for child in exports.iterdir():
        if child.name != "stages":
            (view / child.name).symlink_to(child)
    for stage in (exports / "stages").iterdir():
        if stage.name != "stage3_voice":
            (view / "stages" / stage.name).symlink_to(stage)
    (view / "stages" / "stage3_voice").symlink_to(voice_dir)
    return view


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exports", default="output/exports", help="a fine_tuning_exports folder (read only)")
    parser.add_argument("--out", default="/tmp/real_model_run", help="output folder (PIXEL_OUTPUT_DIR of the run)")
    parser.add_argument("--base-model", default="smollm2-135m-instruct")
    parser.add_argument("--train-pairs", type=int, default=12, help="per stage (0 = all)")
    parser.add_argument("--expert-train-pairs", type=int, default=6, help="per expert (0 = all)")
    parser.add_argument("--val-pairs", type=int, default=4, help="per stage / expert validation set (0 = all)")
    parser.add_argument("--stage-epochs", type=int, default=2)
    parser.add_argument("--expert-epochs", type=int, default=2)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--max-seq-length", type=int, default=384)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--micro-batch-size", type=int, default=1, help="packed rows per micro-batch (GPU: 8+)")
    parser.add_argument("--cpu-threads", type=int, default=1,
                        help="torch threads (0 = torch default). On a busy 2-core machine 1 thread measured 47 tok/s "
                             "forward+backward on SmolLM2 against 10-25 with 2 threads fighting other jobs")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--voice-source", default="",
                        help="when the exported stage 3 is empty: build it from the expert files' rows of this source")
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    out = Path(args.out).resolve()
    os.environ["PIXEL_OUTPUT_DIR"] = str(out)
    os.environ["PIXEL_BASE_MODEL"] = args.base_model
    import dagster as dg

    from pixel_pipeline.defs.resources import EmbeddingModel, PixelStorage
    from pixel_pipeline.defs.training import (
        LoraTraining,
        expert_adapters,
        expert_router,
        lora_stage1_counseling,
        lora_stage2_reasoning,
        lora_stage3_voice,
        training_evaluation,
    )

    storage = PixelStorage()
    counts = sample_exports(Path(args.exports).resolve(), storage.paths.exports_dir, args)
    print(json.dumps(counts), flush=True)
    run = {"learning_rate": args.learning_rate, "max_seq_length": args.max_seq_length,
           "micro_batch_size": args.micro_batch_size,
           "lora_r": 16, "lora_alpha": 32, "checkpoint_every_steps": 1000, "eval_every_steps": 100_000}
    ops = {a.key.path[-1]: {"config": {**run, "epochs": args.stage_epochs}}
           for a in (lora_stage1_counseling, lora_stage2_reasoning, lora_stage3_voice)}
    ops["expert_adapters"] = {"config": {**run, "epochs": args.expert_epochs,
                                         "expert_learning_rates": {s: args.learning_rate for s in
                                                                   ("therapeutic", "educational", "empathetic",
                                                                    "practical")}}}
    ops["training_evaluation"] = {"config": {"max_validation_pairs": args.val_pairs,
                                             "max_seq_length": args.max_seq_length,
                                             "micro_batch_size": args.micro_batch_size,
                                             "max_new_tokens": args.max_new_tokens, "min_perplexity_drop": 0.10}}
    resources = {"storage": storage, "lora_training": LoraTraining(base_model=args.base_model, cpu_threads=args.cpu_threads),
                 "pipes_training_client": dg.PipesSubprocessClient(), "embedding_model": EmbeddingModel()}
    assets = [lora_stage1_counseling, lora_stage2_reasoning, lora_stage3_voice, expert_adapters, expert_router,
              training_evaluation]
    started = time.perf_counter()
    result = dg.materialize(assets, resources=resources, run_config={"ops": ops}, raise_on_error=False)
    wall = time.perf_counter() - started

    step_seconds = {}
    for event in result.all_events:
        if event.event_type_value == "STEP_SUCCESS":
            step_seconds[event.step_key] = round(event.event_specific_data.duration_ms / 1000, 1)
    metadata = {e.asset_key.path[-1]: {k: getattr(v, "value", v) for k, v in
                                       e.event_specific_data.materialization.metadata.items()}
                for e in result.get_asset_materialization_events()}
    losses = {}
    for name in ("lora_stage1_counseling", "lora_stage2_reasoning", "lora_stage3_voice"):
        m = metadata.get(name, {})
        losses[name] = {k: m.get(k) for k in ("val_loss_initial", "val_loss_final", "tokens_per_second", "steps")}
    experts = metadata.get("expert_adapters", {})
    for style in ("therapeutic", "educational", "empathetic", "practical"):
        losses[style] = {k: experts.get(f"{style}/{k}") for k in ("val_loss_initial", "val_loss_final",
                                                                   "tokens_per_second", "steps")}
    evaluation_file = storage.paths.training_dir("training_evaluation") / "evaluation.json"
    summary = {
        "success": result.success,
        "wall_seconds": round(wall, 1),
        "step_seconds": step_seconds,
        "sampled_pairs": counts,
        "settings": vars(args),
        "val_losses": losses,
        "checks": [(e.asset_key.path[-1], e.check_name, e.passed) for e in result.get_asset_check_evaluations()],
        "evaluation": json.loads(evaluation_file.read_text()) if evaluation_file.exists() else None,
    }
    (out / "bench_real_model.json").write_text(json.dumps(summary, indent=1, default=str))
    print(json.dumps({k: summary[k] for k in ("success", "wall_seconds", "step_seconds", "val_losses", "checks")},
                     indent=1, default=str))
    report = storage.paths.training_dir("training_evaluation") / "evaluation.md"
    if report.exists():
        print(report.read_text())
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
