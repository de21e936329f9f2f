"""The one-process driver (rllr.pipeline): stages connect on the shipped tiny data, reruns skip, --set parsing."""

from __future__ import annotations

import json

import pytest
import yaml

from common.config import UserError
from rllr.pipeline import run_task, split_sets
from rllr.tasks import load_examples

TINY_GLUE = "common/tiny_data/glue"


def test_set_overrides_split_into_sections_and_bad_ones_fail():
    assert split_sets(["rl.total_steps=8", "rl.tau=1.5", "data.test_limit=4"]) == {
        "rl": {"total_steps": "8", "tau": "1.5"}, "data": {"test_limit": "4"}}
    with pytest.raises(UserError, match="SECTION.KEY=VALUE"):
        split_sets(["total_steps=8"])


def test_shipped_tiny_glue_loads_with_the_task_label_maps():
    sst2 = load_examples("sst2", "train", "local", TINY_GLUE)
    rte = load_examples("rte", "test", "local", TINY_GLUE)
    assert sst2[0]["label"] == "positive"  # "the script is gripping and charming . \t1"
    assert sst2[0]["fields"]["sentence"].startswith("the script is gripping")
    assert {e["label"] for e in rte} == {"entailment", "not_entailment"}


def test_pipeline_runs_every_stage_in_order_then_skips_finished_ones(tiny_llama, tmp_path):
    root = tmp_path / "rllr" / "tiny" / "sst2+rte"
    sets = {"data": {"train_limit": "6", "test_limit": "3"}, "rl": {"total_steps": "1"},
            "predict": {"max_new_tokens": "4"}}
    log = run_task("rllr/configs/tiny.yaml", "sst2,rte", root, ["rllr"], False, sets)
    stages = [row["stage"] for row in log]
    assert stages == ["data", "sft_wrat", "merge sft_wrat_merged", "rm_rat", "rm_label", "sft_label",
                      "merge sft_label_merged", "ppo rllr", "merge ppo_rllr/policy_merged", "predict sft_wrat",
                      "predict sft_label", "predict ppo_rllr", "rewardbench rm_rat", "rewardbench rm_label"]
    # each stage read its predecessor's output: PPO starts from the merged SFT model and scores with RM_label only
    ppo_cfg = yaml.safe_load((root / "ppo_rllr" / "config.yaml").read_text())
    assert ppo_cfg["model"] == str(root / "sft_wrat_merged") and ppo_cfg["total_steps"] == 1
    assert [rm["adapter"] for rm in ppo_cfg["reward_models"]] == [str(root / "rm_label")]
    pred_cfg = yaml.safe_load((root / "predict" / "ppo_rllr" / "config.yaml").read_text())
    assert pred_cfg["model"] == str(root / "ppo_rllr" / "policy_merged")
    result = json.loads((root / "comparison.json").read_text())
    assert result["tasks"] == ["rte", "sst2"]  # one model for the task group, scored per task
    assert result["mean_accuracy"]["ppo_rllr"] is not None and result["mean_accuracy"]["ppo_rlhf"] is None
    assert (root / "rm_label" / "tau.json").is_file()
    assert run_task("rllr/configs/tiny.yaml", "sst2,rte", root, ["rllr"], False, sets) == []
