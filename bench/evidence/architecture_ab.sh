#!/usr/bin/env bash
# The architecture A/B (bench/evidence/architecture_ab.yaml, docs/reference-length.md): seed 0 of both
# arms first (the first comparison as early as possible), then seeds 1 and 2. Resumable: run it again
# and finished cells are skipped, a running one resumes from its last checkpoint (every 2,000 steps).
# Then the same with InfoGAN-CR's initialisation (architecture_ab_dcgan.yaml) in RUNS_DIR/architecture-ab-dcgan.
# It runs a clone of this checkout (so later edits here do not change a running job) on one core
# (the first unless AB_CORE says) with one torch thread.
#   bash bench/evidence/architecture_ab.sh [RUNS_DIR]    (default /work/runs; results in RUNS_DIR/architecture-ab)
#   AB_CORE=1 bash bench/evidence/architecture_ab.sh     (on the second core)
# AB_METHODS trains one arm alone, e.g. AB_METHODS=factorvae_infogancr (its seeds on this host, then
# the same arm with InfoGAN-CR's initialisation).
set -eu
here="$(cd "$(dirname "$0")/../.." && pwd)"
runs="${1:-/work/runs}"
mkdir -p "$runs"
[ -d "$runs/code-ab/.git" ] || git clone -q "$here" "$runs/code-ab"
# a fresh machine lacks the results folders: restore what bench/evidence/carry_runs.sh carried into
# the repository (files a folder has are left as they are)
for name in architecture-ab architecture-ab-dcgan; do
  if [ -f "$here/evidence/$name/MANIFEST.json" ]; then
    PYTHONPATH="$runs/code-ab" python -m disentbench.bench.evidence.carry restore "$here/evidence/$name" "$runs/$name"
  fi
done
for profile in architecture_ab architecture_ab_dcgan; do
  cp -n "$here/bench/evidence/$profile.yaml" "$runs/$profile.yaml" 2>/dev/null || true
done
cd "$runs"
export PYTHONPATH="$runs/code-ab" OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
methods="${AB_METHODS:-factorvae,factorvae_infogancr}"
sets=()  # gamma 10 for each arm trained (--set of a method not selected is an error)
for m in ${methods//,/ }; do sets+=(--set "$m.gamma=10"); done
# First pass (our initialisation), then the second (InfoGAN-CR's, architecture_ab_dcgan.yaml), each in
# its own results folder.
for pass in "architecture_ab architecture-ab" "architecture_ab_dcgan architecture-ab-dcgan"; do
  set -- $pass
  for seeds in 1 3; do
    taskset -c "${AB_CORE:-0}" python -m disentbench --profile "$runs/$1.yaml" --seeds "$seeds" \
      --methods "$methods" "${sets[@]}" \
      --results "$runs/$2" --device cpu --threads 1 --no-report
  done
done
