#!/usr/bin/env bash
# Seed-only RM (the SER loop's loop 0, as a standalone stage evaluated on the held-out pairs).
set -euo pipefail
: "${CONFIG:?set CONFIG=ser/configs/<model>.yaml}"; RUNS=${RUNS:-runs}; MODEL=${MODEL:-$(basename "$CONFIG" .yaml)}
DATASET=${DATASET:-hh}; OVERWRITE=${OVERWRITE:-false}; PY=${PY:-python}
OUT=$RUNS/ser/$MODEL/$DATASET
$PY -m common.train.rm --config "$CONFIG" --section rm model_name_or_path="$OUT/sft" \
  dataset="$OUT/data/seed_pairs.jsonl" eval_dataset="$OUT/data/heldout_pairs.jsonl" output_dir="$OUT/rm_seed" \
  overwrite="$OVERWRITE"
