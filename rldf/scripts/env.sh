# Sourced by every rldf stage script. Inputs (environment): MODEL (run name: llama2, chatglm3, qwen1.5, baichuan2,
# tiny, fidelity), CONFIG (default rldf/configs/$MODEL.yaml), MODE (self|teacher, default self), RUNS (default runs),
# OVERWRITE=true to replace finished runs, POLICY (RL init; default the merged SFT model), TRUST_REMOTE_CODE=true to
# run a model's own hub code, PY (python), LAUNCH (starts the RM and SFT trainers: "accelerate launch
# --num_processes 8", a deepspeed hostfile launch...; default $PY), RL_ENGINE (ours | verl: the RL stage's engine;
# default the recipe's rl.engine).
set -euo pipefail
PY=${PY:-python}
LAUNCH=${LAUNCH:-$PY}
RUNS=${RUNS:-runs}
MODEL=${MODEL:?set MODEL to the run name, e.g. MODEL=llama2}
CONFIG=${CONFIG:-rldf/configs/$MODEL.yaml}
MODE=${MODE:-self}
OUT=$RUNS/rldf/$MODEL
DATA=$OUT/data
EXTRA=()
MERGE_FLAGS=()
if [[ ${OVERWRITE:-false} == true ]]; then EXTRA+=(overwrite=true); MERGE_FLAGS+=(--overwrite); fi
if [[ ${TRUST_REMOTE_CODE:-false} == true ]]; then
  EXTRA+=(trust_remote_code=true)
  MERGE_FLAGS+=(--trust-remote-code)
else  # a recipe whose model runs its own hub code names it in `remote_code`: stop before any stage starts
  REMOTE=$($PY -c "import yaml; c=yaml.safe_load(open('$CONFIG')); print(c.get('remote_code') or '')")
  if [[ -n $REMOTE ]]; then
    echo "error: $REMOTE runs its own code from the hub; rerun with TRUST_REMOTE_CODE=true to allow it" >&2
    exit 2
  fi
fi
case $MODE in self|teacher) ;; *) echo "error: MODE=$MODE; use MODE=self or MODE=teacher" >&2; exit 2 ;; esac

# The model a LoRA stage produced: its merged folder when 04_merge.sh made one, else the run folder itself.
merged() { if [[ -d $OUT/$1-merged ]]; then echo "$OUT/$1-merged"; else echo "$OUT/$1"; fi; }
# The RL init (and the "before" model): the merged SFT policy, unless POLICY names another (fidelity skips SFT).
POLICY=${POLICY:-$(merged sft)}
