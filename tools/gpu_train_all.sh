#!/usr/bin/env bash
# Train ResNet18/34/50 from scratch on one GPU, evaluate them and their ensemble, and write fp16
# checkpoints, run dirs (events.jsonl) and results.json into ./out ($RESULTS), which is
# git-ignored, so a warm machine keeps it between calls. Every step is bounded by --time-limit
# (default 570 s); see tools/gpu_train_all.py for the steps.
# When $OUT is set (a machine that collects $OUT), batch 1 of ./out is packed into it
# (tools/device_pack.py: 8 files, 16 MiB each, 64 MiB a batch); the next call fetches batch 2:
#   bash tools/gpu_train_all.sh                                   # the whole run
#   python3 tools/device_pack.py pack out "$OUT" --batch 2        # the next call
#   python3 tools/device_pack.py join FILES_1 FILES_2 --dest gpu-out   # back here
#   RESULTS=/tmp/r OUT=/tmp/o bash tools/gpu_train_all.sh --device cpu --limit 300 \
#       --epochs 1 --config configs/smoke.toml --time-limit 300      # CPU smoke test
set -uo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,compute_mode,driver_version,memory.total,memory.used \
    --format=csv 2>/dev/null || true
export PYTHONUNBUFFERED=1
python3 tools/gpu_train_all.py --out "${RESULTS:-out}" "$@"
status=$?
if [ -n "${OUT:-}" ] && [ ! -f "$OUT/manifest.json" ] && [ -d "${RESULTS:-out}" ]; then
    python3 tools/device_pack.py pack "${RESULTS:-out}" "$OUT" --batch 1   # python died early
fi
exit "$status"
