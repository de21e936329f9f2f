#!/usr/bin/env bash
# Fold the SFT and RM LoRA adapters into their bases ($OUT/sft-merged, $OUT/rm-merged); full fine-tunes stay as is.
source "$(dirname "$0")/env.sh"
for stage in sft rm; do
  if [[ -f $OUT/$stage/adapter_config.json ]]; then
    $PY -m common.merge_lora --adapter "$OUT/$stage" --out "$OUT/$stage-merged" "${MERGE_FLAGS[@]}"
  elif [[ -d $OUT/$stage ]]; then
    echo "$OUT/$stage is not a LoRA adapter; later stages use it as is"
  else
    echo "$OUT/$stage was not run; skipped"
  fi
done
