#!/usr/bin/env bash
# Label-only SFT (the "SFT" row without rationales): x -> "Label: y"; its adapter is merged for prediction.
source "$(dirname "$0")/env.sh"
run_if_needed "$ROOT/sft_label" $LAUNCH -m common.train.sft --config "$CONFIG" --section sft_label \
  dataset="$ROOT/data/sft_label.jsonl" output_dir="$ROOT/sft_label" $TR $OW
merge_if_needed "$ROOT/sft_label" "$ROOT/sft_label_merged"
