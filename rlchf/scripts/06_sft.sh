#!/usr/bin/env bash
# Stage 6 (optional): SFT on each row's top response, for the rows in $SFT_ROWS (empty = none). LAUNCH starts the
# trainer (e.g. "accelerate launch --num_processes 8"; default $PY).
set -euo pipefail
: "${CONFIG:?set CONFIG}" "${OUT:?set OUT}"
PY=${PY:-python}
LAUNCH=${LAUNCH:-$PY}
for row in ${SFT_ROWS:-}; do
  data="$OUT/aggregate/sft/$row.jsonl"
  if [ ! -s "$data" ]; then echo "rlchf: no SFT records for row $row ($data); skipped"; continue; fi
  $LAUNCH -m common.train.sft --config "$CONFIG" --section sft dataset="$data" output_dir="$OUT/sft/$row" \
    overwrite="${OVERWRITE:-false}"
done
