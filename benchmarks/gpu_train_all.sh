#!/usr/bin/env bash
# Issue 7 on one H200 in one <= 10 minute run: train ResNet18/34/50 from scratch side by side
# (configs/scratch.toml), evaluate the last epoch of each and their ensemble on the 7,178 test
# images, and write fp16 checkpoints, run dirs (events.jsonl) and results.json into $OUT.
#   bash benchmarks/gpu_train_all.sh                 # the real thing (epochs fitted to 390 s)
#   bash benchmarks/gpu_train_all.sh --budget 0      # the config's epochs as written
#   bash benchmarks/gpu_train_all.sh --bench --budget 270   # plus the throughput benchmark
#   OUT=/tmp/o bash benchmarks/gpu_train_all.sh --device cpu --limit 40 --epochs 1 \
#       --config configs/smoke.toml                  # CPU smoke test, about a minute
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv 2>/dev/null || true
exec python3 benchmarks/gpu_train_all.py --out "${OUT:-out}" "$@"
