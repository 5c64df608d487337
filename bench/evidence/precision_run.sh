#!/usr/bin/env bash
# The fp32-against-bf16 evidence (docs/reference-length.md, "Precision: bf16 only by evidence"):
# beta-VAE and FactorVAE, 3 seeds, 10,000 steps, once in fp32 and once in bf16 + channels_last, then
# the comparison. Resumable: run it again and finished cells are skipped. It runs a clone of this
# checkout from outside it (started inside a checkout, `python -m` would import that checkout's code
# whatever PYTHONPATH says, so later edits there would reach the running job) on one core, one
# torch thread. A second copy on the other core takes the next free cell (the runner's cell locks):
#   bash bench/evidence/precision_run.sh [RUNS_DIR]      (default /work/runs; results in RUNS_DIR/precision)
#   PRECISION_CORE=0 nice -n 5 bash bench/evidence/precision_run.sh
set -eu
here="$(cd "$(dirname "$0")/../.." && pwd)"
runs="${1:-/work/runs}"
mkdir -p "$runs"
[ -d "$runs/code-precision/.git" ] || git clone -q "$here" "$runs/code-precision"
cd "$runs"
# counted before OMP_NUM_THREADS is set: nproc reports OMP_NUM_THREADS when it is set
core="${PRECISION_CORE:-$(( $(nproc --all) - 1 ))}"
export PYTHONPATH="$runs/code-precision" OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
exec taskset -c "$core" python -m disentbench.bench.evidence.precision run --out "$runs/precision" \
  --device cpu --threads 1
