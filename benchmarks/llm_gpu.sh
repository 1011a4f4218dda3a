#!/usr/bin/env bash
# The `llm` study at GPU scale on one GPU (bf16, full fine-tuning of SmolLM2-135M-Instruct):
#   bash benchmarks/llm_gpu.sh [WORKERS]      → results/llm_gpu/, reports/llm_gpu/README.md
# Spawned worker processes share the GPU (a 135 M model leaves most of it idle per process).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh
.venv/bin/python - <<'PY'
import sys, torch
if not torch.cuda.is_available():
    sys.exit("benchmarks/llm_gpu.sh: no CUDA device here; on a CPU run `rlbandit run llm` instead")
print("GPU:", torch.cuda.get_device_name(0), "| bf16:", torch.cuda.is_bf16_supported())
PY
start=$(date +%s)
.venv/bin/rlbandit run llm_gpu --workers "${1:-6}"
.venv/bin/rlbandit report llm_gpu
echo "llm_gpu: $(( $(date +%s) - start )) s"
