#!/usr/bin/env bash
# Every stage for each task in TASKS (space-separated; a comma-joined group trains one model on several tasks).
set -euo pipefail
HERE="$(dirname "$0")"
for TASK in ${TASKS:?set TASKS, e.g. "sst2 mnli" or "sst2,rte"}; do
  export TASK
  # the RM comparison (the paper's first claim) comes before the label-only SFT baseline, which only 07 needs
  for stage in 01_data 02_sft_wrat 03_merge 04_rlhf_rm 05_rllr_rm 02_sft 06_ppo 07_predict; do
    echo "=== rllr $TASK: $stage ==="
    bash "$HERE/$stage.sh"
  done
done
