#!/usr/bin/env bash
# The GAN-family evidence on one GPU (issue 14, item 4): bench/evidence/gan_family.py at the paper
# profile's length, same arms as the CPU run (did literal, adaptive and warmup balances, did
# lambda_h = 0, infogancr),
# one seed, batch 64. It keeps to a wall budget: no chunk starts after 85% of BUDGET_S, and `timeout`
# ends it at BUDGET_S; rerun the same command to continue from each arm's last chunk (its
# checkpoint). Needs only this repository and the installed torch (no network). From the repo root:
#   bash bench/evidence/gan_family_gpu.sh                 # on a CUDA machine
#   DEVICE=cpu STEPS=4 CHUNK=2 LOG_EVERY=2 SCORE_EVERY=4 BATCH=4 METRIC_SCALE=tiny BUDGET_S=300 \
#     bash bench/evidence/gan_family_gpu.sh /tmp/gan-smoke  # CPU smoke run
# The last line is the summary as one JSON object (summary.json and summary.md in OUT; pictures in
# OUT/pictures, logs with the diagnostics in OUT/cells/<arm>/train_log.csv).
set -u
cd "$(dirname "$0")/../.."
OUT="${1:-results/gan-family-gpu}"
DEVICE="${DEVICE:-cuda}"
STEPS="${STEPS:-300000}"          # the paper profile's generator steps (InfoGAN-CR's switch at 25/28 of it)
CHUNK="${CHUNK:-5000}"            # steps per arm per turn
LOG_EVERY="${LOG_EVERY:-1000}"    # the paper profile's logging interval (diagnostics at each)
SCORE_EVERY="${SCORE_EVERY:-50000}"
BATCH="${BATCH:-64}"
ARMS="${ARMS:-did_literal,did_adaptive,did_warmup,did_lh0,infogancr}"
METRIC_SCALE="${METRIC_SCALE:-quick}"
BUDGET_S="${BUDGET_S:-540}"
PY="${PYTHON:-python}"

echo "=== environment ==="
"${PY}" - <<'PYEOF'
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda)
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print("gpu", p.name, f"{p.total_memory / 2**30:.0f} GiB")
PYEOF
HOURS=$("${PY}" -c "print(${BUDGET_S} * 0.85 / 3600)")
echo "=== gan family: ${ARMS}, ${STEPS} steps planned, budget ${BUDGET_S} s ==="
start=$SECONDS
timeout --kill-after=20 "${BUDGET_S}" "${PY}" -m disentbench.bench.evidence.gan_family \
    --out "${OUT}" --device "${DEVICE}" --steps "${STEPS}" --chunk "${CHUNK}" --batch "${BATCH}" \
    --arms "${ARMS}" --log-every "${LOG_EVERY}" --score-every "${SCORE_EVERY}" \
    --metric-scale "${METRIC_SCALE}" --max-hours "${HOURS}" --threads 4
rc=$?
echo "=== gan family: exit ${rc}, $((SECONDS - start)) s ==="
[ -f "${OUT}/summary.md" ] && cat "${OUT}/summary.md"
exit ${rc}
