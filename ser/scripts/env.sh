# Sourced by every SER stage script: CONFIG (recipe), RUNS (runs root), MODEL (run-folder name), DATASET
# (hh | ultrafeedback | summarize | stackexchange, or a local set the recipe names), OVERWRITE (true replaces
# finished runs), PY (python), RL_ENGINE (ours | verl: the PPO stages' engine; default the recipe's rl.engine).
# Every stage of one pipeline lives in $OUT = $RUNS/ser/$MODEL/$DATASET.
set -euo pipefail
: "${CONFIG:?set CONFIG to a recipe, e.g. ser/configs/llama3.yaml}"
RUNS=${RUNS:-runs}
MODEL=${MODEL:-$(basename "$CONFIG" .yaml)}
DATASET=${DATASET:-hh}
PY=${PY:-python}
# LAUNCH starts the SFT stage (e.g. "accelerate launch --config_file multi_node.yaml"); RM_LAUNCH, when set, starts
# every RM the loop trains the same way (ser.rm_launcher). Data, loop driver, scoring and PPO run as one process.
LAUNCH=${LAUNCH:-$PY}
OW=$([ "${OVERWRITE:-false}" = true ] && echo "overwrite=true" || true)
OUT=$RUNS/ser/$MODEL/$DATASET
# run_if_needed DIR CMD...: skip a stage whose run folder already finished (metrics.json), unless OVERWRITE=true
run_if_needed() {
  local dir=$1; shift
  if [ -f "$dir/metrics.json" ] && [ -z "$OW" ]; then echo "skip (finished): $dir"; else "$@"; fi
}
