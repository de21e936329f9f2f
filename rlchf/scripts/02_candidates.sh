#!/usr/bin/env bash
# Stage 2: K candidate responses per prompt (dataset's chosen + rejected + K-2 policy samples) and held-out gold pairs.
set -euo pipefail
: "${CONFIG:?set CONFIG}" "${OUT:?set OUT}"
PY=${PY:-python}
$PY -m rlchf.candidates --config "$CONFIG" --section candidates output_dir="$OUT/candidates" \
  overwrite="${OVERWRITE:-false}"
