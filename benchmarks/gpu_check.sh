#!/usr/bin/env bash
# GPU check of the fused Triton memory executor (issue 7), for a CUDA machine with torch and
# triton (gluonts/polars/biopython not needed). Run from anywhere:
#
#     OUT=/some/dir bash benchmarks/gpu_check.sh
#
# 1. tests/memory/test_triton.py with the compiled kernels on CUDA tensors (no interpreter):
#    outputs and gradients of every input equal the chunked executor on the same GPU;
# 2. benchmarks/memory_gpu.py --json: eager chunked, compiled chunked and Triton at
#    B 8, H 8, d 64, depth 2, multiplier 4, chunk 64, T 1k/4k/16k;
# 3. the eager chunked executor again with every chunk kept (--backward-cache-mb inf): at
#    this shape all chunks take 850 MiB at 1k (13.3 KiB per token and head), so step 2's
#    chunked rows recompute every chunk in the backward while Triton keeps its states.
# Everything lands in $OUT (default ./gpu_check_out): versions.txt, pytest.txt,
# benchmark.jsonl, benchmark_keepall.jsonl, benchmark.stderr.txt, summary.txt. Exit status: non-zero if a step failed.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu_check_out}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
unset TRITON_INTERPRET
status=0

{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || true
  python -c "import sys, torch, triton; print(sys.version.split()[0], 'torch', torch.__version__, 'triton', triton.__version__, 'cuda', torch.cuda.is_available())"
} > "$OUT/versions.txt" 2>&1
cat "$OUT/versions.txt"

if python -c "import pytest" 2>/dev/null; then
  # compiling the kernels is CPU work (cold cache: ~2 min for the library-shape test
  # alone): spread the tests over a few processes where pytest-xdist is installed
  workers=()
  python -c "import xdist" 2> /dev/null && workers=(-n "${TEST_WORKERS:-4}")
  TITANS_TS_TRITON_DEVICE=cuda timeout "${TEST_TIMEOUT:-360}" \
    python -m pytest -q -p no:cacheprovider --durations=10 "${workers[@]}" \
    tests/memory/test_triton.py 2>&1 | tee "$OUT/pytest.txt"
  rc_test=${PIPESTATUS[0]}
else
  echo "pytest is not installed: GPU tests NOT run" | tee "$OUT/pytest.txt"
  rc_test=127
fi
[ "$rc_test" -eq 0 ] || status=1

timeout "${BENCH_TIMEOUT:-420}" python benchmarks/memory_gpu.py --json \
  > "$OUT/benchmark.jsonl" 2> "$OUT/benchmark.stderr.txt"
rc_bench=$?
cat "$OUT/benchmark.jsonl"
tail -n 20 "$OUT/benchmark.stderr.txt"
[ "$rc_bench" -eq 0 ] || status=1

timeout "${KEEPALL_TIMEOUT:-180}" python benchmarks/memory_gpu.py --json --executors chunked \
  --backward-cache-mb inf > "$OUT/benchmark_keepall.jsonl" 2>> "$OUT/benchmark.stderr.txt"
rc_keep=$?
cat "$OUT/benchmark_keepall.jsonl"
[ "$rc_keep" -eq 0 ] || status=1

echo "gpu tests rc=$rc_test benchmark rc=$rc_bench keep-all rc=$rc_keep" | tee "$OUT/summary.txt"
exit "$status"
