#!/usr/bin/env bash
# The policy-side data from the loop's own split (ser.prepare_data), then SFT on the chosen answers (common.train.sft).
source "$(dirname "$0")/env.sh"
$PY -m ser.prepare_data --config "$CONFIG" --out "$OUT/data" dataset="$DATASET" "$@"
run_if_needed "$OUT/sft" $LAUNCH -m common.train.sft --config "$CONFIG" --section sft dataset="$OUT/data/sft.jsonl" \
  output_dir="$OUT/sft" $OW
