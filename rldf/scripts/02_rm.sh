#!/usr/bin/env bash
# Reward model on the debate pairs (LoRA, BT loss); held-out topics give the pairwise accuracy.
source "$(dirname "$0")/env.sh"
$LAUNCH -m common.train.rm --config "$CONFIG" --section rm dataset="$DATA/pairs" eval_dataset="$DATA/pairs" \
  output_dir="$OUT/rm" "${EXTRA[@]}"
