#!/usr/bin/env bash
# Stage 7 (PPO row, part 1): one reward model per row in $PPO_ROWS (empty = none), Bradley-Terry on the same pairs
# DPO trains on (aggregate/pairs/<row>.jsonl: the SWF's top above lower candidates), scored on the held-out gold
# pairs. LAUNCH starts the trainer (e.g. "accelerate launch --num_processes 8"; default $PY).
set -euo pipefail
: "${CONFIG:?set CONFIG}" "${OUT:?set OUT}"
PY=${PY:-python}
LAUNCH=${LAUNCH:-$PY}
for row in ${PPO_ROWS:-}; do
  pairs="$OUT/aggregate/pairs/$row.jsonl"
  if [ ! -s "$pairs" ]; then echo "rlchf: no pairs for row $row ($pairs); skipped"; continue; fi
  $LAUNCH -m common.train.rm --config "$CONFIG" --section rm dataset="$pairs" \
    eval_dataset="$OUT/candidates/heldout.jsonl" output_dir="$OUT/rm/$row" overwrite="${OVERWRITE:-false}"
done
