#!/usr/bin/env bash
# The GPU check of issue 14 in one go (H100/H200, about 9 minutes): the trainer's MFU on a 1B-shaped Llama, then
# SmolLM2-135M-Instruct through the whole training group + training_evaluation on the FULL exports.
#   benchmarks/gpu_check.sh EXPORTS_DIR [OUT_DIR]
# Figures land in OUT_DIR/bench_trainer_gpu.txt and OUT_DIR/real/bench_real_model.json (+ evaluation.md).
set -euo pipefail
cd "$(dirname "$0")/.."
EXPORTS="${1:?usage: benchmarks/gpu_check.sh EXPORTS_DIR [OUT_DIR]}"
OUT="${2:-/tmp/gpu_check}"
PY="${PYTHON:-.venv/bin/python}"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
# 1. MFU (target >= 40 % on an H100/H200): ~2 minutes
timeout 180 "$PY" benchmarks/bench_trainer.py --gpu --shape 1b 2>&1 | tee "$OUT/bench_trainer_gpu.txt"
# 2. SmolLM2 on every exported pair (0 = all), bf16, 1,024-token packed rows: ~6 minutes
timeout 390 "$PY" benchmarks/bench_real_model.py --exports "$EXPORTS" --out "$OUT/real" \
  --train-pairs 0 --expert-train-pairs 0 --val-pairs 64 --max-seq-length 1024 --micro-batch-size 8 \
  --stage-epochs 2 --expert-epochs 2 --learning-rate 2e-4 --max-new-tokens 128 2>&1 | tail -80 | tee "$OUT/real_model.txt"
