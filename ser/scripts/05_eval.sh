#!/usr/bin/env bash
# Judge the PPO policies against each other and SFT (0-5 rubric + pairwise both orders, common.eval.judge).
# First writes each system's greedy responses to data/eval_prompts.jsonl ($OUT/responses/<system>/responses.jsonl).
set -euo pipefail
: "${CONFIG:?set CONFIG=ser/configs/<model>.yaml}"; RUNS=${RUNS:-runs}; MODEL=${MODEL:-$(basename "$CONFIG" .yaml)}
DATASET=${DATASET:-hh}; OVERWRITE=${OVERWRITE:-false}; PY=${PY:-python}
OUT=$RUNS/ser/$MODEL/$DATASET
for system in sft ppo_seed ppo_ser ppo_full; do
  [ -f "$OUT/responses/$system/metrics.json" ] && [ "$OVERWRITE" != true ] && continue
  policy=$OUT/$system; [ "$system" = sft ] || policy=$OUT/$system/policy   # common.train.ppo saves into policy/
  $PY -m common.respond model="$policy" prompts="$OUT/data/eval_prompts.jsonl" template=plain \
    output_dir="$OUT/responses/$system" overwrite="$OVERWRITE"
done
for other in sft ppo_seed ppo_full; do
  $PY -m common.eval.judge --config "$CONFIG" --section judge_eval a="$OUT/responses/ppo_ser/responses.jsonl" \
    b="$OUT/responses/$other/responses.jsonl" name_a=ppo_ser name_b="$other" output_dir="$OUT/judge/ppo_ser_vs_$other" \
    overwrite="$OVERWRITE"
done
