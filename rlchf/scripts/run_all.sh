#!/usr/bin/env bash
# The whole RLCHF pipeline in order (stages 01-09); the make targets call this with CONFIG, OUT and the training rows:
# ROWS (DPO), SFT_ROWS (SFT on the top response), PPO_ROWS (RM on the pairs, then PPO against it).
set -euo pipefail
here=$(dirname "$0")
for stage in 01_personas 02_candidates 03_rank 04_aggregate 05_dpo 06_sft 07_rm 08_ppo 09_evaluate; do
  echo "=== rlchf: $stage ($CONFIG -> $OUT) ==="
  bash "$here/$stage.sh"
done
