#!/usr/bin/env bash
# Before (merged SFT) vs after (RL policy): answers on held-out debate prompts scored by the RM, BLEU/ROUGE against the
# held-out debate utterances (as upstream's SFT do_predict), and BBQ.
source "$(dirname "$0")/env.sh"
$PY -m rldf.predict --config "$CONFIG" --section predict before_model="$POLICY" \
  after_model="$OUT/rl/policy" reward_model="$(merged rm)" prompts="$DATA/prompts" references="$DATA/sft" \
  output_dir="$OUT/predict" "${EXTRA[@]}"
