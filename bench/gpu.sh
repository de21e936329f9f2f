#!/usr/bin/env bash
# The GPU sweep: every stage × {ours, TRL default, TRL best} on the 1b (TinyLlama-1.1B-shaped) model, bf16, on the
# card this runs on. Run from the repository root; carry .whl/ (bench/fetch_wheels.sh) when the machine is offline.
#   OUT=runs/bench bash bench/gpu.sh            # records -> $OUT/gpu-1b.jsonl, table on stdout
set -euo pipefail
WHEELS=${WHEELS:-.whl}
OUT=${OUT:-runs/bench}
PY=${PY:-python3}
mkdir -p "$OUT"
if compgen -G "$WHEELS/*.whl" >/dev/null; then
  # one version of each package per install: trl 1.12.0 goes into its own folder later (bench.ppo)
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    $(ls "$WHEELS"/*.whl | grep -v 'trl-1\.12\.') 
  export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}
  export BENCH_WHEELS=$WHEELS
fi
export HF_HUB_OFFLINE=1 WANDB_MODE=disabled TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/card.txt"
# batch 8 × 128-2048 tokens (log-uniform), 3 warmup + 10 timed steps; PPO: 32 prompts (≤ 512 tokens) × 128 new
# tokens, 1 warmup + 3 steps. Measured on an H200 (2026-12-04): sft/rm/dpo 6 min, ppo 2.5 min.
COMMON=(--model-size 1b --device cuda --min-len 128 --max-len 2048)
# A failed run must not stop the PPO sweep (set -e did, on the first H200 run): collect the status, exit with it.
status=0
$PY -m bench.sweep --out "$OUT/gpu-1b.jsonl" --stages sft,rm,dpo -- "${COMMON[@]}" --batch 8 --warmup 3 --steps 10 \
  || status=$?
$PY -m bench.sweep --out "$OUT/gpu-1b.jsonl" --stages ppo -- "${COMMON[@]}" --max-len 512 --batch 32 --gen-len 128 \
  --warmup 1 --steps 3 || status=$?
exit $status
