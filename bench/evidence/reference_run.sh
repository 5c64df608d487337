#!/usr/bin/env bash
# The first reference-length models (docs/reference-length.md): FactorVAE gamma 10 (150,000 steps)
# then beta-VAE beta 4 (300,000 steps) on procedural dSprites, fp32, learning curves at reference
# metric sizes. Resumable: run it again and finished cells are skipped, the running one resumes from
# its last checkpoint. It runs a clone of this checkout (so later edits here do not change a running
# job) on one core with one torch thread.
#   bash bench/evidence/reference_run.sh [RUNS_DIR]      (default /work/runs; results in RUNS_DIR/reference-dsprites)
# REFERENCE_METHODS=betavae trains the beta-VAE alone (the FactorVAE is finished and in the zoo);
# REFERENCE_ARGS adds runner options, e.g. REFERENCE_ARGS=--channels-last (a speed option, not part of
# the cell's identity: fp32 beta-VAE x1.24 on an AVX2-only CPU, x0.98 on the AMX host; measure on yours).
# A second copy on another core takes the next cell (the runner's cell locks keep them apart):
#   REFERENCE_CORE=0 nice -n 5 bash bench/evidence/reference_run.sh
set -eu
here="$(cd "$(dirname "$0")/../.." && pwd)"
runs="${1:-/work/runs}"
mkdir -p "$runs"
[ -d "$runs/code/.git" ] || git clone -q "$here" "$runs/code"
# a fresh machine lacks the run folder: restore what bench/evidence/carry_runs.sh carried into the
# repository (files the folder has are left as they are)
if [ -f "$here/evidence/reference-dsprites/MANIFEST.json" ]; then
  PYTHONPATH="$runs/code" python -m disentbench.bench.evidence.carry restore "$here/evidence/reference-dsprites" "$runs/reference-dsprites"
fi
cp -n "$here/bench/evidence/reference_dsprites.yaml" "$runs/reference_dsprites.yaml" 2>/dev/null || true
cd "$runs"
# The last core unless REFERENCE_CORE says, counted before OMP_NUM_THREADS is set: nproc reports
# OMP_NUM_THREADS when it is set.
core="${REFERENCE_CORE:-$(( $(nproc --all) - 1 ))}"
export PYTHONPATH="$runs/code" OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
methods="${REFERENCE_METHODS:-factorvae,betavae}"
sets=()
case ",$methods," in *,factorvae,*) sets=(--set factorvae.gamma=10) ;; esac
exec taskset -c "$core" python -m disentbench --profile "$runs/reference_dsprites.yaml" \
  --methods "$methods" "${sets[@]}" --results "$runs/reference-dsprites" --device cpu --threads 1 --no-report ${REFERENCE_ARGS:-}
