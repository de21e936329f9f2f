#!/usr/bin/env bash
# Win rate vs SFT by a judge (both orders) for every DPO and PPO policy; RewardBench for every RM variant and DPO
# policy (recipe section rewardbench: the hub set; tiny: the shipped sample; data '' = off); the RM table is
# $ROOT/rm/variants.md.
source "$(dirname "$0")/env.sh"
prompts="$ROOT/data_pref/eval.jsonl"
respond() {  # respond NAME MODEL
  run_if_needed "$ROOT/eval/responses_$1" $PY -m common.respond --config "$CONFIG" --section "respond_$TASK" \
    model="$2" prompts="$prompts" output_dir="$ROOT/eval/responses_$1" $OW
}
respond sft "$ROOT/sft"
for v in $POLICY_VARIANTS; do
  for policy in "dpo_$v:$ROOT/dpo_$v" "ppo_$v:$ROOT/ppo_$v/policy"; do
    name=${policy%%:*}; respond "$name" "${policy#*:}"
    run_if_needed "$ROOT/eval/judge_$name" $PY -m common.eval.judge --config "$CONFIG" --section "judge_$TASK" \
      a="$ROOT/eval/responses_$name/responses.jsonl" b="$ROOT/eval/responses_sft/responses.jsonl" \
      name_a="$name" name_b=sft output_dir="$ROOT/eval/judge_$name" $OW
  done
done
rewardbench() {  # rewardbench NAME MODEL [dpo_ref=auto]
  run_if_needed "$ROOT/eval/rewardbench_$1" $PY -m common.eval.rewardbench --config "$CONFIG" --section rewardbench \
    model="$2" output_dir="$ROOT/eval/rewardbench_$1" "${@:3}" $OW
}
for v in $VARIANTS; do rewardbench "rm_$v" "$ROOT/rm/$v/rm"; done
for v in $POLICY_VARIANTS; do rewardbench "dpo_$v" "$ROOT/dpo_$v" dpo_ref=auto; done
cat "$ROOT/rm/variants.md"
