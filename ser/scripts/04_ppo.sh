#!/usr/bin/env bash
# PPO (LoRA r16) against an RM: RM=ser (the loop's final RM, default) | seed (loop 0) | full (100%-label RM).
set -euo pipefail
: "${CONFIG:?set CONFIG=ser/configs/<model>.yaml}"; RUNS=${RUNS:-runs}; MODEL=${MODEL:-$(basename "$CONFIG" .yaml)}
DATASET=${DATASET:-hh}; OVERWRITE=${OVERWRITE:-false}; PY=${PY:-python}; RM=${RM:-ser}
OUT=$RUNS/ser/$MODEL/$DATASET
case "$RM" in
  ser)  ADAPTER=$($PY -c "import json;print(json.load(open('$OUT/ser_loop/metrics.json'))['final_model'])") ;;
  seed) ADAPTER=$OUT/ser_loop/loop_0/model ;;
  full) ADAPTER=$OUT/ser_loop/baseline_full/model ;;
  *) echo "RM must be ser, seed or full" >&2; exit 2 ;;
esac
$PY -m common.train.ppo --config "$CONFIG" --section rl model="$OUT/sft" dataset="$OUT/data/prompts.jsonl" \
  "reward_models=[{name: ser_rm, path: $OUT/sft, adapter: $ADAPTER, template: plain, max_length: 512}]" \
  output_dir="$OUT/ppo_$RM" overwrite="$OVERWRITE"
