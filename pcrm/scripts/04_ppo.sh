#!/usr/bin/env bash
# PPO from the SFT policy against each PCRM RM (prompts: AlpacaFarm unlabeled / TL;DR; tiny: the SST-2 prompt).
# RL_ENGINE=ours|verl overrides rl_<task>.engine (verl starts its own workers, so PPO is not run under $LAUNCH).
source "$(dirname "$0")/env.sh"
run_if_needed "$ROOT/data_prompts" $PY -m pcrm.data --config "$CONFIG" --section "data_prompts_$TASK" \
  output_dir="$ROOT/data_prompts" $OW
for v in $POLICY_VARIANTS; do
  run_if_needed "$ROOT/ppo_$v" $PY -m pcrm.ppo --config "$CONFIG" --section "rl_$TASK" model="$ROOT/sft" \
    dataset="$ROOT/data_prompts/train.jsonl" reward_model="$ROOT/rm/$v/rm" output_dir="$ROOT/ppo_$v" \
    ${RL_ENGINE:+engine=$RL_ENGINE} $OW
done
