#!/usr/bin/env bash
# Everything this project measures on a lent GPU, in one call that fits a short lease.
#
#     OUT=/some/dir bash benchmarks/gpu_session.sh          # on the GPU machine
#     SMOKE=1 OUT=/tmp/smoke bash benchmarks/gpu_session.sh # rehearsal on a CPU (tiny runs)
#
# Needs torch (+ triton for step 2), lightning, pandas, scikit-learn; not polars, gluonts or
# biopython. Data: $TITANS_TS_DATA_DIR (default ./.gpu_data, a copy of the shared folder's
# ETT-small/ETTm1.csv, weather/, dna/gue/{prom,tf,mouse}).
#
# 1. In the background, one process per job of the plan (PLAN=main, the default,
#    PLAN=pooling, followup, grid, position, ensemble, kmer_linear, pretrain or kmer5: see plan_*
#    below),
#    each with a training wall-clock limit
#    (MAX_TIME seconds: the estimators' ``max_time``; the best weights so far are kept and
#    scored) and a hard limit (JOB_TIMEOUT). The models are small and launch-bound, so the
#    jobs share the GPU through CUDA MPS when it starts (checked; off otherwise):
#    - recipes/genomics.py on the large GUE tasks (full train splits) at batch 128 /
#      lr 2e-3 (GPU steps cost about the same at 32 or 128 sequences), plus a wider model
#      (d_model 128, 3 layers) on prom_core_all and tf/0; no k-mer baseline here (it is
#      CPU work, run where the CPU is);
#    - recipes/long_horizon.py: ETTm1 and Weather, one job per horizon, 8,192 train
#      windows per epoch.
# 2. Meanwhile: the Triton executor's tests on CUDA (tests/memory/test_triton.py; PLAN=main,
#    or any plan with TRITON_TESTS=1).
# 3. $OUT/results.tgz holds every log and result file (refreshed every 30 s while the jobs
#    run); $OUT/summary.txt the headline lines.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu_session_out}"
mkdir -p "$OUT"
WORK="$(mktemp -d)"
mkdir -p "$WORK/logs"
# a snapshot of everything every 30 s, so a call cut by its time limit still returns what
# finished (one archive: the device tool returns a limited number of files)
snapshot() {
  tar czf "$OUT/.results.tgz" -C "$WORK" --exclude=./mps_pipe . 2> /dev/null \
    && mv "$OUT/.results.tgz" "$OUT/results.tgz"
}
( while sleep 30; do snapshot; done ) &
snap=$!
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
export TITANS_TS_DATA_DIR="${TITANS_TS_DATA_DIR:-$PWD/.gpu_data}"
unset TRITON_INTERPRET
MAX_TIME="${MAX_TIME:-360}"
JOB_TIMEOUT="${JOB_TIMEOUT:-480}"
DEVICE=cuda
GEN_EXTRA=()
LH_EXTRA=()
PRE_EXTRA=()
if [ -n "${SMOKE:-}" ]; then
  DEVICE=cpu
  MAX_TIME="${MAX_TIME_SMOKE:-20}"
  JOB_TIMEOUT="${JOB_TIMEOUT_SMOKE:-300}"
  GEN_EXTRA=(--quick)
  LH_EXTRA=(--quick)
  PRE_EXTRA=(--quick)
fi

{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || true
  python -c "import sys, torch; print(sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available())"
  python -c "import triton; print('triton', triton.__version__)" 2>&1 || true
  nproc
} > "$WORK/versions.txt" 2>&1
cat "$WORK/versions.txt"

# CUDA MPS: many small processes share the GPU's SMs instead of time-slicing it
mps=off
if [ -z "${SMOKE:-}" ] && [ -z "${NO_MPS:-}" ] && command -v nvidia-cuda-mps-control > /dev/null; then
  export CUDA_MPS_PIPE_DIRECTORY="$WORK/mps_pipe" CUDA_MPS_LOG_DIRECTORY="$WORK/mps_log"
  mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
  if nvidia-cuda-mps-control -d && timeout 60 python -c \
      "import torch; print(float(torch.ones(8, device='cuda').sum()))" > /dev/null 2>&1; then
    mps=on
  else
    echo quit | nvidia-cuda-mps-control > /dev/null 2>&1
    unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
  fi
fi
echo "mps=$mps" | tee -a "$WORK/versions.txt"

# 0. BENCH=1: the Triton executor's throughput (benchmarks/memory_gpu.py) ALONE on the GPU,
#    before any job starts (timings shared with training jobs would mean nothing): the
#    library's default clipped update at T 1k/4k/16k, then the unclipped one at 4k
if [ -n "${BENCH:-}" ] && [ -z "${SMOKE:-}" ]; then
  timeout "${BENCH_TIMEOUT:-150}" bash -c '
    python benchmarks/memory_gpu.py --json --repeats 3
    python benchmarks/memory_gpu.py --json --repeats 3 --max-grad-norm none --seq-lens 4096 \
      --executors chunked triton
  ' > "$WORK/memory_gpu.jsonl" 2> "$WORK/memory_gpu.stderr.txt"
  echo "memory_gpu rc=$?" >> "$WORK/versions.txt"
  cat "$WORK/memory_gpu.jsonl"
  snapshot
fi

job() {  # job NAME CMD... : background, time-limited, logged
  local name="$1"
  shift
  timeout "$JOB_TIMEOUT" "$@" > "$WORK/logs/$name.log" 2>&1 &
}

# 1. training jobs --------------------------------------------------------------------
GEN=(python recipes/genomics.py --device "$DEVICE" --no-baseline --out "$WORK/genomics"
     "${GEN_EXTRA[@]}" --set "max_time=$MAX_TIME")
B128=(--set batch_size=128 --set learning_rate=2e-3)
WIDE=(--set d_model=128 --set n_layers=3)
plan_main() {  # the headline rows: large GUE tasks on full train, ETTm1/Weather
  job gue_prom_core_all "${GEN[@]}" "${B128[@]}" --tasks prom_core_all --tag prom_core_all_b128
  job gue_prom_core_all_wide "${GEN[@]}" "${B128[@]}" "${WIDE[@]}" --tasks prom_core_all \
    --tag prom_core_all_wide
  job gue_prom_core_notata "${GEN[@]}" "${B128[@]}" --tasks prom_core_notata \
    --tag prom_core_notata_b128
  job gue_tf0 "${GEN[@]}" "${B128[@]}" --tasks tf/0 --tag tf0_b128
  job gue_tf0_wide "${GEN[@]}" "${B128[@]}" "${WIDE[@]}" --tasks tf/0 --tag tf0_wide
  job gue_tf1 "${GEN[@]}" "${B128[@]}" --tasks tf/1 --tag tf1_b128
  job gue_tf2 "${GEN[@]}" "${B128[@]}" --tasks tf/2 --tag tf2_b128

  LH=(python recipes/long_horizon.py --device "$DEVICE" --no-plot --epochs 30
      --max-time "$MAX_TIME" --max-train-windows 8192 "${LH_EXTRA[@]}")
  for ds in ETTm1 Weather; do
    for h in 96 192 336 720; do
      job "lh_${ds}_$h" "${LH[@]}" --dataset "$ds" --horizons "$h" --out "$WORK/lh/${ds}_$h"
    done
  done
}

plan_pooling() {  # dev-selected alternatives: max pooling on TF tasks, last-token pooling
  # on position-specific promoter tasks, more dropout on the task that overfits
  local t
  for t in tf/0 tf/1 tf/2 mouse/0; do
    job "gue_max_${t//\//_}" "${GEN[@]}" "${B128[@]}" --set pooling=max --tasks "$t" \
      --tag "max_${t//\//_}"
  done
  job gue_drop_tf_2 "${GEN[@]}" "${B128[@]}" --set dropout=0.3 --tasks tf/2 --tag drop_tf_2
  for t in prom_core_all prom_core_tata prom_300_tata; do
    job "gue_last_$t" "${GEN[@]}" "${B128[@]}" --set pooling=last --tasks "$t" --tag "last_$t"
  done
  # the mean-pooling reference at the same batch for the small tasks (main has the large)
  for t in prom_core_tata prom_300_tata mouse/0; do
    job "gue_mean_${t//\//_}" "${GEN[@]}" "${B128[@]}" --tasks "$t" --tag "mean_${t//\//_}"
  done
}

plan_followup() {  # open questions after session 11 (docs/results.md): 6-mers on the full
  # TF splits, the default (max) pooling on the full promoter splits (main ran them with
  # the then-default mean pooling), a second seed of the H100 forecasts
  local t
  for t in tf/0 tf/1 tf/2; do
    job "gue_k6_${t//\//_}" "${GEN[@]}" "${B128[@]}" --set kmer_k=6 --tasks "$t" \
      --tag "k6_${t//\//_}"
  done
  for t in prom_core_all prom_core_notata; do
    job "gue_max_$t" "${GEN[@]}" "${B128[@]}" --set pooling=max --tasks "$t" --tag "max_$t"
  done
  LH=(python recipes/long_horizon.py --device "$DEVICE" --no-plot --epochs 30 --seed 1
      --max-time "$MAX_TIME" --max-train-windows 8192 "${LH_EXTRA[@]}")
  for ds in ETTm1 Weather; do
    for h in 96 192 336 720; do
      job "lh_${ds}_${h}_s1" "${LH[@]}" --dataset "$ds" --horizons "$h" \
        --out "$WORK/lh/${ds}_${h}_s1"
    done
  done
}

plan_grid() {  # the rest of the 2 x 2 grid {4-mers, 6-mers} x {mean, max pooling} on every
  # GUE task (full train splits), so that recipes/genomics.py --select-on-dev can choose per
  # task on the dev split; plus nucleotide tokens on prom_300_tata, the task no cell wins
  local t
  for t in tf/0 tf/1 tf/2 prom_core_all prom_core_notata prom_core_tata prom_300_tata mouse/0; do
    job "gue_k6mean_${t//\//_}" "${GEN[@]}" "${B128[@]}" --set kmer_k=6 --set pooling=mean \
      --tasks "$t" --tag "k6mean_${t//\//_}"
  done
  for t in prom_core_all prom_core_notata prom_core_tata prom_300_tata mouse/0; do
    job "gue_k6max_${t//\//_}" "${GEN[@]}" "${B128[@]}" --set kmer_k=6 --set pooling=max \
      --tasks "$t" --tag "k6max_${t//\//_}"
  done
  for t in prom_core_tata prom_300_tata; do
    job "gue_max_$t" "${GEN[@]}" "${B128[@]}" --set pooling=max --tasks "$t" --tag "max_$t"
  done
  local k p
  for k in 4 6; do
    for p in mean max; do
      job "gue_k${k}${p}_mouse_2" "${GEN[@]}" "${B128[@]}" --set "kmer_k=$k" --set "pooling=$p" \
        --tasks mouse/2 --tag "k${k}${p}_mouse_2"
    done
  done
  job gue_nuc_prom_300_tata "${GEN[@]}" "${B128[@]}" --set tokenizer=nucleotide --set pooling=max \
    --tasks prom_300_tata --tag nucmax_prom_300_tata
}

plan_position() {  # next GPU session: the position-embedding candidate on the large tasks at
  # the k-mer size their dev split chose (docs/results.md, "k-mer size x pooling"), and the
  # shipped defaults end to end (kmer_k="auto", position_embedding="auto": three networks
  # sharing max_time) on the small tasks
  local t
  for t in prom_core_all prom_core_notata tf/1; do
    job "gue_pos_k4_${t//\//_}" "${GEN[@]}" "${B128[@]}" --set kmer_k=4 \
      --set position_embedding=True --tasks "$t" --tag "pos_k4_${t//\//_}"
  done
  for t in tf/0 tf/2 mouse/0; do
    job "gue_pos_k6_${t//\//_}" "${GEN[@]}" "${B128[@]}" --set kmer_k=6 \
      --set position_embedding=True --tasks "$t" --tag "pos_k6_${t//\//_}"
  done
  for t in prom_core_tata prom_300_tata mouse/2; do
    job "gue_defaults_${t//\//_}" "${GEN[@]}" "${B128[@]}" --tasks "$t" \
      --tag "defaults_${t//\//_}"
  done
}

plan_ensemble() {  # session 17: five seeds of the best single configurations of the two tasks
  # with published targets (prom_core_all: 4-mers + positions + lr_decay, the CPU's 67.61 ±
  # 0.62; tf/0: 6-mers, max pooling, 65.91), test probabilities saved so that the seed
  # ensemble is scored afterwards (--average-proba); plus two regularisation probes on tf/0,
  # whose dev loss turns up after 3-4 epochs
  local s
  for s in 0 1 2 3 4; do
    job "gue_pca_pos_s$s" "${GEN[@]}" "${B128[@]}" --set kmer_k=4 --set position_embedding=True \
      --set lr_decay=0.5 --seeds "$s" --save-proba --tasks prom_core_all --tag "pca_pos_s$s"
    job "gue_tf0_k6_s$s" "${GEN[@]}" "${B128[@]}" --set kmer_k=6 --seeds "$s" --save-proba \
      --tasks tf/0 --tag "tf0_k6_s$s"
  done
  job gue_tf0_k6_drop3 "${GEN[@]}" "${B128[@]}" --set kmer_k=6 --set dropout=0.3 --save-proba \
    --tasks tf/0 --tag tf0_k6_drop3
  job gue_tf0_k6_wd01 "${GEN[@]}" "${B128[@]}" --set kmer_k=6 --set weight_decay=0.1 --save-proba \
    --tasks tf/0 --tag tf0_k6_wd01
}

plan_kmer_linear() {  # next GPU session: kmer_linear=True (k-mer frequencies as a jointly
  # trained linear term) on every GUE task at the dev-chosen k-mer size, max pooling, no
  # positions: compare each with that task's cell of the session-12 grid (docs/results.md,
  # "k-mer size x pooling"; same batch, lr and pooling; limits 220-300 s there, so give
  # MAX_TIME=300). CPU, one seed: the term lowered the dev loss on mouse/0 and prom_core_tata,
  # raised it on tf/0 and mouse/2
  local t k
  for t in prom_core_all prom_core_notata prom_core_tata prom_300_tata tf/0 tf/1 tf/2 mouse/0 \
      mouse/2; do
    case "$t" in tf/0|tf/2|mouse/0|mouse/2) k=6 ;; *) k=4 ;; esac
    job "gue_kl_${t//\//_}" "${GEN[@]}" "${B128[@]}" --set "kmer_k=$k" --set kmer_linear=True \
      --set position_embedding=False --tasks "$t" --tag "kl_k${k}_${t//\//_}"
  done
}

plan_pretrain() {  # next GPU session: next-base pretraining on the human GUE training
  # sequences (recipes/genomics_pretrain.py; 6-mer and 4-mer inputs, PRETRAIN_TIME seconds
  # each, side by side), then each task fine-tuned from the LM of its k-mer size and from
  # scratch, same seed, batch, lr and MAX_TIME. CPU, session 18: see docs/results.md
  # ("Pretraining on the GUE training sequences"). Give MAX_TIME=240 so that both phases fit
  # one call: PRETRAIN_TIME (default 180) + evaluation + MAX_TIME + evaluation < 600 s
  local k pids=() t spec
  for k in 6 4; do
    job "lm_k$k" python recipes/genomics_pretrain.py --device "$DEVICE" --kmer-k "$k" \
      --batch-size 128 --learning-rate 2e-3 --max-time "${PRETRAIN_TIME:-180}" \
      --out "$WORK/lm_k$k" "${PRE_EXTRA[@]}"
    pids+=($!)
  done
  wait "${pids[@]}"
  for spec in tf/0:6 tf/2:6 mouse/0:6 prom_core_all:4; do
    t="${spec%%:*}"
    k="${spec##*:}"
    local arm=(--set "kmer_k=$k" --set position_embedding=False)
    [ "$t" = prom_core_all ] && arm=(--set "kmer_k=$k" --set position_embedding=True --set lr_decay=0.5)
    job "gue_pt_${t//\//_}" "${GEN[@]}" "${B128[@]}" "${arm[@]}" --set "pretrained=$WORK/lm_k$k" \
      --save-proba --tasks "$t" --tag "pt_k${k}_${t//\//_}"
    job "gue_scratch_${t//\//_}" "${GEN[@]}" "${B128[@]}" "${arm[@]}" --save-proba --tasks "$t" \
      --tag "scratch_k${k}_${t//\//_}"
  done
}

plan_kmer5() {  # next GPU session: 5-mers, never tried before session 28, where on the CPU
  # (tf/0, three seeds) they had the lowest dev loss of 4/5/6-mers in both same-seed
  # comparisons and test MCC 66.21 mean (6-mers 65.09). Every GUE task on full train, max
  # pooling, no position embedding: the settings of the H100 "k-mer size x pooling" table
  # (docs/results.md), so the dev losses compare with its 4-mer and 6-mer rows. Session 29
  # (CPU, one seed each on mouse/0, mouse/2, prom_core_tata, prom_300_tata and tf/0): a
  # dev-loss choice over {4, 5, 6} moved test MCC by +0.1 summed, so more seeds decide it:
  # SEEDS="0 1 2" runs each task once per seed (default: seed 0 only)
  local t s
  for s in ${SEEDS:-0}; do
    for t in tf/0 tf/1 tf/2 prom_core_all prom_core_notata prom_core_tata prom_300_tata \
        mouse/0 mouse/2; do
      job "gue_k5_${t//\//_}_s$s" "${GEN[@]}" "${B128[@]}" --set kmer_k=5 \
        --set position_embedding=False --seeds "$s" --save-proba --tasks "$t" \
        --tag "k5max_${t//\//_}_s$s"
    done
  done
}

plan_defaults() {  # the shipped defaults end to end on the large tasks whose rows predate
  # the sub-k-mer default (session 33): prom_core_all, prom_core_notata, tf/0, tf/1 (session
  # 32 ran the first, third and fourth with it off). A default fit trains 4-mers and
  # 6-mers, keeps the lower dev loss, then that size with positions, all in one process
  # with max_time shared; here the four candidate networks (both sizes, with and without
  # positions) run side by side, each with MAX_TIME, and the default's two dev-loss
  # choices are read off their rows afterwards (each candidate is seeded afresh, so it
  # equals the fit inside the default; tested). SEEDS as in plan_kmer5; TASKS (default the
  # four above) and VARIANT (e.g. VARIANT=mac: the backbone block, tags ..._mac; default
  # the classifier's, MAG) re-measure other rows, e.g. the defaults table under MAC;
  # BIDIRECTIONAL=1 trains two-way blocks (bidirectional=True, tags ..._bi)
  local t s k p v=""
  [ -n "${VARIANT:-}" ] && v="_$VARIANT"
  [ -n "${BIDIRECTIONAL:-}" ] && v="${v}_bi"
  for s in ${SEEDS:-0}; do
    for t in ${TASKS:-prom_core_all prom_core_notata tf/0 tf/1}; do
      for k in 4 6; do
        for p in False True; do
          job "gue_def_${t//\//_}_k${k}_pos${p}${v}_s$s" "${GEN[@]}" "${B128[@]}" \
            ${VARIANT:+--set "variant=$VARIANT"} \
            ${BIDIRECTIONAL:+--set "bidirectional=True"} \
            --set "kmer_k=$k" --set "position_embedding=$p" --seeds "$s" \
            --tasks "$t" --tag "def_${t//\//_}_k${k}_pos${p}${v}_s$s"
        done
      done
    done
  done
}

case "${PLAN:-main}" in
  main) plan_main ;;
  pooling) plan_pooling ;;
  followup) plan_followup ;;
  grid) plan_grid ;;
  position) plan_position ;;
  ensemble) plan_ensemble ;;
  kmer_linear) plan_kmer_linear ;;
  pretrain) plan_pretrain ;;
  kmer5) plan_kmer5 ;;
  defaults) plan_defaults ;;
  *) echo "unknown PLAN=$PLAN (main, pooling, followup, grid, position, ensemble, kmer_linear," \
       "pretrain, kmer5, defaults)" >&2; exit 2 ;;
esac

if [ -z "${SMOKE:-}" ]; then  # GPU load while the jobs run, for sizing the next session
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 30 \
    > "$WORK/gpu_load.csv" 2>&1 &
  smi=$!
fi

# 2. Triton tests on CUDA while the jobs run (correctness only, timings come later) -------
rc_test=0
if [ -z "${SMOKE:-}" ] && { [ "${PLAN:-main}" = main ] || [ -n "${TRITON_TESTS:-}" ]; }; then
  workers=()  # compiling the kernels is CPU work: spread the tests over a few processes
  python -c "import xdist" 2> /dev/null && workers=(-n "${TEST_WORKERS:-4}")
  TITANS_TS_TRITON_DEVICE=cuda timeout "${TEST_TIMEOUT:-240}" \
    python -m pytest -q -p no:cacheprovider --durations=5 "${workers[@]}" \
    tests/memory/test_triton.py \
    > "$WORK/pytest_triton.txt" 2>&1
  rc_test=$?
  tail -n 5 "$WORK/pytest_triton.txt"
fi
pids=$(jobs -p | grep -v -e "^${smi:-x}$" -e "^${snap}$")
[ -n "$pids" ] && wait $pids
[ -n "${smi:-}" ] && kill "$smi" 2> /dev/null
[ "$mps" = on ] && echo quit | nvidia-cuda-mps-control > /dev/null 2>&1

# 3. reports ---------------------------------------------------------------------------
python recipes/genomics.py --report-from "$WORK/genomics" > "$WORK/logs/genomics_report.log" 2>&1
{
  cat "$WORK/versions.txt"
  cat "$WORK/memory_gpu.jsonl" 2>/dev/null
  echo "triton tests rc=$rc_test"
  tail -n 3 "$WORK/pytest_triton.txt" 2>/dev/null
  for f in "$WORK"/logs/*.log; do
    echo "== $(basename "$f")"
    grep -E "Titans|ridge|MCC|mcc|fold|Error|error|Killed" "$f" | tail -n 20
  done
  cat "$WORK/genomics/genomics_results.md" 2>/dev/null
  cat "$WORK"/lh/*/*_results.csv 2>/dev/null
  cat "$WORK/gpu_load.csv" 2>/dev/null
} > "$OUT/summary.txt" 2>&1
kill "$snap" 2> /dev/null
wait "$snap" 2> /dev/null
snapshot
cat "$OUT/summary.txt"
[ "$rc_test" -eq 0 ]
