#!/usr/bin/env bash
# SFT on the preferred answers: writes the policy-side data, then common.train.sft. Env: CONFIG, RUNS, MODEL, DATASET, OVERWRITE.
set -euo pipefail
: "${CONFIG:?set CONFIG=ser/configs/<model>.yaml}"; RUNS=${RUNS:-runs}; MODEL=${MODEL:-$(basename "$CONFIG" .yaml)}
DATASET=${DATASET:-hh}; OVERWRITE=${OVERWRITE:-false}; PY=${PY:-python}
OUT=$RUNS/ser/$MODEL/$DATASET
$PY -m ser.prepare_data --config "$CONFIG" --out "$OUT/data" dataset="$DATASET"
$PY -m common.train.sft --config "$CONFIG" --section sft dataset="$OUT/data/sft.jsonl" output_dir="$OUT/sft" overwrite="$OVERWRITE"
