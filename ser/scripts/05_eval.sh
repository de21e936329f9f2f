#!/usr/bin/env bash
# Judge the PPO policies against each other and SFT (0-5 rubric + pairwise both orders, common.eval.judge).
# Needs each system's responses on data/eval_prompts.jsonl as $OUT/responses/<system>.jsonl ({prompt, response}).
set -euo pipefail
: "${CONFIG:?set CONFIG=ser/configs/<model>.yaml}"; RUNS=${RUNS:-runs}; MODEL=${MODEL:-$(basename "$CONFIG" .yaml)}
DATASET=${DATASET:-hh}; OVERWRITE=${OVERWRITE:-false}; PY=${PY:-python}
OUT=$RUNS/ser/$MODEL/$DATASET
for other in sft ppo_seed ppo_full; do
  $PY -m common.eval.judge --config "$CONFIG" --section judge_eval a="$OUT/responses/ppo_ser.jsonl" \
    b="$OUT/responses/$other.jsonl" name_a=ppo_ser name_b="$other" output_dir="$OUT/judge/ppo_ser_vs_$other" \
    overwrite="$OVERWRITE"
done
