#!/usr/bin/env bash
# One-GPU training performance check (issue 8). Needs only this repository and the installed torch
# (no network). About 10 minutes on one H200; every section has its own time limit, so the script
# always ends and prints what it measured. Usage, from the repository root:
#   bash bench/perf/gpu_check.sh              # on a CUDA machine
#   DEVICE=cpu LONG_STEPS=2 STEPS=1 REPEATS=1 KS=1 BATCH=4 bash bench/perf/gpu_check.sh   # CPU smoke run
# Every section ends with one JSON line (bench.perf train's last line), prefixed in this log by its
# section name: grep '^{' to collect them.
set -u
cd "$(dirname "$0")/../.."
DEVICE="${DEVICE:-cuda}"
LONG_STEPS="${LONG_STEPS:-2000}"   # section 1: uninterrupted trainer runs, per method
STEPS="${STEPS:-100}"              # sections 2-4: timed steps per ours/minimal run
REPEATS="${REPEATS:-2}"
KS="${KS:-1,2,4,8}"                # concurrent models (processes) on the one device
BATCH="${BATCH:-64}"
ALL_METHODS="${ALL_METHODS:-all}"
COMPILE_METHODS="${COMPILE_METHODS:-betavae,factorvae,did}"  # compile time is paid per network shape
PY="${PYTHON:-python}"

section() {  # section NAME LIMIT_SECONDS ARGS...
    local name="$1" limit="$2"
    shift 2
    echo "=== ${name} (limit ${limit}s) ==="
    local start=$SECONDS
    timeout --kill-after=10 "${limit}" "${PY}" -m disentbench.bench.perf train --device "${DEVICE}" --batch "${BATCH}" "$@"
    local rc=$?
    echo "=== ${name}: exit ${rc}, $((SECONDS - start)) s ==="
}

echo "=== environment ==="
"${PY}" - <<'PYEOF'
import os, platform, torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda)
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print("gpu", p.name, f"{p.total_memory / 2**30:.0f} GiB", "SMs", p.multi_processor_count)
print("cpus", os.cpu_count(), "load", os.getloadavg())
PYEOF
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.used,utilization.gpu --format=csv || true

# 1. every method, LONG_STEPS uninterrupted steps at batch 64, fp32 (steps/s and the grid projection)
section "long runs fp32, dsprites" 140 --methods "${ALL_METHODS}" --datasets dsprites --plain-steps "${LONG_STEPS}"
# 2. ours vs minimal, batch share, peak memory, both datasets, and K concurrent models
section "compare fp32 + concurrency" 140 --methods paper --steps "${STEPS}" --repeats "${REPEATS}" --concurrency "${KS}"
# 3. bf16 autocast
section "compare bf16" 60 --methods paper --datasets dsprites --steps "${STEPS}" --repeats "${REPEATS}" --precision bf16 --concurrency ""
# 4. bf16 + torch.compile (+ channels_last), fewer methods: compilation dominates short runs
section "compare bf16 + compile + channels_last" 120 --methods "${COMPILE_METHODS}" --datasets dsprites --steps "${STEPS}" --repeats "${REPEATS}" --precision bf16 --compile --channels-last --concurrency ""
# 5. CUDA graphs: torch.compile(mode="reduce-overhead") records the compiled networks' kernels
section "compare fp32 + compile reduce-overhead (CUDA graphs)" 110 --methods betavae,factorvae --datasets dsprites --steps "${STEPS}" --repeats "${REPEATS}" --compile reduce-overhead --concurrency ""
echo "=== done in ${SECONDS} s ==="
