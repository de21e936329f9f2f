#!/usr/bin/env bash
# Every PCRM stage in order, for each task in TASKS (default: dialogue).
set -euo pipefail
here=$(dirname "$0")
for TASK in ${TASKS:-dialogue}; do
  export TASK
  for stage in 01_sft 02_rm 03_dpo 04_ppo 05_eval; do
    echo "=== pcrm $TASK: $stage ==="
    bash "$here/$stage.sh"
  done
done
