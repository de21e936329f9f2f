"""The whole RLCHF chain on the embedded tiny Llama: personas -> candidates -> ballots -> SWFs -> DPO -> table.

The random 2-layer model cannot write a ranking, so every model ballot must end as an abstention (never a guess);
human ballots in the same file format (issue 13's annotation export) then drive the SWF rows, and the stage outputs
feed the next stage: SWF pairs -> DPO -> the evaluation table. Data: the repo's own common/tiny_data (same tree as
the shared mirror), so the test runs on a fresh checkout.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from common.artifacts import read_jsonl, write_jsonl
from common.config import UserError, load_config
from common.train.dpo import DPOConfig, train_dpo
from common.train.ppo import PPOConfig
from common.train.rm import RMConfig
from common.train.sft import SFTConfig
from rlchf.aggregate import AggregateConfig, run_aggregate
from rlchf.candidates import CandidatesConfig, run_candidates
from rlchf.evaluate import EvaluateConfig, run_evaluate
from rlchf.personas import PersonaConfig, run_personas
from rlchf.rank import RankConfig, run_rank

TINY_DATA = Path(__file__).resolve().parents[2] / "common" / "tiny_data"


def test_whole_chain_on_the_tiny_model(tmp_path, tiny_llama):
    gen = {"backend": "hf", "model": tiny_llama, "max_new_tokens": 6, "temperature": 1.0, "progress": False}
    out = tmp_path / "rlchf"
    # a random model writes no valid persona JSON: the pool stays empty and the stage says so
    with pytest.raises(UserError, match="only 0 valid personas"):
        run_personas(PersonaConfig(source=str(TINY_DATA / "personahub" / "personas.jsonl.gz"), n_seed=4,
                                   n_judges=2, stratify_on=["sex"], enrich="llm", max_attempts=1, generator=gen,
                                   output_dir=str(out / "personas")))
    run_personas(PersonaConfig(source=str(TINY_DATA / "personahub" / "personas.jsonl.gz"), n_seed=6, n_judges=2,
                               stratify_on=["sex"], enrich="compose", output_dir=str(out / "panel")))
    run_candidates(CandidatesConfig(dataset=str(TINY_DATA / "hh-rlhf" / "helpful-base"), dataset_split="test",
                                    n_prompts=2, n_heldout=2, k=3, policy=gen, output_dir=str(out / "candidates")))
    rows = read_jsonl(out / "candidates" / "candidates.jsonl")
    assert [c["id"] for c in rows[0]["candidates"]] == ["chosen", "rejected", "s0"]
    metrics = run_rank(RankConfig(candidates=str(out / "candidates" / "candidates.jsonl"),
                                  judges=str(out / "panel" / "judges.jsonl"), judge=gen, max_attempts=2,
                                  output_dir=str(out / "rank")))
    ballots = read_jsonl(out / "rank" / "rankings.jsonl")
    assert len(ballots) == 4 and all(b["abstained"] and b["ranking"] is None for b in ballots)
    assert metrics["valid_rate"] == 0.0 and all(b["attempts"] == 2 for b in ballots)
    humans = [{"prompt_id": r["prompt_id"], "judge_id": f"h{i}", "ranking": ranking, "abstained": False}
              for r in rows for i, ranking in enumerate([[["s0"], ["chosen"], ["rejected"]]] * 2
                                                        + [[["chosen"], ["rejected", "s0"]]])]
    write_jsonl(out / "rank" / "all.jsonl", ballots + humans)
    run_aggregate(AggregateConfig(candidates=str(out / "candidates" / "candidates.jsonl"),
                                  rankings=str(out / "rank" / "all.jsonl"), rules=["borda", "schulze"],
                                  output_dir=str(out / "aggregate")))
    pairs = read_jsonl(out / "aggregate" / "pairs" / "swf_borda.jsonl")
    assert [(p["chosen_id"], p["rejected_id"]) for p in pairs] == [("s0", "rejected")] * 2
    stats = json.loads((out / "aggregate" / "stats.json").read_text())
    assert stats["abstain_rate"] == 0.4 and stats["borda_gold_agreement"] == 1.0
    train_dpo(DPOConfig(model_name_or_path=tiny_llama, dataset=str(out / "aggregate" / "pairs" / "swf_borda.jsonl"),
                        eval_dataset=str(out / "candidates" / "heldout.jsonl"),
                        output_dir=str(out / "dpo" / "swf_borda"),
                        use_lora=True, lora_r=4, lora_alpha=8, lora_target_modules=["q_proj", "v_proj"],
                        max_steps=1, per_device_train_batch_size=2, max_length=256, eval_fraction=0.0,
                        report_to="none", learning_rate=1e-3))
    result = run_evaluate(EvaluateConfig(base_model=tiny_llama, train_root=str(out), heldout=str(
        out / "candidates" / "heldout.jsonl"), bbq_data=str(TINY_DATA / "bbq"), bbq_categories=["Age"],
        bbq_n_per_category=4, max_length=256, output_dir=str(out / "eval")))
    assert result["rows"] == ["base", "dpo_swf_borda"]
    table = (out / "eval" / "results.md").read_text()
    assert "| dpo_swf_borda |" in table and "unknown_rate" in table
    assert 0.0 <= result["dpo_swf_borda/heldout_pref_acc"] <= 1.0


def test_tiny_config_reads_only_the_repos_own_data():
    root = TINY_DATA.parents[1]
    cfg = yaml.safe_load((root / "rlchf" / "configs" / "tiny.yaml").read_text())
    paths = [cfg["personas"]["source"], cfg["candidates"]["dataset"], cfg["evaluate"]["bbq_data"]]
    assert all(p.startswith("common/tiny_data/") and (root / p).exists() for p in paths)
    assert cfg["rank"]["judge_mode"] == "loglik"  # SmolLM2 cannot write the tag itself (rlchf/README.md)
    RankConfig(candidates="c", judges="j", **{k: v for k, v in cfg["rank"].items()})


def test_tiny_target_trains_the_sft_dpo_and_ppo_rows():
    """`make rlchf-tiny` (part of `make demo`) trains every row kind on the Borda ranking, RM before PPO before the
    table, and its recipe's sft / rm / rl sections are valid stage configs."""
    root = TINY_DATA.parents[1]
    env = {k: v for k, v in os.environ.items() if k != "MAKEFLAGS"}
    done = subprocess.run(["make", "-n", "--no-print-directory", "rlchf-tiny"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    line = " ".join(done.stdout.split())
    for rows in ('ROWS="swf_borda"', 'SFT_ROWS="swf_borda"', 'PPO_ROWS="swf_borda"'):
        assert rows in line, line
    stages = (root / "rlchf" / "scripts" / "run_all.sh").read_text().split("for stage in ", 1)[1].split(";")[0].split()
    assert stages[4:] == ["05_dpo", "06_sft", "07_rm", "08_ppo", "09_evaluate"]
    assert all((root / "rlchf" / "scripts" / f"{s}.sh").is_file() for s in stages)
    config = root / "rlchf" / "configs" / "tiny.yaml"
    filled = {"dataset": "d.jsonl", "output_dir": "o"}
    load_config(SFTConfig, config, "sft", filled)
    load_config(RMConfig, config, "rm", filled)
    rl = load_config(PPOConfig, config, "rl", {"dataset": "d.jsonl", "reward_models": "[{path: rm}]"})
    assert rl.algorithm == "ppo" and rl.reward_models == [{"path": "rm"}]
    assert yaml.safe_load(config.read_text())["rm"]["model_name_or_path"] == rl.model  # RM and policy: one model
