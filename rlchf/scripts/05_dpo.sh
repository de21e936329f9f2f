#!/usr/bin/env bash
# Stage 5: one DPO run per training row in $ROWS (e.g. "gold swf_borda swf_schulze judge_j00"), evaluated on the
# held-out gold pairs. A row without pairs (every top tied) is skipped with a message. LAUNCH starts the trainer
# (e.g. "accelerate launch --num_processes 8"; default $PY). DPO_SEED=<k> overrides dpo.seed and writes to
# $OUT/dpo/<row>_seed<k> instead (another DPO seed on the same pairs: make rlchf-fidelity's RLCHF_DPO_SEEDS).
set -euo pipefail
: "${CONFIG:?set CONFIG}" "${OUT:?set OUT}" "${ROWS:?set ROWS to the training rows}"
PY=${PY:-python}
LAUNCH=${LAUNCH:-$PY}
for row in $ROWS; do
  pairs="$OUT/aggregate/pairs/$row.jsonl"
  if [ ! -s "$pairs" ]; then echo "rlchf: no pairs for row $row ($pairs); skipped"; continue; fi
  $LAUNCH -m common.train.dpo --config "$CONFIG" --section dpo dataset="$pairs" \
    eval_dataset="$OUT/candidates/heldout.jsonl" output_dir="$OUT/dpo/$row${DPO_SEED:+_seed$DPO_SEED}" \
    ${DPO_SEED:+seed=$DPO_SEED} overwrite="${OVERWRITE:-false}"
done
