"""RewardBench in every paper's evaluation stage: each recipe names its data (hub set, the shipped sample for tiny,
'' = off for the CPU fidelity runs), each eval stage script runs the step, a tiny recipe scores the shipped sample and
the leaderboard lists the result; ``dpo_ref: auto`` finds a DPO run's own reference."""

import json
import re
from pathlib import Path

import pytest
import torch
import yaml

from common.config import ConfigError, load_config
from common.eval.rewardbench import HUB_ID, SECTION_KEYS, RewardBenchConfig, main
from common.report import main as report_main

ROOT = Path(__file__).resolve().parents[2]
PAPERS = ("rldf", "rllr", "rlchf", "pcrm", "ser")
RECIPES = sorted(p for paper in PAPERS for p in (ROOT / paper / "configs").glob("*.yaml")
                 if p.stem != "policy_fidelity")  # SER's policy experiment: PPO settings only, no eval stage
SAMPLE = "common/tiny_data/rewardbench"
# the evaluation stage of each paper and the entry point its RewardBench step calls
EVAL_STAGES = {"rldf/scripts/06_predict.sh": "common.eval.rewardbench", "rllr/scripts/07_predict.sh":
               "common.eval.rewardbench", "rlchf/scripts/09_evaluate.sh": "common.eval.rewardbench",
               "pcrm/scripts/05_eval.sh": "common.eval.rewardbench", "ser/scripts/04_eval.sh": "ser.rewardbench"}


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: f"{p.parent.parent.name}/{p.stem}")
def test_every_recipe_names_its_rewardbench_data(path):
    from ser.rewardbench import SERRewardBenchConfig

    cls, fill = (SERRewardBenchConfig, {"ser_loop": "loop"}) if path.parent.parent.name == "ser" else \
        (RewardBenchConfig, {})
    cfg = load_config(cls, path, "rewardbench", {"model": "rm", "output_dir": "out", "device": "cpu", **fill})
    expected = {"tiny": SAMPLE, "fidelity": ""}.get(path.stem, HUB_ID)
    assert cfg.data == expected
    if cfg.data == SAMPLE:
        assert (ROOT / SAMPLE / "filtered.jsonl.gz").is_file() and cfg.limit_per_subset == 1


@pytest.mark.parametrize("script", sorted(EVAL_STAGES))
def test_every_eval_stage_script_runs_the_rewardbench_step(script):
    text = (ROOT / script).read_text()
    assert re.search(rf'-m {re.escape(EVAL_STAGES[script])} --config "\$CONFIG" --section rewardbench', text), script


def test_rllr_one_process_driver_runs_the_step_for_both_rms():
    text = (ROOT / "rllr" / "pipeline.py").read_text()
    assert 'RewardBenchConfig, "rewardbench"' in text and 'for name in ("rm_rat", "rm_label"):' in text


def tiny_rm_run(tiny_llama, folder: Path) -> Path:
    """A tiny random RM saved as a common.train.rm run folder (config.yaml, metrics.json)."""
    from common.models import load_reward_model, load_tokenizer

    tok = load_tokenizer(tiny_llama)
    torch.manual_seed(0)
    rm = load_reward_model(tiny_llama, pad_token_id=tok.pad_token_id)
    rm.save_pretrained(folder)
    tok.save_pretrained(folder)
    (folder / "config.yaml").write_text(yaml.safe_dump({"template": "tokenizer", "model_name_or_path": tiny_llama}))
    (folder / "metrics.json").write_text(json.dumps({"eval_accuracy": 0.5, "eval_margin_mean": 0.0}))
    return folder


def test_tiny_recipe_scores_the_shipped_sample_and_the_leaderboard_lists_it(tiny_llama, tmp_path, capsys):
    runs = tmp_path / "runs"
    rm = tiny_rm_run(tiny_llama, runs / "rldf" / "tiny" / "rm")
    out = runs / "rldf" / "tiny" / "rewardbench" / "rm"
    m = main(["--config", str(ROOT / "rldf" / "configs" / "tiny.yaml"), "--section", "rewardbench", f"model={rm}",
              f"output_dir={out}", f"data={ROOT / SAMPLE}"])  # the recipe's repo-relative path, from any cwd
    assert m["benchmark"] == "rewardbench" and m["n_pairs"] == 15  # one pair per subset (limit_per_subset 1)
    assert all(m[k] is not None for k in SECTION_KEYS.values()) and m["rewardbench_overall"] is not None
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["benchmark"] == "rewardbench" and saved["model_path"] == str(rm.resolve())
    assert len((out / "scores.jsonl").read_text().splitlines()) == 15
    capsys.readouterr()
    report_main(["--leaderboard", str(runs)])
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("| rldf | tiny/rm |"))
    assert f"| {100 * m['rewardbench_overall']:.1f} | 50.0 | 15 |" in line


def test_fidelity_recipe_skips_the_step_without_a_run_folder(tmp_path, capsys):
    out = tmp_path / "rb"
    m = main(["--config", str(ROOT / "rldf" / "configs" / "fidelity.yaml"), "--section", "rewardbench",
              "model=no/such/rm", f"output_dir={out}"])
    assert m == {"skipped": True} and not out.exists() and "not scored" in capsys.readouterr().out


def test_dpo_ref_auto_is_the_reference_the_dpo_run_used(tmp_path):
    def dpo_run(name: str, **settings) -> str:
        d = tmp_path / name
        d.mkdir()
        (d / "config.yaml").write_text(yaml.safe_dump({"beta": 0.1, **settings}))
        return str(d)

    def ref(model: str) -> str | None:
        return RewardBenchConfig(model=model, dpo_ref="auto", data="x.jsonl", device="cpu").dpo_ref

    assert ref(dpo_run("lora", model_name_or_path="base/model", use_lora=True)) == "base/model"
    assert ref(dpo_run("own_ref", model_name_or_path="sft", ref_model_name_or_path="ref/model")) == "ref/model"
    with pytest.raises(ConfigError, match="SimPO"):
        ref(dpo_run("simpo", model_name_or_path="sft", loss_type="simpo"))
    with pytest.raises(ConfigError, match="config.yaml"):
        ref(str(tmp_path / "not_a_run"))
    assert RewardBenchConfig(model="m", dpo_ref="auto", data="", device="cpu").dpo_ref == "auto"  # skipped: unread
