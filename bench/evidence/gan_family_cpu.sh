#!/usr/bin/env bash
# The GAN family to 10,000 generator steps on one CPU core (issue 22, item 6; docs/did.md): DiD with
# the paper-literal balance, DiD with lambda_h = 0 (the ablation) and InfoGAN-CR, one seed, batch 64,
# procedural dSprites, MIG / DCI / SAP at the quick profile's sizes every 1,000 steps (the curves:
# OUT/scores/<arm>_s<step>.json), round-robin in chunks of 500 steps. Resumable: run it again and each
# arm continues from its last chunk's checkpoint. It runs a clone of this checkout (so later edits
# here do not change a running job) on one core (the last unless GAN_CORE says), one torch thread.
#   bash bench/evidence/gan_family_cpu.sh [RUNS_DIR]     (default /work/runs; results in RUNS_DIR/gan-family-10k)
#   GAN_CORE=0 nice -n 5 bash bench/evidence/gan_family_cpu.sh
# GAN_ARGS adds options, e.g. GAN_ARGS=--channels-last (fp32 DiD x1.18 on an AVX2-only CPU; measure
# on yours: python -m disentbench.bench.perf train --methods did --options-ab --ab-variants channels_last).
set -eu
here="$(cd "$(dirname "$0")/../.." && pwd)"
runs="${1:-/work/runs}"
mkdir -p "$runs"
[ -d "$runs/code-gan/.git" ] || git clone -q "$here" "$runs/code-gan"
# a fresh machine lacks the run folder: restore what bench/evidence/carry_runs.sh carried into the
# repository (files the folder has are left as they are)
if [ -f "$here/evidence/gan-family-10k/MANIFEST.json" ]; then
  PYTHONPATH="$runs/code-gan" python -m disentbench.bench.evidence.carry restore "$here/evidence/gan-family-10k" "$runs/gan-family-10k"
fi
cd "$runs"
# counted before OMP_NUM_THREADS is set: nproc reports OMP_NUM_THREADS when it is set
core="${GAN_CORE:-$(( $(nproc --all) - 1 ))}"
export PYTHONPATH="$runs/code-gan" OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
exec taskset -c "$core" python -m disentbench.bench.evidence.gan_family --out "$runs/gan-family-10k" \
  --steps 10000 --chunk 500 --arms did_literal,did_lh0,infogancr --score-every 1000 --log-every 100 \
  --device cpu --threads 1 ${GAN_ARGS:-}
