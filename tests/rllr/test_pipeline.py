"""The one-process driver (rllr.pipeline): stages connect on the shipped tiny data, reruns skip, --set parsing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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


def test_pipeline_runs_every_stage_in_order_then_skips_finished_ones(tiny_llama, minilm, tmp_path):
    root = tmp_path / "rllr" / "tiny" / "sst2+rte"
    # RM_label on its own backbone (a whole fine-tuned MiniLM), RM_rat a LoRA on the SFT model as in the paper:
    # PPO must read each the way it was trained
    recipe = yaml.safe_load(Path("rllr/configs/tiny.yaml").read_text())
    recipe["rm_label"] = {**recipe["rm_label"], "model_name_or_path": minilm, "template": "plain",
                          "use_lora": False, "max_length": 128}
    recipe["rl"]["value_model"] = "policy"  # a BERT critic cannot read the policy's tokens
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(recipe))
    sets = {"data": {"train_limit": "6", "test_limit": "3"}, "rl": {"total_steps": "1"},
            "predict": {"max_new_tokens": "4"}}
    log = run_task(str(config), "sst2,rte", root, ["rllr"], False, sets)
    stages = [row["stage"] for row in log]
    assert stages == ["data", "sft_wrat", "merge sft_wrat_merged", "rm_rat", "rm_label", "sft_label",
                      "merge sft_label_merged", "ppo rllr", "merge ppo_rllr/policy_merged", "predict sft_wrat",
                      "predict sft_label", "predict ppo_rllr", "rewardbench rm_rat", "rewardbench rm_label"]
    # each stage read its predecessor's output: PPO starts from the merged SFT model and scores with RM_label only
    ppo_cfg = yaml.safe_load((root / "ppo_rllr" / "config.yaml").read_text())
    assert ppo_cfg["model"] == str(root / "sft_wrat_merged") and ppo_cfg["total_steps"] == 1
    assert ppo_cfg["reward_models"] == [{"path": str(root / "rm_label"), "template": "plain", "max_length": 128,
                                         "name": "label"}]
    assert ppo_cfg["rat_rm"] == {"path": str(root / "sft_wrat_merged"), "adapter": str(root / "rm_rat"),
                                 "template": "tokenizer", "max_length": 256}
    rm_cfg = yaml.safe_load((root / "rm_label" / "config.yaml").read_text())
    assert rm_cfg["model_name_or_path"] == minilm and not (root / "rm_label" / "adapter_config.json").exists()
    pred_cfg = yaml.safe_load((root / "predict" / "ppo_rllr" / "config.yaml").read_text())
    assert pred_cfg["model"] == str(root / "ppo_rllr" / "policy_merged")
    result = json.loads((root / "comparison.json").read_text())
    assert result["tasks"] == ["rte", "sst2"]  # one model for the task group, scored per task
    assert result["mean_accuracy"]["ppo_rllr"] is not None and result["mean_accuracy"]["ppo_rlhf"] is None
    assert (root / "rm_label" / "tau.json").is_file()
    assert run_task(str(config), "sst2,rte", root, ["rllr"], False, sets) == []


def test_stage_scripts_start_each_rm_where_the_recipe_says(tmp_path):
    recipe = yaml.safe_load(Path("rllr/configs/tiny.yaml").read_text())
    recipe["rm_label"] = {**recipe["rm_label"], "model_name_or_path": "embedded:all-minilm-l6-v2"}
    config = tmp_path / "mini.yaml"
    config.write_text(yaml.safe_dump(recipe))
    env = {"PATH": "/usr/bin:/bin", "CONFIG": str(config), "TASK": "sst2,rte", "RUNS": str(tmp_path), "PY": sys.executable}
    done = subprocess.run(["bash", "-c", "source rllr/scripts/env.sh; rm_start rm_label; rm_start rm_rat"], env=env,
                          capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["embedded:all-minilm-l6-v2", f"{tmp_path}/rllr/mini/sst2+rte/sft_wrat_merged"]
