#!/usr/bin/env bash
# Rationales (writer + judge from the recipe), rationale pairs, label pairs, SFT records, prompts, held-out sets.
source "$(dirname "$0")/env.sh"
run_if_needed "$ROOT/data" $PY -m rllr.build_data --config "$CONFIG" --section data tasks="$TASK" \
  output_dir="$ROOT/data" $OW
