#!/usr/bin/env bash
# Issue 16 on one GPU, sized for a ~9-minute device run (BUDGET seconds, default 540; give the call 600). From the repository root:
#   OUT=dir bash scripts/gpu_issue16.sh              # a CUDA machine (python3 with torch + CUDA)
#   SMOKE=1 OUT=/tmp/s bash scripts/gpu_issue16.sh   # the same code paths on CPU at tiny sizes (a minute or two)
# Sections run most valuable first, each under its own `timeout` (cut to what is left of BUDGET), and keep going
# after a failure. Files in $OUT (8, the device tool's limit): log.txt, equality.json, steps.json, cuda.csv,
# naive.json, e2e.json, plan.txt, summary.md.
set -uo pipefail
OUT=${OUT:-gpu-issue16}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 MPLBACKEND=Agg TOKENIZERS_PARALLELISM=false
L=$OUT/log.txt
PY=${PYTHON:-python3}
BUDGET=${BUDGET:-540}
START=$(date +%s)
SMOKE=${SMOKE:-}
if [ -n "$SMOKE" ]; then DEV=cpu; S=--smoke; else DEV=cuda; S=; fi

section() { echo "=== $1 (t=$(( $(date +%s) - START ))s)" | tee -a "$L"; }
# limit LIMIT: the section's own limit, cut to the time left (minus a reserve for the summary); 0 = skip
limit() { local left=$(( BUDGET - ($(date +%s) - START) - 15 )); [ "$left" -lt "$1" ] && echo "$left" || echo "$1"; }
run() {  # run NAME LIMIT CMD...: one section under timeout; its output goes to the log
  local name=$1 lim; lim=$(limit "$2"); shift 2
  section "$name (limit ${lim}s)"
  if [ "$lim" -lt 20 ]; then echo "skipped: no time left" | tee -a "$L"; return; fi
  timeout -k 5 "$lim" "$@" 2>&1 | tee -a "$L"
  echo "--- $name exit ${PIPESTATUS[0]} (124 = timed out)" | tee -a "$L"
}

section "setup"
if ! $PY -c 'import torch, sys; sys.exit(0 if (torch.cuda.is_available() or "'"$DEV"'" == "cpu") else 1)' 2>>"$L"; then
  echo "torch with CUDA not importable: trying pip install torch==2.13.0 (works only where PyPI is reachable)" | tee -a "$L"
  $PY -m pip install -q torch==2.13.0 2>&1 | tail -n 3 | tee -a "$L"
fi
if ! $PY -c 'import bench, emoe, baselines' 2>>"$L"; then  # PYTHONPATH=$PWD normally suffices (no install)
  $PY -m pip install -q --no-build-isolation --no-deps -e . 2>&1 | tail -n 3 | tee -a "$L"
fi
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>/dev/null
  $PY -c "import sys, torch, transformers; print(sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU', 'transformers', transformers.__version__)"
  nproc; git rev-parse --short HEAD 2>/dev/null; } 2>&1 | tee -a "$L"

# (a) does the captured static step equal the loop step? (decides whether --graphs on can become the default)
run "a: CUDA-graph static step vs loop step" 60 $PY scripts/gpu_issue16.py equality --device $DEV $S \
  --json "$OUT/equality.json"

# (b) step time + GPU busy fraction before/after, full and compact MOSI shapes
run "b: step time and GPU busy, before/after" 125 $PY scripts/gpu_issue16.py steps --device $DEV $S --steps 10 \
  --json "$OUT/steps.json"

# (d) seconds per epoch at full MOSI shapes for the cuda throughput table (bench plan --device cuda)
if [ -n "$SMOKE" ]; then TP="--shapes compact --methods lf_dnn,emoe --settings unaligned --epochs 1 --subset 0.1"
else TP="--shapes full --families mosi --settings unaligned,aligned --epochs 1 --subset 0.25 --vmap-k 5 --graphs"; fi
run "d: per-epoch seconds, every method (throughput table)" 140 $PY scripts/measure_throughput.py --device $DEV $TP \
  --first emoe,mult --threads 0 --max-seconds 115 --script scripts/gpu_issue16.sh --out "$OUT/cuda.csv"

# the cost of Tables 1-6 + Figure 4 at 5 seeds on real-size shapes, from the throughput just measured
PLANDEV=$DEV; [ -n "$SMOKE" ] && cp "$OUT/cuda.csv" "$OUT/cpu.csv" 2>/dev/null
run "plan: Tables 1-6 + Figure 4, 5 seeds, full profile" 45 $PY scripts/gpu_issue16.py plan --device $PLANDEV \
  --seeds 5 --profile full --results "$OUT/no-results" --throughput-dir "$OUT" --out "$OUT/plan.txt"
[ -n "$SMOKE" ] && rm -f "$OUT/cpu.csv"
rm -rf "$OUT/no-results"

# (c) our EMOE epoch vs the naive DataLoader/per-sample implementation
run "c: EMOE epoch, ours vs naive" 55 $PY scripts/gpu_issue16.py naive --device $DEV $S --json "$OUT/naive.json"

# (e) one EMOE row end to end: 5 seeds with --exec auto vs loop vs loop --graphs on
run "e: one 5-seed EMOE row end to end" 75 $PY scripts/gpu_issue16.py e2e --device $DEV $S --epochs 3 \
  --json "$OUT/e2e.json"

section "summary"
$PY scripts/gpu_issue16.py summary --dir "$OUT" --out "$OUT/summary.md" >/dev/null 2>>"$L"
cat "$OUT/summary.md" 2>/dev/null
section "done"
