#!/usr/bin/env bash
# Fold the SFT-with-rationales LoRA adapter into its base: this model starts both RMs, the policy and the reference.
source "$(dirname "$0")/env.sh"
merge_if_needed "$ROOT/sft_wrat" "$ROOT/sft_wrat_merged"
