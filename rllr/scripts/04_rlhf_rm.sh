#!/usr/bin/env bash
# RM_rat (the RLHF baseline RM) on rationale-sensitive pairs; its eval set is the held-out *label* pairs, so its
# eval_accuracy says how well a rationale RM tells the right label from a wrong one. RM_LOSS=token: upstream's loss.
source "$(dirname "$0")/env.sh"
START=$(rm_start rm_rat)
run_if_needed "$ROOT/rm_rat" $LAUNCH -m rllr.rm --config "$CONFIG" --section rm_rat \
  model_name_or_path="$START" dataset="$ROOT/data/rationale_pairs.jsonl" \
  eval_dataset="$ROOT/data/label_pairs_test.jsonl" output_dir="$ROOT/rm_rat" ${RM_LOSS:+loss=$RM_LOSS} $TR $OW
