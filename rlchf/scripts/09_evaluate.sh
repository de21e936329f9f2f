#!/usr/bin/env bash
# Stage 7: BBQ and held-out preference accuracy for the base and every trained row -> $OUT/eval/results.md.
set -euo pipefail
: "${CONFIG:?set CONFIG}" "${OUT:?set OUT}"
PY=${PY:-python}
$PY -m rlchf.evaluate --config "$CONFIG" --section evaluate train_root="$OUT" heldout="$OUT/candidates/heldout.jsonl" \
  output_dir="$OUT/eval" overwrite="${OVERWRITE:-false}"
