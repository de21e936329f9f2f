#!/usr/bin/env bash
# Every RLDF stage in order (STAGES="02_rm 05_rl" to run a subset).
set -euo pipefail
here=$(dirname "$0")
for stage in ${STAGES:-01_data 02_rm 03_sft 04_merge 05_rl 06_predict}; do
  echo "=== rldf ${MODEL:-?} (${MODE:-self}): $stage ==="
  bash "$here/$stage.sh"
done
