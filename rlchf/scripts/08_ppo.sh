#!/usr/bin/env bash
# Stage 8 (PPO row, part 2): PPO from the recipe's policy against each row's reward model ($OUT/rm/<row>, a LoRA
# adapter or a whole model) on the ranked prompts (candidates.jsonl) -> $OUT/ppo/<row>/policy. RL_ENGINE=ours|verl
# overrides rl.engine (verl starts its own workers, so this stage is not run under $LAUNCH).
set -euo pipefail
: "${CONFIG:?set CONFIG}" "${OUT:?set OUT}"
PY=${PY:-python}
for row in ${PPO_ROWS:-}; do
  rm="$OUT/rm/$row"
  if [ ! -f "$rm/metrics.json" ]; then echo "rlchf: no reward model for row $row ($rm); skipped"; continue; fi
  $PY -m common.train.ppo --config "$CONFIG" --section rl dataset="$OUT/candidates/candidates.jsonl" \
    reward_models="[{name: rm_$row, path: $rm}]" output_dir="$OUT/ppo/$row" ${RL_ENGINE:+engine=$RL_ENGINE} \
    overwrite="${OVERWRITE:-false}"
done
