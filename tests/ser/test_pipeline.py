"""The whole SER pipeline on the embedded models, through its stage scripts: SFT -> loop -> PPO x3 -> answers -> judge.

Each stage must change the next: the SFT data is the loop's own labelled seed, each PPO run scores with the RM folder
the loop named for it (so the seed-only and 100%-label heads give different rewards to the same first rollout), and
the summary reads every stage's metrics.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from common.artifacts import REPO_ROOT, read_jsonl

pytestmark = pytest.mark.slow


def _stage(script: str, runs: Path, **env) -> str:
    full_env = {**os.environ, "CONFIG": "ser/configs/tiny.yaml", "MODEL": "tiny", "DATASET": "sst2",
                "RUNS": str(runs), "PY": sys.executable, "HF_HUB_OFFLINE": "1", **env}
    done = subprocess.run(["bash", f"ser/scripts/{script}"], cwd=REPO_ROOT, env=full_env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, f"{script} failed:\n{done.stderr[-3000:]}"
    return done.stdout


def test_tiny_pipeline_each_stage_feeds_the_next(tmp_path, tiny_llama, minilm):
    _stage("01_sft.sh", tmp_path)
    _stage("02_ser_loop.sh", tmp_path)
    for rm in ("seed", "ser", "full"):
        _stage("03_ppo.sh", tmp_path, RM=rm)
    summary = _stage("04_eval.sh", tmp_path)
    out = tmp_path / "ser" / "tiny" / "sst2"

    loop = json.loads((out / "ser_loop" / "metrics.json").read_text())
    seed_pairs = read_jsonl(out / "ser_loop" / "data" / "seed.jsonl")
    sft = read_jsonl(out / "data" / "sft.jsonl")
    assert [r["response"] for r in sft] == [r["chosen"] for r in seed_pairs]  # ser.sft_data: seed
    assert all(r["prompt"].startswith("Question: ") and r["prompt"].endswith("\n\nAnswer: ") for r in sft)

    first_rewards = {}
    for rm, model_dir in (("seed", "loop_0/model"), ("ser", f"loop_{loop['best_loop']}/model"),
                          ("full", "baseline_full/model")):
        cfg = yaml.safe_load((out / f"ppo_{rm}" / "config.yaml").read_text())
        assert cfg["reward_function"] == "ser.encoder_head:ppo_reward"
        assert cfg["reward_function_kwargs"]["head_dir"] == str(out / "ser_loop" / model_dir)
        metrics = json.loads((out / f"ppo_{rm}" / "metrics.json").read_text())
        assert 0.0 < metrics["reward_first"] < 1.0  # σ(r) − 0
        first_rewards[rm] = metrics["reward_first"]
        assert (out / f"ppo_{rm}" / "policy").is_dir()
    # same policy, same seed, same first rollout: only the reward model differs
    assert first_rewards["seed"] != pytest.approx(first_rewards["full"], abs=1e-6)

    for system in ("sft", "ppo_seed", "ppo_ser", "ppo_full"):
        answers = read_jsonl(out / "responses" / system / "responses.jsonl")
        assert answers and all(r["prompt"].startswith("Question: ") for r in answers)
    for other in ("sft", "ppo_seed", "ppo_full"):
        judged = json.loads((out / "judge" / f"ppo_ser_vs_{other}" / "metrics.json").read_text())
        assert judged["system_1"] == "ppo_ser" and judged["system_2"] == other
    table = (out / "summary.md").read_text()
    assert "| seed-only RM (loop 0) |" in table and "| seed-only RM (loop 0) |" in summary
    assert f"| 100%-label RM | {100 * loop['full_label_accuracy']:.1f} |" in table and "## Per-loop table" in table

    again = _stage("03_ppo.sh", tmp_path, RM="ser")  # a rerun never silently replaces a finished stage
    assert "skip (finished)" in again
