#!/usr/bin/env bash
# Carries the long evidence runs into the repository, so a replaced machine loses none of them
# (docs/reference-length.md, "Where the runs stand"). Between two sessions the machine may be swapped
# for a fresh one that keeps the committed history of main and nothing else: each run folder
# RUNS_DIR/NAME present is saved into evidence/NAME of this checkout (bench/evidence/carry.py: the
# resumable checkpoints whole, kept ones slim, no locks), and with COMMIT=1 evidence/ alone is
# committed (nothing else staged goes with it). reference_run.sh and gan_family_cpu.sh restore what
# a fresh machine lacks before they start, so the same command resumes the run.
#   bash bench/evidence/carry_runs.sh [RUNS_DIR]             (default /work/runs)
#   COMMIT=1 bash bench/evidence/carry_runs.sh [RUNS_DIR]    (and commit evidence/)
# CARRY_RUNS names the run folders (default: reference-dsprites gan-family-10k architecture-ab
# architecture-ab-dcgan).
set -eu
here="$(cd "$(dirname "$0")/../.." && pwd)"
runs="${1:-/work/runs}"
for name in ${CARRY_RUNS:-reference-dsprites gan-family-10k architecture-ab architecture-ab-dcgan}; do
  [ -d "$runs/$name" ] || continue
  # the A/B's 10,000-step cells travel as scores: a running one's checkpoint (54 MB) costs more than its rerun
  extra=()
  case "$name" in architecture-ab*) extra=(--finished-scores-only) ;; esac
  (cd "$here" && python -m disentbench.bench.evidence.carry save "$runs/$name" "evidence/$name" "${extra[@]}")
done
if [ -n "${COMMIT:-}" ] && [ -d "$here/evidence" ]; then
  git -C "$here" add -A evidence
  git -C "$here" diff --cached --quiet -- evidence ||
    git -C "$here" commit -q -m "evidence: carry the long runs ($(date -u +%FT%TZ))" -- evidence
fi
