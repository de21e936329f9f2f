#!/usr/bin/env bash
# The SER loop: loop 0 = the seed-only RM, self-labelling loops, the 100%-label RM, per-loop table and plot.
# Resumable: a rerun after a crash continues at the interrupted loop. Extra key=value args pass through (ser section).
source "$(dirname "$0")/env.sh"
# the LM reward models start from the SFT run (ser.rm_model; the frozen-encoder backend keeps its encoder), and
# pool_source generate samples its new responses from it
launch=(); [ -n "${RM_LAUNCH:-}" ] && launch=("rm_launcher=$RM_LAUNCH")
run_if_needed "$OUT/ser_loop" $PY -m ser.loop --config "$CONFIG" --section ser dataset="$DATASET" \
  output_dir="$OUT/ser_loop" rm_model="$OUT/sft" "${launch[@]}" $OW "$@"
