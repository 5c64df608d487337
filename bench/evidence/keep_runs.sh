#!/usr/bin/env bash
# Keeps long evidence runs across a replaced machine (docs/reference-length.md, "Where the runs stand").
# Between two sessions the machine may be swapped for a fresh one that keeps git repositories and
# nothing else: the seventh session found every results folder of /work/runs gone (a 130,000-step
# beta-VAE checkpoint among them) and only the code clones left. This makes each results folder its
# own git repository and commits it every INTERVAL seconds (default 900), amending one snapshot
# commit and pruning the old objects so the repository holds one copy of each file. Checkpoints are
# written by rename (bench/atomic.py), so a snapshot never holds half a file. Cell locks stay out of
# the snapshot: a restored lock from a machine that no longer exists would hold a cell for the
# 30-minute stale time.
#   bash bench/evidence/keep_runs.sh DIR [DIR ...]          (loops; INTERVAL=900 by default)
#   ONCE=1 bash bench/evidence/keep_runs.sh DIR [DIR ...]   (one snapshot, e.g. before stopping)
set -eu
interval="${INTERVAL:-900}"
snapshot() {
  local dir="$1"
  [ -d "$dir" ] || return 0
  if [ ! -d "$dir/.git" ]; then
    git -C "$dir" init -q
    printf 'lock\n*.tmp\n' > "$dir/.gitignore"
  fi
  git -C "$dir" add -A
  local amend=""
  git -C "$dir" rev-parse -q --verify HEAD >/dev/null && amend="--amend"
  git -C "$dir" -c user.name=keep_runs -c user.email=keep_runs@localhost \
    commit -q $amend -m "snapshot $(date -u +%FT%TZ)" || true
  git -C "$dir" reflog expire --expire=now --all
  git -C "$dir" gc -q --prune=now
}
while :; do
  for dir in "$@"; do snapshot "$dir"; done
  [ -n "${ONCE:-}" ] && break
  sleep "$interval"
done
