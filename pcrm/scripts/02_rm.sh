#!/usr/bin/env bash
# Preference data, then one RM per variant (δ* per pair, PCRM loss) and the variant table ($ROOT/rm/variants.md).
source "$(dirname "$0")/env.sh"
run_if_needed "$ROOT/data_pref" $PY -m pcrm.data --config "$CONFIG" --section "data_pref_$TASK" \
  output_dir="$ROOT/data_pref" $OW
# The RM backbone: the recipe's variants_<task>.rm_init (sft: this task's SFT model, $ROOT/sft, as upstream [CODE];
# config: rm.model_name_or_path); RM_MODEL (optional) replaces either.
# Under $LAUNCH every process runs the driver and the variants' RM trainers share the processes.
$LAUNCH -m pcrm.variants --config "$CONFIG" --section "variants_$TASK" data_dir="$ROOT/data_pref" \
  output_dir="$ROOT/rm" variants="$(echo $VARIANTS | tr ' ' ',')" sft_model="$ROOT/sft" \
  ${RM_MODEL:+rm_model=$RM_MODEL} $OW
