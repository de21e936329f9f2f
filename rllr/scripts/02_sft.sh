#!/usr/bin/env bash
# Label-only SFT (the "SFT" row without rationales): x -> "Label: y".
source "$(dirname "$0")/env.sh"
run_if_needed "$ROOT/sft_label" $PY -m common.train.sft --config "$CONFIG" --section sft_label \
  dataset="$ROOT/data/sft_label.jsonl" output_dir="$ROOT/sft_label" $OW
