#!/usr/bin/env bash
# Stage 9: BBQ and held-out preference accuracy for the base and every trained row -> $OUT/eval/results.md.
set -euo pipefail
: "${CONFIG:?set CONFIG}" "${OUT:?set OUT}"
PY=${PY:-python}
$PY -m rlchf.evaluate --config "$CONFIG" --section evaluate train_root="$OUT" heldout="$OUT/candidates/heldout.jsonl" \
  output_dir="$OUT/eval" overwrite="${OVERWRITE:-false}"
# RewardBench (recipe section rewardbench: the hub set; tiny: the shipped sample; data '' = off) for every trained
# reward model and DPO policy (a DPO policy as an implicit RM against its own reference: dpo_ref=auto).
for run in "$OUT"/rm/*/ "$OUT"/dpo/*/; do
  run=${run%/}
  [ -f "$run/metrics.json" ] || continue
  kind=$(basename "$(dirname "$run")"); dest="$OUT/rewardbench/${kind}_$(basename "$run")"
  if [ -f "$dest/metrics.json" ] && [ "${OVERWRITE:-false}" != true ]; then echo "skip (finished): $dest"; continue; fi
  $PY -m common.eval.rewardbench --config "$CONFIG" --section rewardbench model="$run" output_dir="$dest" \
    $([ "$kind" = dpo ] && echo dpo_ref=auto) overwrite="${OVERWRITE:-false}"
done
