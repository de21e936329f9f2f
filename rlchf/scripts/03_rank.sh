#!/usr/bin/env bash
# Stage 3: every persona judge ranks every prompt's candidates (cached: a rerun only asks what is missing).
set -euo pipefail
: "${CONFIG:?set CONFIG}" "${OUT:?set OUT}"
PY=${PY:-python}
$PY -m rlchf.rank --config "$CONFIG" --section rank candidates="$OUT/candidates/candidates.jsonl" \
  judges="$OUT/personas/judges.jsonl" output_dir="$OUT/rank" overwrite="${OVERWRITE:-false}"
