#!/usr/bin/env bash
# The SER loop (resumable: rerun after a crash continues at the interrupted loop). Extra key=value args pass through.
set -euo pipefail
: "${CONFIG:?set CONFIG=ser/configs/<model>.yaml}"; RUNS=${RUNS:-runs}; MODEL=${MODEL:-$(basename "$CONFIG" .yaml)}
OVERWRITE=${OVERWRITE:-false}; PY=${PY:-python}
if [ "$MODEL" = tiny ]; then
  $PY -m ser.loop --config "$CONFIG" --section ser output_dir="$RUNS/ser/tiny/ser_loop" \
    overwrite="$OVERWRITE" "$@"
  exit 0
fi
DATASET=${DATASET:-hh}; OUT=$RUNS/ser/$MODEL/$DATASET
$PY -m ser.loop --config "$CONFIG" --section ser dataset="$DATASET" output_dir="$OUT/ser_loop" \
  rm_model="$OUT/sft" overwrite="$OVERWRITE" "$@"
