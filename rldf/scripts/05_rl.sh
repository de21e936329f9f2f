#!/usr/bin/env bash
# RL from the merged SFT policy against the merged RM. ALGO=ppo|remax overrides rl.algorithm (recorded in the run),
# RL_ENGINE=ours|verl rl.engine (verl starts its own workers, so this stage is not run under $LAUNCH). RL_SEED=<k>
# overrides rl.seed and writes to $OUT/rl_seed<k> instead of $OUT/rl (another RL seed from the same RM).
source "$(dirname "$0")/env.sh"
$PY -m common.train.ppo --config "$CONFIG" --section rl model="$POLICY" reward_models="{path: $(merged rm)}" \
  dataset="$DATA/prompts" output_dir="$OUT/rl${RL_SEED:+_seed$RL_SEED}" ${RL_SEED:+seed=$RL_SEED} \
  ${ALGO:+algorithm=$ALGO} ${RL_ENGINE:+engine=$RL_ENGINE} "${EXTRA[@]}"
