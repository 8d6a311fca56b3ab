#!/usr/bin/env bash
# Everything this project measures on a lent GPU, in one call that fits a short lease.
#
#     OUT=/some/dir bash benchmarks/gpu_session.sh          # on the GPU machine
#     SMOKE=1 OUT=/tmp/smoke bash benchmarks/gpu_session.sh # rehearsal on a CPU (tiny runs)
#
# Needs torch (+ triton for step 2), lightning, pandas, scikit-learn; not polars, gluonts or
# biopython. Data: $TITANS_TS_DATA_DIR (default ./.gpu_data, a copy of the shared folder's
# ETT-small/, weather/, dna/gue/<tasks>, dna/genomic_benchmarks_test/).
#
# 1. In the background, one process per job (the GPU is shared; small models are launch-
#    bound, so concurrent processes use it better than one after another):
#    - recipes/genomics.py: the 9 GUE tasks (classifier defaults, early stopping on dev,
#      k-mer baseline in the same run) and 5-fold CV on the Genomic Benchmarks test splits;
#      two alternative classifier configurations on prom_core_all and tf/0;
#    - recipes/long_horizon.py: all 5 datasets x 4 horizons at TitansForecaster's defaults,
#      plus a more regularised configuration on ETTh1.
#    Each job has a wall-clock limit (JOB_TIMEOUT); its log keeps per-horizon/per-task lines
#    even when it is cut.
# 2. Meanwhile: the Triton executor's tests on CUDA (tests/memory/test_triton.py).
# 3. After the jobs: benchmarks/memory_gpu.py alone on the GPU (timings undisturbed).
# 4. $OUT/results.tgz holds every log and result file; $OUT/summary.txt the headline lines.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu_session_out}"
mkdir -p "$OUT"
WORK="$(mktemp -d)"
mkdir -p "$WORK/logs"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
export TITANS_TS_DATA_DIR="${TITANS_TS_DATA_DIR:-$PWD/.gpu_data}"
unset TRITON_INTERPRET
JOB_TIMEOUT="${JOB_TIMEOUT:-360}"
DEVICE=cuda
GEN_EXTRA=()
LH_EXTRA=()
if [ -n "${SMOKE:-}" ]; then
  DEVICE=cpu
  JOB_TIMEOUT="${JOB_TIMEOUT_SMOKE:-240}"
  GEN_EXTRA=(--quick)
  LH_EXTRA=(--quick)
fi

{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || true
  python -c "import sys, torch; print(sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available())"
  python -c "import triton; print('triton', triton.__version__)" 2>&1 || true
  nproc
} > "$WORK/versions.txt" 2>&1
cat "$WORK/versions.txt"

job() {  # job NAME CMD... : background, time-limited, logged
  local name="$1"
  shift
  timeout "$JOB_TIMEOUT" "$@" > "$WORK/logs/$name.log" 2>&1 &
}

# 1. training jobs --------------------------------------------------------------------
GEN=(python recipes/genomics.py --device "$DEVICE" --out "$WORK/genomics" "${GEN_EXTRA[@]}")
# epoch caps sized so each job ends inside JOB_TIMEOUT (the rows say max_epochs)
job gue_prom_core_all "${GEN[@]}" --tasks prom_core_all --max-epochs 8 --tag prom_core_all
job gue_prom_core_notata "${GEN[@]}" --tasks prom_core_notata --max-epochs 8 \
  --tag prom_core_notata
job gue_tf0 "${GEN[@]}" --tasks tf/0 --max-epochs 12 --tag tf_0
job gue_tf1 "${GEN[@]}" --tasks tf/1 --max-epochs 12 --tag tf_1
job gue_tf2 "${GEN[@]}" --tasks tf/2 --max-epochs 12 --tag tf_2
job gue_small "${GEN[@]}" --tasks prom_core_tata prom_300_tata mouse/0 mouse/2 --tag small
job gb_nontata "${GEN[@]}" --tasks --genomic-benchmarks human_nontata_promoters \
  --max-epochs 8 --tag gb_nontata
job gb_enhancers "${GEN[@]}" --tasks --genomic-benchmarks human_enhancers_cohn \
  drosophila_enhancers_stark --max-epochs 8 --tag gb_enhancers
# alternatives on the two tasks with DNABERT-2 targets (no baseline: the default run has it)
for task in prom_core_all tf/0; do
  cap=$([ "$task" = tf/0 ] && echo 12 || echo 8)
  t=${task//\//_}
  job "gue_alt_lmm_$t" "${GEN[@]}" --no-baseline --tasks "$task" --max-epochs "$cap" \
    --set variant=lmm --tag "alt_lmm_$t"
  job "gue_alt_wide_$t" "${GEN[@]}" --no-baseline --tasks "$task" --max-epochs "$cap" \
    --set d_model=128 --set n_layers=3 --tag "alt_wide_$t"
done

LH=(python recipes/long_horizon.py --device "$DEVICE" --no-plot "${LH_EXTRA[@]}")
job lh_ETTh1 "${LH[@]}" --dataset ETTh1 --out "$WORK/lh_defaults"
job lh_ETTh2 "${LH[@]}" --dataset ETTh2 --out "$WORK/lh_defaults"
job lh_ETTm1 "${LH[@]}" --dataset ETTm1 --max-train-windows 8192 --out "$WORK/lh_defaults"
job lh_ETTm2 "${LH[@]}" --dataset ETTm2 --max-train-windows 8192 --out "$WORK/lh_defaults"
job lh_Weather "${LH[@]}" --dataset Weather --max-train-windows 4096 --out "$WORK/lh_defaults"
# alternatives, chosen on validation loss (never on test) for the next defaults
ALT_REG=(--dropout 0.2 --weight-decay 0.05)
job lh_ETTh1_reg "${LH[@]}" --dataset ETTh1 "${ALT_REG[@]}" --out "$WORK/lh_reg"

# 2. Triton tests on CUDA while the jobs run (correctness only, timings come later) -------
rc_test=0
if [ -z "${SMOKE:-}" ]; then
  TITANS_TS_TRITON_DEVICE=cuda timeout "${TEST_TIMEOUT:-240}" \
    python -m pytest -q -p no:cacheprovider --durations=5 tests/memory/test_triton.py \
    > "$WORK/pytest_triton.txt" 2>&1
  rc_test=$?
  tail -n 5 "$WORK/pytest_triton.txt"
fi
wait

# 3. memory benchmark alone on the GPU -------------------------------------------------
rc_bench=0
if [ -z "${SMOKE:-}" ]; then
  timeout "${BENCH_TIMEOUT:-110}" python benchmarks/memory_gpu.py --json --repeats 3 \
    > "$WORK/memory_gpu.jsonl" 2> "$WORK/memory_gpu.stderr.txt"
  rc_bench=$?
  cat "$WORK/memory_gpu.jsonl"
fi

# 4. reports ---------------------------------------------------------------------------
python recipes/genomics.py --report-from "$WORK/genomics" > "$WORK/logs/genomics_report.log" 2>&1
{
  cat "$WORK/versions.txt"
  echo "triton tests rc=$rc_test; memory benchmark rc=$rc_bench"
  tail -n 3 "$WORK/pytest_triton.txt" 2>/dev/null
  for f in "$WORK"/logs/*.log; do
    echo "== $(basename "$f")"
    grep -E "Titans|ridge|MCC|mcc|fold|Error|error|Killed" "$f" | tail -n 20
  done
  cat "$WORK/genomics/genomics_results.md" 2>/dev/null
} > "$OUT/summary.txt" 2>&1
tar czf "$OUT/results.tgz" -C "$WORK" .
cat "$OUT/summary.txt"
[ "$rc_test" -eq 0 ] && [ "$rc_bench" -eq 0 ]
