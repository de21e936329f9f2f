#!/usr/bin/env bash
# PPO from the merged SFT-with-rationales model, once per mode (MODES="rlhf rllr rllr_mixed"); the policy adapter is
# merged afterwards for prediction. rllr_mixed takes τ from the recipe, else from rm_label/tau.json. RL_ENGINE=ours|verl
# overrides rl.engine (verl starts its own workers, so PPO is not run under $LAUNCH). The RMs are named by their run
# folders: rllr.ppo reads each as it was trained (LoRA on the SFT model, or a whole model of another backbone).
source "$(dirname "$0")/env.sh"
BASE="$ROOT/sft_wrat_merged"
for MODE in $MODES; do
  run_if_needed "$ROOT/ppo_$MODE" $PY -m rllr.ppo --config "$CONFIG" --section rl mode="$MODE" model="$BASE" \
    dataset="$ROOT/data/prompts.jsonl" output_dir="$ROOT/ppo_$MODE" tau_file="$ROOT/rm_label/tau.json" \
    label_rm="{path: '$ROOT/rm_label'}" rat_rm="{path: '$ROOT/rm_rat'}" \
    ${RL_ENGINE:+engine=$RL_ENGINE} $TR $OW
  merge_if_needed "$ROOT/ppo_$MODE/policy" "$ROOT/ppo_$MODE/policy_merged" "$BASE"
done
