#!/usr/bin/env bash
# Issue 7 on one H200 in one <= 10 minute run: train ResNet18/34/50 from scratch side by side
# (configs/scratch.toml), evaluate the last epoch of each and their ensemble on the 7,178 test
# images, and write fp16 checkpoints, run dirs (events.jsonl) and results.json into ./out
# ($RESULTS), which is git-ignored, so a warm device machine keeps it between calls.
# The device tool brings back 8 files / 16 MiB each / 64 MiB per call and the three fp16
# checkpoints are ~107 MiB: when $OUT is set (on the device it is), batch 1 of the results is
# packed into it (benchmarks/device_pack.py), and the next call, made at once, fetches batch 2:
# The device-tool runbook (what to carry, what to move aside): docs/results.md.
#   bash benchmarks/gpu_train_all.sh                 # the real thing (epochs fitted to 390 s)
#   python3 benchmarks/device_pack.py pack out "$OUT" --batch 2      # the second call
#   python3 benchmarks/device_pack.py join FILES_AT_1 FILES_AT_2 --dest gpu-out   # here
#   bash benchmarks/gpu_train_all.sh --budget 0      # the config's epochs as written
#   bash benchmarks/gpu_train_all.sh --bench --budget 270   # plus the throughput benchmark
#   RESULTS=/tmp/r OUT=/tmp/o bash benchmarks/gpu_train_all.sh --device cpu --limit 40 \
#       --epochs 1 --config configs/smoke.toml      # CPU smoke test, about a minute
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv 2>/dev/null || true
RESULTS="${RESULTS:-out}"
status=0
python3 benchmarks/gpu_train_all.py --out "$RESULTS" "$@" || status=$?
if [ -n "${OUT:-}" ]; then
    python3 benchmarks/device_pack.py pack "$RESULTS" "$OUT" --batch 1
fi
exit "$status"
