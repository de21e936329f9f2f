#!/usr/bin/env bash
# SFT data (AlpacaFarm sft split / TL;DR; tiny: SST-2 positive reviews) and the SFT policy.
source "$(dirname "$0")/env.sh"
run_if_needed "$ROOT/data_sft" $PY -m pcrm.data --config "$CONFIG" --section "data_sft_$TASK" output_dir="$ROOT/data_sft" $OW
run_if_needed "$ROOT/sft" $LAUNCH -m common.train.sft --config "$CONFIG" --section "sft_$TASK" \
  dataset="$ROOT/data_sft/train.jsonl" output_dir="$ROOT/sft" $OW
