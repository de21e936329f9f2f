#!/usr/bin/env bash
# Greedy answers of SFT and the three PPO policies to the held-out prompts (common.respond), then the judge
# (common.eval.judge: 0-5 rubric and/or pairwise both orders): the SER-RM policy against each of the others;
# RewardBench for the loop's three RMs, scored as the loop scores them (ser.rewardbench; recipe section rewardbench:
# the hub set; tiny: the shipped sample; data '' = off).
source "$(dirname "$0")/env.sh"
for system in sft ppo_seed ppo_ser ppo_full; do
  policy=$OUT/$system; [ "$system" = sft ] || policy=$OUT/$system/policy   # common.train.ppo saves into policy/
  run_if_needed "$OUT/responses/$system" $PY -m common.respond --config "$CONFIG" --section respond model="$policy" \
    prompts="$OUT/data/eval_prompts.jsonl" output_dir="$OUT/responses/$system" $OW
done
for other in sft ppo_seed ppo_full; do
  run_if_needed "$OUT/judge/ppo_ser_vs_$other" $PY -m common.eval.judge --config "$CONFIG" --section judge_eval \
    a="$OUT/responses/ppo_ser/responses.jsonl" b="$OUT/responses/$other/responses.jsonl" name_a=ppo_ser \
    name_b="$other" output_dir="$OUT/judge/ppo_ser_vs_$other" $OW
done
for rm in seed ser full; do
  run_if_needed "$OUT/rewardbench/$rm" $PY -m ser.rewardbench --config "$CONFIG" --section rewardbench \
    ser_loop="$OUT/ser_loop" reward_from="$rm" output_dir="$OUT/rewardbench/$rm" $OW
done
$PY -m ser.summary "$OUT"
