#!/usr/bin/env bash
# The GPU half of issue 6, in one run (about 3-5 minutes on one H100):
#   1. the memory report on CUDA for the DeepLabV3+ R50-D8 configs at
#      512x1024, batch 1: CUDA step and inference peaks next to the saved
#      bytes, written to $OUT/memory_cuda.json;
#   2. the CUDA gradient-equality tests of the lean backward (toy models,
#      DeepLabV3+ R18, EcoTTA's tiny meta model in all frozen-BN modes).
# Everything is tee'd to $OUT/gpu_check.log. Run from the repository root:
#   OUT=/some/dir bash tools/analysis/gpu_check.sh
set -u -o pipefail
OUT=${OUT:-work_dirs/gpu_check}
mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
PY=python
[ -x .venv/bin/python ] && PY=.venv/bin/python

{
    echo "== $(date -u +%FT%TZ) gpu_check on $(hostname)"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    $PY -c 'import torch; print("torch", torch.__version__, "cuda",
torch.version.cuda, torch.cuda.get_device_name(0))'
} 2>&1 | tee "$LOG"

echo "== memory report (cuda, 512x1024, batch 1)" | tee -a "$LOG"
# 3 timed steps per row; CoTTA's 14 views stay well under a minute a step.
timeout 300 $PY tools/analysis/memory_report.py configs/*/*_cityscapes2acdc-540x960.py \
    --shape 512 1024 --batch 1 --device cuda --steps 3 \
    --json "$OUT/memory_cuda.json" 2>&1 | tee -a "$LOG"
report_rc=$?

echo "== CUDA gradient-equality tests" | tee -a "$LOG"
timeout 240 $PY -m pytest tests/test_models/test_lean_backward.py \
    tests/test_analysis -q -p no:cacheprovider -rs 2>&1 | tee -a "$LOG"
tests_rc=$?

echo "== report rc=$report_rc tests rc=$tests_rc" | tee -a "$LOG"
exit $((report_rc || tests_rc))
