# Sourced by every RLLR stage script. CONFIG (recipe), RUNS (runs root), MODEL (run-folder name), TASK (one task, or
# several joined by commas to train one model on all of them, e.g. sst2,rte), OVERWRITE (true replaces finished
# runs), TRUST_REMOTE_CODE (true runs a model's own hub code; required by recipes with `remote_code`), PY (python), LAUNCH (starts the SFT and RM trainers, e.g. "accelerate launch --num_processes 8"; default
# $PY), RL_ENGINE (ours | verl: the PPO stage's engine; default the recipe's rl.engine). Runs go to
# $RUNS/rllr/$MODEL/<task>/.
set -euo pipefail
: "${CONFIG:?set CONFIG to a recipe, e.g. rllr/configs/tiny.yaml}"
: "${TASK:?set TASK to a task name (sst2, mnli...) or a comma-joined group (sst2,rte)}"
RUNS=${RUNS:-runs}
MODEL=${MODEL:-$(basename "$CONFIG" .yaml)}
PY=${PY:-python}
LAUNCH=${LAUNCH:-$PY}
OW=$([ "${OVERWRITE:-false}" = true ] && echo "overwrite=true" || true)
MW=$([ "${OVERWRITE:-false}" = true ] && echo "--overwrite" || true)
ROOT=$RUNS/rllr/$MODEL/${TASK//,/+}
MODES=${MODES:-rlhf rllr rllr_mixed}
# Hub access follows the caller's HF_HUB_OFFLINE: full-scale runs download datasets and models; the tiny and
# fidelity make targets set HF_HUB_OFFLINE=1 themselves.
# Remote code (ChatGLM3, Baichuan2: the recipe's top-level `remote_code` names the hub model): its stages get
# trust_remote_code=true (TR) and the merges --trust-remote-code (TRC) only when the caller opts in with
# TRUST_REMOTE_CODE=true; without it the run stops here, before any stage (and any paid API call) starts.
REMOTE=$($PY -c "import yaml; c=yaml.safe_load(open('$CONFIG')); print(c.get('remote_code') or '')")
if [ -n "$REMOTE" ] && [ "${TRUST_REMOTE_CODE:-false}" != true ]; then
  echo "error: $REMOTE runs its own code from the hub; rerun with TRUST_REMOTE_CODE=true to allow it" >&2
  exit 2
fi
TR=$([ "${TRUST_REMOTE_CODE:-false}" = true ] && echo "trust_remote_code=true" || true)
TRC=$([ "${TRUST_REMOTE_CODE:-false}" = true ] && echo "--trust-remote-code" || true)
# run_if_needed DIR CMD...: skip a stage whose run folder already finished (metrics.json), unless OVERWRITE=true
run_if_needed() {
  local dir=$1; shift
  if [ -f "$dir/metrics.json" ] && [ -z "$OW" ]; then echo "skip (finished): $dir"; else "$@"; fi
}
# merge_if_needed ADAPTER OUT [BASE]: fold a LoRA adapter into its base unless OUT exists (OVERWRITE=true redoes it)
merge_if_needed() {
  if [ -d "$2" ] && [ -z "$OW" ]; then echo "skip (merged): $2"; else
    $PY -m common.merge_lora --adapter "$1" --out "$2" ${3:+--base "$3"} $TRC $MW; fi
}
# rm_start SECTION: the model an RM section fine-tunes (rllr.rm.start_model): the merged SFT-with-rationales model
# unless the recipe's section names another backbone
rm_start() {
  $PY -c "import sys; from common.config import read_yaml; from rllr.rm import start_model; \
print(start_model(read_yaml(sys.argv[1]), sys.argv[2], sys.argv[3]))" "$CONFIG" "$1" "$ROOT/sft_wrat_merged"
}
