#!/usr/bin/env bash
# Stage 4: social welfare functions over the ballots -> pairs/<row>.jsonl and sft/<row>.jsonl, agreement statistics.
set -euo pipefail
: "${CONFIG:?set CONFIG}" "${OUT:?set OUT}"
PY=${PY:-python}
$PY -m rlchf.aggregate --config "$CONFIG" --section aggregate candidates="$OUT/candidates/candidates.jsonl" \
  rankings="$OUT/rank/rankings.jsonl" output_dir="$OUT/aggregate" overwrite="${OVERWRITE:-false}"
