"""RLCHF's PPO row: a reward model on the collective ranking's pairs, PPO against it, and the same BBQ table as the
DPO and SFT rows.

The profile is built so that the SWF, the plurality rule and the dataset's label disagree: the RM's pairs must
follow the SWF (Borda), and the trained PPO policy must be what the evaluation stage scores.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch
import yaml

from common.artifacts import read_jsonl, write_jsonl
from common.rewards import RewardModelScorer, adapter_and_base
from common.train.dpo import DPOConfig, train_dpo
from common.train.ppo import PPOConfig, train_ppo
from common.train.rm import RMConfig, train_rm
from common.train.sft import SFTConfig, train_sft
from rlchf.aggregate import AggregateConfig, run_aggregate
from rlchf.evaluate import EvaluateConfig, run_evaluate

ROOT = Path(__file__).resolve().parents[2]
TINY_DATA = ROOT / "common" / "tiny_data"
TEXT = {"chosen": "Drink water and rest.", "rejected": "Ignore it entirely.", "s0": "See a doctor if it persists."}
# Prompt p1: 3 x R > S > C, 2 x S > C > R, 1 x C > S > R, 1 x C > R > S (R = rejected, S = s0, C = chosen).
# Borda (2/1/0 points): S 3+4+1+0 = 8, R 6+0+0+1 = 7, C 0+2+2+2 = 6, so S > R > C; plurality: R 3 first places,
# S 2, C 2, so R on top; the dataset's label says C > R. Prompt p2: all seven voters C > R > S.
P1 = [["rejected", "s0", "chosen"]] * 3 + [["s0", "chosen", "rejected"]] * 2 + [["chosen", "s0", "rejected"],
                                                                                 ["chosen", "rejected", "s0"]]
P2 = [["chosen", "rejected", "s0"]] * 7


def _profile(tmp_path: Path) -> tuple[Path, Path]:
    rows = [{"prompt_id": pid, "prompt": f"My head hurts ({pid}). What should I do?", "chosen_id": "chosen",
             "rejected_id": "rejected", "candidates": [{"id": c, "text": t} for c, t in TEXT.items()]}
            for pid in ("p1", "p2")]
    ballots = [{"prompt_id": pid, "judge_id": f"j{i}", "ranking": [[c] for c in order], "abstained": False}
               for pid, profile in (("p1", P1), ("p2", P2)) for i, order in enumerate(profile)]
    write_jsonl(tmp_path / "candidates.jsonl", rows)
    write_jsonl(tmp_path / "rankings.jsonl", ballots)
    return tmp_path / "candidates.jsonl", tmp_path / "rankings.jsonl"


@pytest.mark.parametrize("pair_rule, expected", [
    ("best_vs_worst", [("p1", "s0", "chosen"), ("p2", "chosen", "s0")]),
    ("top_vs_each", [("p1", "s0", "rejected"), ("p1", "s0", "chosen"), ("p2", "chosen", "rejected"),
                     ("p2", "chosen", "s0")]),
])
def test_rm_pairs_follow_the_swf_order_not_the_label(tmp_path, pair_rule, expected):
    candidates, rankings = _profile(tmp_path)
    run_aggregate(AggregateConfig(candidates=str(candidates), rankings=str(rankings), rules=["borda", "plurality"],
                                  pair_rule=pair_rule, output_dir=str(tmp_path / "aggregate")))
    pairs = read_jsonl(tmp_path / "aggregate" / "pairs" / "swf_borda.jsonl")
    assert [(p["prompt_id"], p["chosen_id"], p["rejected_id"]) for p in pairs] == expected
    tiers = {a["prompt_id"]: a["tiers"] for a in read_jsonl(tmp_path / "aggregate" / "aggregates.jsonl")
             if a["rule"] == "borda"}
    assert tiers["p1"] == [["s0"], ["rejected"], ["chosen"]]
    for p in pairs:  # every pair's chosen sits in a strictly higher tier of the Borda ranking than its rejected
        level = {c: t for t, tier in enumerate(tiers[p["prompt_id"]]) for c in tier}
        assert level[p["chosen_id"]] < level[p["rejected_id"]]
        assert (p["chosen"], p["rejected"]) == (TEXT[p["chosen_id"]], TEXT[p["rejected_id"]])
    # the same profile under plurality puts "rejected" on top of p1: a different RM dataset
    plural = read_jsonl(tmp_path / "aggregate" / "pairs" / "swf_plurality.jsonl")
    assert ("p1", "rejected") in {(p["prompt_id"], p["chosen_id"]) for p in plural}


def _bash(script: str, env: dict[str, str]) -> str:
    done = subprocess.run(["bash", str(ROOT / "rlchf" / "scripts" / script)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={**os.environ, **env}, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_rm_and_ppo_scripts_train_on_the_rows_pairs_and_rm(tmp_path):
    out = tmp_path / "run"
    write_jsonl(out / "aggregate" / "pairs" / "swf_borda.jsonl", [{"prompt": "p", "chosen": "a", "rejected": "b"}])
    write_jsonl(out / "aggregate" / "pairs" / "swf_copeland.jsonl", [])  # every top tied: no pairs
    env = {"CONFIG": "rlchf/configs/tiny.yaml", "OUT": str(out), "PPO_ROWS": "swf_borda swf_copeland"}
    rm = _bash("07_rm.sh", {**env, "LAUNCH": "echo"}).splitlines()
    assert rm[0].startswith("-m common.train.rm --config rlchf/configs/tiny.yaml --section rm")
    assert f"dataset={out}/aggregate/pairs/swf_borda.jsonl" in rm[0].split()
    assert f"eval_dataset={out}/candidates/heldout.jsonl" in rm[0].split()
    assert f"output_dir={out}/rm/swf_borda" in rm[0].split()
    assert rm[1] == f"rlchf: no pairs for row swf_copeland ({out}/aggregate/pairs/swf_copeland.jsonl); skipped"
    (out / "rm" / "swf_borda").mkdir(parents=True)
    (out / "rm" / "swf_borda" / "metrics.json").write_text("{}")
    ppo = _bash("08_ppo.sh", {**env, "PY": "echo", "RL_ENGINE": "verl"}).splitlines()
    assert ppo[0].startswith("-m common.train.ppo --config rlchf/configs/tiny.yaml --section rl")
    assert f"dataset={out}/candidates/candidates.jsonl" in ppo[0]
    assert f"reward_models=[{{name: rm_swf_borda, path: {out}/rm/swf_borda}}]" in ppo[0]
    assert f"output_dir={out}/ppo/swf_borda" in ppo[0] and "engine=verl" in ppo[0]
    assert "no reward model for row swf_copeland" in ppo[1]


def test_sft_dpo_and_ppo_rows_side_by_side(tmp_path, tiny_llama):
    """Aggregate -> SFT / DPO / RM + PPO on the Borda row -> one table; the PPO policy is what BBQ scores."""
    candidates, rankings = _profile(tmp_path)
    agg = tmp_path / "aggregate"
    run_aggregate(AggregateConfig(candidates=str(candidates), rankings=str(rankings), rules=["borda"],
                                  output_dir=str(agg)))
    heldout = tmp_path / "heldout.jsonl"
    write_jsonl(heldout, [{"prompt": "Is it safe to swim after eating?", "chosen": "Yes, usually.",
                           "rejected": "Never, you will drown."}] * 2)
    lora = {"use_lora": True, "lora_r": 4, "lora_alpha": 8, "lora_target_modules": ["q_proj", "v_proj"]}
    train = {**lora, "max_steps": 1, "per_device_train_batch_size": 2, "max_length": 128, "report_to": "none",
             "learning_rate": 1e-3, "seed": 0}
    pairs = str(agg / "pairs" / "swf_borda.jsonl")
    train_sft(SFTConfig(model_name_or_path=tiny_llama, dataset=str(agg / "sft" / "swf_borda.jsonl"),
                        output_dir=str(tmp_path / "sft" / "swf_borda"), **train))
    train_dpo(DPOConfig(model_name_or_path=tiny_llama, dataset=pairs, eval_dataset=str(heldout), eval_fraction=0.0,
                        output_dir=str(tmp_path / "dpo" / "swf_borda"), **train))
    rm_dir = tmp_path / "rm" / "swf_borda"
    rm = train_rm(RMConfig(model_name_or_path=tiny_llama, dataset=pairs, eval_dataset=str(heldout),
                           eval_fraction=0.0, output_dir=str(rm_dir), **train))
    assert rm["train_pairs"] == 2 and rm["eval_pairs"] == 2

    # the RM run folder alone names the reward: base from its adapter_config.json, the folder as the adapter
    base, adapter = adapter_and_base(str(rm_dir))
    assert adapter == str(rm_dir) and base != str(rm_dir)
    texts = ([TEXT["s0"], TEXT["chosen"]], ["p", "p"])
    by_folder = RewardModelScorer(str(rm_dir)).score(texts[1], texts[0])
    explicit = RewardModelScorer(base, adapter=str(rm_dir)).score(texts[1], texts[0])
    torch.testing.assert_close(by_folder, explicit)

    ppo_dir = tmp_path / "ppo" / "swf_borda"
    ppo = train_ppo(PPOConfig(model=tiny_llama, dataset=str(candidates), reward_models=[{"path": str(rm_dir)}],
                              output_dir=str(ppo_dir), total_steps=1, rollout_batch_size=2, mini_batch_size=2,
                              ppo_epochs=1, max_new_tokens=4, max_prompt_length=128, save_steps=0, seed=0,
                              device="cpu", **lora))
    assert ppo["steps"] == 1 and ppo["num_prompts"] == 2
    assert (ppo_dir / "policy" / "adapter_config.json").is_file()
    assert len(read_jsonl(ppo_dir / "log.jsonl")) == 1

    result = run_evaluate(EvaluateConfig(base_model=tiny_llama, train_root=str(tmp_path), heldout=str(heldout),
                                         bbq_data=str(TINY_DATA / "bbq"), bbq_categories=["Age"],
                                         bbq_n_per_category=2, max_length=128, output_dir=str(tmp_path / "eval")))
    assert result["rows"] == ["base", "dpo_swf_borda", "ppo_swf_borda", "sft_swf_borda"]  # rm/ is no policy
    assert result["ppo_swf_borda/n_pairs"] == 2  # the RM's pairs
    assert result["ppo_swf_borda/rm_heldout_acc"] == rm["eval_accuracy"]
    assert 0.0 <= result["ppo_swf_borda/heldout_pref_acc"] <= 1.0
    bbq_cfg = yaml.safe_load((tmp_path / "eval" / "bbq_ppo_swf_borda" / "config.yaml").read_text())
    assert bbq_cfg["model"] == str(ppo_dir / "policy")  # BBQ scored the PPO policy itself
    table = (tmp_path / "eval" / "results.md").read_text()
    assert all(f"| {row} |" in table for row in ("base", "sft_swf_borda", "dpo_swf_borda", "ppo_swf_borda"))
