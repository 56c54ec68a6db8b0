#!/usr/bin/env bash
# One-shot GPU measurements for docs/performance.md §5 (issue 7), sized for a ~7-minute device lease.
# Usage (repository root, a CUDA machine with torch and pytest-benchmark): OUT=dir bash scripts/gpu_measure.sh
# Every section has its own time limit and appends to $OUT/log.txt, so a slow section costs only itself.
set -uo pipefail
OUT=${OUT:-gpu-measure}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 MPLBACKEND=Agg
L=$OUT/log.txt
PY=${PYTHON:-python3}
section() { echo "=== $1 ($(date -u +%T))" | tee -a "$L"; }

section machine
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  $PY -c "import sys, torch; print(sys.version.split()[0], torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
  nproc; } 2>&1 | tee -a "$L"

section "end to end: 1 seed vs 5 seeds (vmap), EMOE and MulT, synthetic MOSI, 3 epochs"
timeout 90 $PY scripts/seeds_wall.py --device cuda --epochs 3 --k 5 --modes vmap --json "$OUT/seeds-wall.json" 2>&1 | tee -a "$L"

section "EMOE epoch: our trainer vs the naive DataLoader/per-sample implementation"
timeout 80 $PY -m pytest -q -p no:cacheprovider tests/benchmarks/test_speed.py -k ours_vs_naive --benchmark-enable \
  --benchmark-only --benchmark-json "$OUT/bench-naive.json" --benchmark-columns=mean,min,max,rounds 2>&1 | tail -n 25 | tee -a "$L"

section "bench.perf compact: loop / vmap / procs, K = 1, 5, 10"
timeout 120 $PY -m bench.perf --device cuda --k 1,5,10 --steps 10 --warmup 2 --modes loop,vmap,procs \
  --json "$OUT/perf-compact.json" 2>&1 | tee -a "$L"

section "bench.perf compact: vmap+compile, K = 5"
timeout 80 $PY -m bench.perf --device cuda --k 5 --steps 10 --warmup 3 --modes vmap+compile \
  --json "$OUT/perf-compile.json" 2>&1 | tee -a "$L"

section "bench.perf full MOSI shapes: loop / vmap, K = 1, 5"
timeout 50 $PY -m bench.perf --device cuda --profile full --k 1,5 --steps 5 --warmup 2 --modes loop,vmap \
  --json "$OUT/perf-full.json" 2>&1 | tee -a "$L"
section done
