"""Tokens/s and padding waste: this trainer (packed, padding-free) vs a plain Hugging Face Trainer + PEFT baseline.

Both runs use the same model, data (assistant-only labels), LoRA settings, learning rate, epochs and micro-batch
size (our micro-batch is `micro_batch_size` packed rows of `max_seq_length` tokens; the baseline's is
`micro_batch_size` sequences padded to `max_seq_length`, the HF default for `padding="max_length"` setups).

    python benchmarks/bench_trainer.py                 # CPU, embedded tiny Llama (minutes on 2 cores)
    python benchmarks/bench_trainer.py --gpu           # 1B-shaped random-init Llama in bf16, adds MFU
    python benchmarks/bench_trainer.py --gpu --shape 8b

Throughput is real (non-padding) tokens per second of training-step time, plus an end-to-end figure (the whole
call: model load, tokenisation, training). MFU uses 4N FLOPs per token (LoRA: forward 2N + activation gradients
2N; no weight gradients for the frozen N). Data: the exported stage 1 set when `--exports` points at one,
otherwise synthetic pairs with a long-tailed length distribution.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHAPES = {  # Llama-3.2-1B / Llama-3.1-8B shaped, random init
    "1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
               num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=True),
    "8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=False),
}


def build_gpu_model_folder(shape: str, folder: Path) -> str:
    """A random-init model of a real size saved with the embedded tokenizer (ids < 4096 fit any vocab)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from pixel_pipeline.training.base_model import DEFAULT_BASE_MODEL, load_tokenizer

    tok = load_tokenizer(DEFAULT_BASE_MODEL, folder.parent / "models")
    config = LlamaConfig(**SHAPES[shape], max_position_embeddings=8192, rope_theta=500000.0,
                         pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    del model
    torch.cuda.empty_cache()
    return str(folder)


def run_ours(args, base_model: str, models_dir: str, train_file: str, out: Path) -> dict:
    from pixel_pipeline.training.trainer import TrainingConfig, train

    cfg = TrainingConfig(
        name="ours", train_files=[train_file], validation_files=[], output_dir=str(out), base_model=base_model,
        models_dir=models_dir, epochs=args.epochs, learning_rate=2e-4, lora_r=16, lora_alpha=32,
        max_seq_length=args.max_seq_length, micro_batch_size=args.micro_batch_size, packing=True,
        checkpoint_every_steps=10**9, keep_checkpoints=1, resume=False, seed=0, cpu_threads=args.cpu_threads,
        gradient_checkpointing=args.gradient_checkpointing, max_steps=args.max_steps)
    t0 = time.perf_counter()
    r = train(cfg, log=lambda m: None)
    wall = time.perf_counter() - t0
    return {"tokens": r["train_data"]["tokens"] * args.epochs if args.max_steps < 0 else None,
            "tokens_per_second": r["tokens_per_second"], "padding_waste": r["padding_fraction"],
            "wall_seconds": wall, "steps": r["steps"], "final_loss": r["train_loss_final"], "mfu": r["mfu"],
            "peak_memory_mb": r["peak_memory_mb"], "n_parameters": r["n_parameters"], "tokens_seen": None}


def run_baseline(args, base_model: str, models_dir: str, train_file: str, out: Path) -> dict:
    """HF Trainer + PEFT, each example padded to max_seq_length, labels masked the same way."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from pixel_pipeline.training.base_model import load_base_model, load_tokenizer
    from pixel_pipeline.training.data import read_messages_jsonl, tokenize_conversations
    from pixel_pipeline.training.trainer import DEFAULT_TARGET_MODULES

    if args.cpu_threads:
        torch.set_num_threads(args.cpu_threads)
    t0 = time.perf_counter()
    tok = load_tokenizer(base_model, models_dir)
    convs, stats = read_messages_jsonl([train_file])
    examples, stats = tokenize_conversations(tok, convs, args.max_seq_length, "truncate", stats)
    rows = [{"input_ids": e.input_ids, "labels": e.labels} for e in examples]
    L = args.max_seq_length

    def collate(batch):
        ids = torch.full((len(batch), L), tok.pad_token_id)
        labels = torch.full((len(batch), L), -100)
        mask = torch.zeros((len(batch), L), dtype=torch.long)
        for i, b in enumerate(batch):
            n = len(b["input_ids"])
            ids[i, :n] = torch.tensor(b["input_ids"])
            labels[i, :n] = torch.tensor(b["labels"])
            mask[i, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}

    model = load_base_model(base_model, models_dir)
    model.config.use_cache = False
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, task_type="CAUSAL_LM",
                                             target_modules=list(DEFAULT_TARGET_MODULES)))
    step_time = {"s": 0.0}

    class StepTimer(TrainerCallback):
        def on_step_begin(self, a, s, c, **kw):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            step_time["t"] = time.perf_counter()

        def on_step_end(self, a, s, c, **kw):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            step_time["s"] += time.perf_counter() - step_time["t"]

    on_gpu = torch.cuda.is_available()
    total_steps = args.max_steps if args.max_steps > 0 else -(-len(rows) // args.micro_batch_size) * args.epochs
    targs = TrainingArguments(
        output_dir=str(out), num_train_epochs=args.epochs, max_steps=args.max_steps,
        per_device_train_batch_size=args.micro_batch_size, learning_rate=2e-4, lr_scheduler_type="cosine",
        warmup_steps=round(0.1 * total_steps), logging_steps=10**9, save_strategy="no", report_to=[], seed=0, bf16=on_gpu,
        use_cpu=not on_gpu, dataloader_num_workers=0, remove_unused_columns=False,
        gradient_checkpointing=args.gradient_checkpointing, disable_tqdm=True)
    trainer = Trainer(model=model, args=targs, train_dataset=rows, data_collator=collate, callbacks=[StepTimer()])
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    result = trainer.train()
    wall = time.perf_counter() - t0
    n_steps = result.global_step
    per_epoch = -(-len(rows) // args.micro_batch_size)
    seqs = min(n_steps * args.micro_batch_size, len(rows) * args.epochs)
    real = stats.tokens * args.epochs if args.max_steps < 0 else sum(
        len(r["input_ids"]) for r in rows[:seqs])  # approximate when max_steps cuts an epoch short
    slots = n_steps * args.micro_batch_size * L if args.max_steps > 0 else per_epoch * args.epochs * args.micro_batch_size * L
    n_params = sum(p.numel() for p in model.parameters())
    from pixel_pipeline.training.trainer import detect_peak_flops, peak_memory_mb

    device = "cuda" if on_gpu else "cpu"
    tps = real / step_time["s"]
    peak = detect_peak_flops(device)
    return {"tokens_per_second": tps, "padding_waste": 1 - real / slots, "wall_seconds": wall, "steps": n_steps,
            "final_loss": result.training_loss, "mfu": tps * 4 * n_params / peak if peak else None,
            "peak_memory_mb": peak_memory_mb(device), "n_parameters": n_params}


def compare_chaining(args, models_dir: str, exports: Path, work: Path) -> None:
    """Stage 2 after stage 1, twice: continue the same adapter vs merge stage 1 and train a fresh adapter.
    Reports stage 2's validation loss (did it learn) and stage 1's (did it forget), on the same data and budget."""
    import torch

    from peft import PeftModel

    from pixel_pipeline.training.base_model import DEFAULT_BASE_MODEL, load_base_model, load_tokenizer
    from pixel_pipeline.training.data import read_messages_jsonl, tokenize_conversations
    from pixel_pipeline.training.trainer import TrainingConfig, evaluate, train

    def files(stage):
        d = exports / "stages" / stage
        return [str(d / "train.jsonl")], [str(d / "validation.jsonl")]

    common = dict(models_dir=models_dir, max_seq_length=args.max_seq_length, micro_batch_size=args.micro_batch_size,
                  cpu_threads=args.cpu_threads, resume=False, checkpoint_every_steps=10**9, seed=0)
    t1, v1 = files("stage1_counseling")
    t2, v2 = files("stage2_reasoning")
    s1 = train(TrainingConfig(name="s1", train_files=t1, validation_files=v1, output_dir=str(work / "s1"), epochs=3,
                              learning_rate=2e-4, **common), log=lambda m: None)
    tok = load_tokenizer(DEFAULT_BASE_MODEL, models_dir)
    val1, _ = tokenize_conversations(tok, read_messages_jsonl(v1)[0], args.max_seq_length)
    print("\nchaining: stage 2 after stage 1 (lower is better)")
    print(f"{'mode':10}{'stage-2 val loss':>18}{'stage-1 val loss':>18}   (stage 1 alone: {s1['val_loss_final']:.4f})")
    for mode in ("continue", "merge"):
        r = train(TrainingConfig(name=mode, train_files=t2, validation_files=v2, output_dir=str(work / mode),
                                 epochs=2, learning_rate=1e-4, init_adapter=s1["adapter_path"], chaining=mode,
                                 **common), log=lambda m: None)
        model = PeftModel.from_pretrained(load_base_model(r["base_model"], models_dir), r["adapter_path"])
        cfg = TrainingConfig(name="eval", train_files=t1, output_dir=str(work / "eval"), **common)
        with torch.no_grad():
            forgot = evaluate(model, val1, cfg, "cpu" if not torch.cuda.is_available() else "cuda", tok.pad_token_id)
        print(f"{mode:10}{r['val_loss_final']:>18.4f}{forgot:>18.4f}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gpu", action="store_true", help="1B/8B-shaped model in bf16 on CUDA, reports MFU")
    p.add_argument("--shape", default="1b", choices=sorted(SHAPES))
    p.add_argument("--exports", default="", help="exports/ folder to take stages/stage1_counseling/train.jsonl from")
    p.add_argument("--pairs", type=int, default=160, help="synthetic pairs when no exports are given")
    p.add_argument("--max-seq-length", type=int, default=1024)
    p.add_argument("--micro-batch-size", type=int, default=2)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--max-steps", type=int, default=-1)
    p.add_argument("--cpu-threads", type=int, default=0)
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--compare-chaining", action="store_true", help="also measure continue vs merge stage chaining")
    p.add_argument("--chaining-only", action="store_true", help="only the chaining comparison")
    args = p.parse_args(argv)

    import torch

    from pixel_pipeline.training.base_model import DEFAULT_BASE_MODEL
    from pixel_pipeline.testing.training_exports import write_synthetic_exports

    work = Path(tempfile.mkdtemp(prefix="bench_trainer."))
    models_dir = str(work / "models")
    if not args.gpu and args.cpu_threads == 0:
        args.cpu_threads = 1  # what our trainer picks for a model this small; the baseline gets the same
    exports = Path(args.exports) if args.exports else None
    if args.exports:
        train_file = str(Path(args.exports) / "stages" / "stage1_counseling" / "train.jsonl")
    else:
        exports = write_synthetic_exports(work / "exports", n_train=args.pairs, n_validation=max(8, args.pairs // 10), seed=0,
                                          max_repeats=24)
        train_file = str(exports / "stages" / "stage1_counseling" / "train.jsonl")
    if args.gpu:
        if not torch.cuda.is_available():
            print("--gpu asked for but no CUDA device is visible", file=sys.stderr)
            return 2
        base_model = build_gpu_model_folder(args.shape, work / f"llama-{args.shape}")
    else:
        from pixel_pipeline.training.base_model import ensure_embedded_model

        base_model = DEFAULT_BASE_MODEL
        ensure_embedded_model(models_dir)  # built once, before either run is timed

    if args.chaining_only:
        compare_chaining(args, models_dir, exports or work / "exports", work / "chaining")
        return 0
    ours = run_ours(args, base_model, models_dir, train_file, work / "ours")
    if args.gpu:
        torch.cuda.empty_cache()
    base = run_baseline(args, base_model, models_dir, train_file, work / "baseline")
    device = torch.cuda.get_device_name() if args.gpu else f"CPU ({torch.get_num_threads()} threads)"
    model_name = f"{args.shape}-shaped Llama (bf16)" if args.gpu else "embedded tiny Llama (fp32)"
    print(f"\nbench_trainer: {model_name}, {ours['n_parameters'] / 1e6:.1f} M params, device {device}, "
          f"max_seq_length {args.max_seq_length}, micro_batch_size {args.micro_batch_size}, epochs {args.epochs}")
    print(f"{'':28}{'this trainer':>16}{'HF Trainer+PEFT':>18}")
    rows = [("tokens/s (train steps)", "tokens_per_second", "{:,.0f}"), ("padding waste", "padding_waste", "{:.1%}"),
            ("optimizer steps", "steps", "{}"), ("wall seconds (end to end)", "wall_seconds", "{:.1f}"),
            ("final train loss", "final_loss", "{:.4f}"), ("peak memory MB", "peak_memory_mb", "{:,.0f}"),
            ("MFU (4N FLOPs/token)", "mfu", "{:.1%}")]
    if not args.gpu:
        base["peak_memory_mb"] = None  # CPU peak RSS is per process and this run came second: not separable
    for label, key, fmt in rows:
        a, b = ours.get(key), base.get(key)
        print(f"{label:28}{(fmt.format(a) if a is not None else '—'):>16}{(fmt.format(b) if b is not None else '—'):>18}")
    speedup = ours["tokens_per_second"] / base["tokens_per_second"]
    wall_speedup = base["wall_seconds"] / ours["wall_seconds"]
    print(f"\ntokens/s ratio (this / baseline): {speedup:.2f}x  (target >= 1.5x: {'met' if speedup >= 1.5 else 'NOT met'})")
    print(f"end-to-end wall-time ratio: {wall_speedup:.2f}x")
    print(f"padding waste: {ours['padding_waste']:.1%} (target <= 5%: "
          f"{'met' if ours['padding_waste'] <= 0.05 else 'NOT met'}) vs baseline {base['padding_waste']:.1%}")
    if args.gpu and ours["mfu"] is not None:
        print(f"MFU: {ours['mfu']:.1%} (target >= 40% on an H100)")
    if args.compare_chaining:
        if exports is None:
            exports = work / "exports"
        compare_chaining(args, models_dir, exports, work / "chaining")
    (work / "bench_trainer.json").write_text(json.dumps({"ours": ours, "baseline": base, "args": vars(args)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
