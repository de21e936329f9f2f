#!/usr/bin/env bash
# RM_label (RLLR) on label-sensitive pairs, evaluated on the held-out label pairs; then the τ proposal from its scores.
source "$(dirname "$0")/env.sh"
START=$(rm_start rm_label)
run_if_needed "$ROOT/rm_label" $LAUNCH -m rllr.rm --config "$CONFIG" --section rm_label \
  model_name_or_path="$START" dataset="$ROOT/data/label_pairs.jsonl" \
  eval_dataset="$ROOT/data/label_pairs_test.jsonl" output_dir="$ROOT/rm_label" ${RM_LOSS:+loss=$RM_LOSS} $TR $OW
$PY -m rllr.tau --scores "$ROOT/rm_label/eval_scores.jsonl" --output "$ROOT/rm_label/tau.json"
