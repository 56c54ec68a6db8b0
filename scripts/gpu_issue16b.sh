#!/usr/bin/env bash
# Issue 16, second GPU run: what the first (scripts/gpu_issue16.sh, docs/perf-h200/issue16/) did not reach.
# Sized for a 420-second device run (BUDGET seconds, default 420; give the call ~480). From the repository root:
#   OUT=dir bash scripts/gpu_issue16b.sh              # a CUDA machine (python3 with torch + CUDA)
#   SMOKE=1 OUT=/tmp/s bash scripts/gpu_issue16b.sh   # the same code paths on CPU at tiny sizes (about a minute)
# Sections, most valuable first, each under its own `timeout` (cut to what is left of BUDGET), going on after a
# failure; expected H200 seconds in brackets:
#   1 equality [~60]: captured static step (torch's Adam = what --graphs auto uses) vs the loop step for every method
#     the static step allows (+ EMOE/MISA/DMD with a random bert-base), and `bench run` --graphs auto vs off
#   2 bert steps [~80]: step time + GPU busy, loop vs static step, EMOE / MISA / Self-MM with a random bert-base
#     encoder at full MOSI shapes (default batch sizes); then MISA features, MulT compact
#   3 throughput [~140 + ~45]: seconds per epoch, full-shape synthetic MOSI (first 0.15 of every split), unaligned:
#     loop, text=bert, loop+graphs, vmap(5) lines; then aligned loop + graphs lines
#   4 plan [~25]: bench plan for Tables 1-6 + Figure 4, 5 seeds, full profile, paper protocol (random bert-base)
# Files in $OUT (7): log.txt, equality.json, steps.json, cuda.csv, plan.txt, summary.md (+ nothing else).
# After the run: python scripts/gpu16b_to_docs.py --dir <files> (docs/performance.md §7, results/throughput/cuda.csv).
set -uo pipefail
OUT=${OUT:-gpu-issue16b}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 MPLBACKEND=Agg TOKENIZERS_PARALLELISM=false \
  HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONWARNINGS=ignore
L=$OUT/log.txt
PY=${PYTHON:-python3}
BUDGET=${BUDGET:-420}
START=$(date +%s)
SMOKE=${SMOKE:-}
if [ -n "$SMOKE" ]; then DEV=cpu; S=--smoke; else DEV=cuda; S=; fi

section() { echo "=== $1 (t=$(( $(date +%s) - START ))s)" | tee -a "$L"; }
# limit LIMIT: the section's own limit, cut to the time left (minus a reserve for the summary)
limit() { local left=$(( BUDGET - ($(date +%s) - START) - 10 )); [ "$left" -lt "$1" ] && echo "$left" || echo "$1"; }
run() {  # run NAME LIMIT CMD...: one section under timeout; its output goes to the log
  local name=$1 lim; lim=$(limit "$2"); shift 2
  section "$name (limit ${lim}s)"
  if [ "$lim" -lt 15 ]; then echo "skipped: no time left" | tee -a "$L"; return; fi
  timeout -k 5 "$lim" "$@" 2>&1 | grep --line-buffered -v -e "UserWarning" -e "return Variable._execution_engine" -e "_warn_once(" \
    | tee -a "$L"
  echo "--- $name exit ${PIPESTATUS[0]} (124 = timed out)" | tee -a "$L"
}

section "setup"
if ! $PY -c 'import bench, emoe, baselines' 2>>"$L"; then  # PYTHONPATH=$PWD normally suffices (no install)
  $PY -m pip install -q --no-build-isolation --no-deps -e . 2>&1 | tail -n 3 | tee -a "$L"
fi
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>/dev/null
  $PY -c "import sys, torch, transformers; print(sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU', 'transformers', transformers.__version__)"
  git rev-parse --short HEAD 2>/dev/null; } 2>&1 | tee -a "$L"

# 1: captured step == loop step (decides which methods --graphs auto captures: bench/train/static_step.py
#    CAPTURE_EQUAL); then `bench run` with --graphs auto vs off and a whole train_static vs train run
# (recurrent models last: a packed LSTM may refuse capture; that is reported and the next case goes on)
EQ="emoe,mult,emoe-paper,emoe+bert,tfn,lmf,lf_dnn,mfm,dmd,misa,misa+bert,ef_lstm,mfn,graph_mfn"
run "1 equality: captured static step vs loop step" 75 $PY scripts/gpu_issue16.py equality --device $DEV $S \
  --methods "$EQ" --dropout on --adam default --json "$OUT/equality.json"

# 2: BERT-mode steps (never reached in the first run), then the features cases not reached either
run "2 steps: BERT mode (random bert-base), loop vs static" 85 $PY scripts/gpu_issue16.py steps --device $DEV $S \
  --cases "emoe bert full,misa bert full,self_mm bert full,misa full,mult compact" --steps 5 --warmup 2 \
  --adam default --json "$OUT/steps.json"

# 3: the CUDA throughput table (bench plan --device cuda); a training split never ends in a 1-sample batch here
if [ -n "$SMOKE" ]; then
  TP="--shapes compact --methods lf_dnn,tfn,emoe,misa,mult --subset 0.1 --bert-model random:bert-mini --threads 1"
else TP="--shapes full --subset 0.15 --threads 0"; fi
run "3a throughput: unaligned (loop, bert, graphs, vmap)" 140 $PY scripts/measure_throughput.py --device $DEV $TP \
  --families mosi --settings unaligned --epochs 1 --vmap-k 5 --graphs --bert-methods all \
  --phases loop,bert,graphs,vmap --first emoe,mult,misa,self_mm,mmim --max-seconds 118 \
  --script scripts/gpu_issue16b.sh --out "$OUT/cuda.csv"
run "3b throughput: aligned (loop, graphs)" 45 $PY scripts/measure_throughput.py --device $DEV $TP \
  --families mosi --settings aligned --epochs 1 --graphs --phases loop,graphs --first emoe,mult --max-seconds 28 \
  --script scripts/gpu_issue16b.sh --out "$OUT/cuda.csv"

# 4: the cost of Tables 1-6 + Figure 4 at 5 seeds (needs no GPU: scripts/gpu16b_to_docs.py repeats it off-device)
if [ -n "$SMOKE" ]; then PP="--profile compact --text-model random:bert-mini"
else PP="--profile full --text-model random:bert-base-uncased"; fi
run "4 plan: Tables 1-6 + Figure 4, 5 seeds" 30 $PY scripts/gpu_issue16.py plan --device cuda --seeds 5 $PP \
  --results "$OUT/no-results" --throughput-dir "$OUT" --out "$OUT/plan.txt"
rm -rf "$OUT/no-results"

section "summary"
$PY scripts/gpu_issue16.py summary --dir "$OUT" --out "$OUT/summary.md" >/dev/null 2>>"$L"
section "done"
