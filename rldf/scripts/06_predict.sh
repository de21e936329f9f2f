#!/usr/bin/env bash
# Before (merged SFT) vs after (RL policy): answers on held-out debate prompts scored by the RM, BLEU/ROUGE against the
# held-out debate utterances (as upstream's SFT do_predict), and BBQ; then RewardBench for the RM.
source "$(dirname "$0")/env.sh"
$PY -m rldf.predict --config "$CONFIG" --section predict before_model="$POLICY" \
  after_model="$OUT/rl/policy" reward_model="$(merged rm)" prompts="$DATA/prompts" references="$DATA/sft" \
  output_dir="$OUT/predict" "${EXTRA[@]}"
# RewardBench for the RM (recipe section rewardbench: the hub set; tiny: the shipped sample; data '' = off)
$PY -m common.eval.rewardbench --config "$CONFIG" --section rewardbench model="$OUT/rm" \
  output_dir="$OUT/rewardbench/rm" "${EXTRA[@]}"
