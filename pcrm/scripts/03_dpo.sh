#!/usr/bin/env bash
# PCRM-DPO: δ* per pair with the DPO scripts' β (section dpo_prior_<variant>_<task>), then DPO with the upper bound.
source "$(dirname "$0")/env.sh"
for v in $POLICY_VARIANTS; do
  data="$ROOT/data_pref/train.jsonl"; term=none
  if [ "$v" != baseline ]; then
    run_if_needed "$ROOT/dpo_prior_$v" $PY -m pcrm.prior --config "$CONFIG" --section "dpo_prior_${v}_$TASK" \
      task="$TASK" input="$data" output_dir="$ROOT/dpo_prior_$v" $OW
    data="$ROOT/dpo_prior_$v/pairs.jsonl"; term=upper_bound
  fi
  run_if_needed "$ROOT/dpo_$v" $LAUNCH -m common.train.dpo --config "$CONFIG" --section "dpo_$TASK" \
    model_name_or_path="$ROOT/sft" dataset="$data" pair_term=$term output_dir="$ROOT/dpo_$v" $OW
done
