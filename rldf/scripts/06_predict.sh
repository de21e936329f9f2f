#!/usr/bin/env bash
# Before (merged SFT) vs after (RL policy): answers on held-out debate prompts scored by the RM, and BBQ.
source "$(dirname "$0")/env.sh"
$PY -m rldf.predict --config "$CONFIG" --section predict before_model="$POLICY" \
  after_model="$OUT/rl/policy" reward_model="$(merged rm)" prompts="$DATA/prompts" output_dir="$OUT/predict" \
  "${EXTRA[@]}"
