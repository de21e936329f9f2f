# Sourced by every PCRM stage script: CONFIG (recipe), RUNS (runs root), MODEL (run-folder name), TASK
# (dialogue | tldr), VARIANTS (RM variants), OVERWRITE (true replaces finished runs), PY (python), LAUNCH (starts the
# SFT, RM-variant and DPO trainers, e.g. "accelerate launch --num_processes 8"; default $PY), RL_ENGINE (ours | verl:
# the PPO stage's engine; default the recipe's rl_<task>.engine).
set -euo pipefail
: "${CONFIG:?set CONFIG to a recipe, e.g. pcrm/configs/tiny.yaml}"
RUNS=${RUNS:-runs}
MODEL=${MODEL:-$(basename "$CONFIG" .yaml)}
TASK=${TASK:-dialogue}
VARIANTS=${VARIANTS:-${VARIANT:-baseline len_rat cos_sim random fixed}}
PY=${PY:-python}
LAUNCH=${LAUNCH:-$PY}
OW=$([ "${OVERWRITE:-false}" = true ] && echo "overwrite=true" || true)
ROOT=$RUNS/pcrm/$MODEL/$TASK
# Hub access follows the caller's HF_HUB_OFFLINE: full-scale runs download datasets and models; the tiny and
# fidelity make targets set HF_HUB_OFFLINE=1 themselves.
# The paper ran DPO and PPO for baseline, len_rat and cos_sim only [CODE]; POLICY_VARIANTS narrows further
POLICY_VARIANTS=${POLICY_VARIANTS:-$(for v in $VARIANTS; do case $v in baseline|len_rat|cos_sim) echo -n "$v ";; esac; done)}
# run_if_needed DIR CMD...: skip a stage whose run folder already finished (metrics.json), unless OVERWRITE=true
run_if_needed() {
  local dir=$1; shift
  if [ -f "$dir/metrics.json" ] && [ -z "$OW" ]; then echo "skip (finished): $dir"; else "$@"; fi
}
