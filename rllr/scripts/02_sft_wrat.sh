#!/usr/bin/env bash
# SFT with rationales: x -> "<rationale>\nLabel: y". This model initialises both RMs, the policy and the reference.
source "$(dirname "$0")/env.sh"
run_if_needed "$ROOT/sft_wrat" $LAUNCH -m common.train.sft --config "$CONFIG" --section sft_wrat \
  dataset="$ROOT/data/sft_rationale.jsonl" output_dir="$ROOT/sft_wrat" $TR $OW
