#!/usr/bin/env bash
# RL from the merged SFT policy against the merged RM. ALGO=ppo|remax overrides rl.algorithm (recorded in the run),
# RL_ENGINE=ours|verl rl.engine (verl starts its own workers, so this stage is not run under $LAUNCH).
source "$(dirname "$0")/env.sh"
$PY -m common.train.ppo --config "$CONFIG" --section rl model="$POLICY" reward_models="{path: $(merged rm)}" \
  dataset="$DATA/prompts" output_dir="$OUT/rl" ${ALGO:+algorithm=$ALGO} ${RL_ENGINE:+engine=$RL_ENGINE} "${EXTRA[@]}"
