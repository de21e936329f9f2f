#!/usr/bin/env bash
# Fold both SFT LoRA adapters into their bases (sft_wrat_merged starts RMs and PPO; sft_label_merged is predicted).
source "$(dirname "$0")/env.sh"
merge_if_needed "$ROOT/sft_wrat" "$ROOT/sft_wrat_merged"
merge_if_needed "$ROOT/sft_label" "$ROOT/sft_label_merged"
