#!/usr/bin/env bash
# Greedy predictions on the test prompts for every system, RewardBench for both RMs (recipe section rewardbench:
# the hub set; tiny: the shipped sample; data '' = off), then the comparison table ($ROOT/comparison.md).
source "$(dirname "$0")/env.sh"
declare -A SYSTEMS=([sft_label]="$ROOT/sft_label_merged" [sft_wrat]="$ROOT/sft_wrat_merged")
for MODE in $MODES; do SYSTEMS[ppo_$MODE]="$ROOT/ppo_$MODE/policy_merged"; done
for SYS in "${!SYSTEMS[@]}"; do
  run_if_needed "$ROOT/predict/$SYS" $PY -m rllr.predict --config "$CONFIG" --section predict \
    model="${SYSTEMS[$SYS]}" data="$ROOT/data/eval.jsonl" output_dir="$ROOT/predict/$SYS" $TR $OW
done
for RM in rm_rat rm_label; do
  run_if_needed "$ROOT/rewardbench/$RM" $PY -m common.eval.rewardbench --config "$CONFIG" --section rewardbench \
    model="$ROOT/$RM" output_dir="$ROOT/rewardbench/$RM" $TR $OW
done
$PY -m rllr.compare --root "$ROOT"
