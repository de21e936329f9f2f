#!/usr/bin/env bash
# PPO (LoRA r 16) from the SFT model against one of the loop's RMs: RM=ser (default) | seed | full.
# RL_ENGINE=ours|verl overrides rl.engine (verl starts its own workers, so PPO is not run under $LAUNCH).
source "$(dirname "$0")/env.sh"
RM=${RM:-ser}
run_if_needed "$OUT/ppo_$RM" $PY -m ser.ppo --config "$CONFIG" --section rl model="$OUT/sft" \
  dataset="$OUT/data/prompts.jsonl" ser_loop="$OUT/ser_loop" reward_from="$RM" output_dir="$OUT/ppo_$RM" \
  ${RL_ENGINE:+engine=$RL_ENGINE} $OW "$@"
