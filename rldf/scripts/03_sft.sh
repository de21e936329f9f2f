#!/usr/bin/env bash
# SFT of the policy on single debate utterances (LoRA).
source "$(dirname "$0")/env.sh"
$LAUNCH -m common.train.sft --config "$CONFIG" --section sft dataset="$DATA/sft" output_dir="$OUT/sft" "${EXTRA[@]}"
