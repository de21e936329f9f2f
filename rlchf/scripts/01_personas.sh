#!/usr/bin/env bash
# Stage 1: PersonaHub seeds -> enriched personas -> stratified judge panel ($OUT/personas/judges.jsonl).
set -euo pipefail
: "${CONFIG:?set CONFIG to an rlchf/configs/*.yaml}" "${OUT:?set OUT, e.g. runs/rlchf/tiny}"
PY=${PY:-python}
$PY -m rlchf.personas --config "$CONFIG" --section personas output_dir="$OUT/personas" overwrite="${OVERWRITE:-false}"
