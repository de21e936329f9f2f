#!/usr/bin/env bash
# The whole RLCHF pipeline in order (stages 01-07); the make targets call this with CONFIG, OUT, ROWS, SFT_ROWS.
set -euo pipefail
here=$(dirname "$0")
for stage in 01_personas 02_candidates 03_rank 04_aggregate 05_dpo 06_sft 07_evaluate; do
  echo "=== rlchf: $stage ($CONFIG -> $OUT) ==="
  bash "$here/$stage.sh"
done
