"""The PCRM chain on the embedded models: data -> δ* -> RM variants (table) -> PCRM-DPO -> PPO against a PCRM RM."""

from __future__ import annotations

import math

from common.artifacts import read_jsonl
from common.config import build_dataclass
from common.train.dpo import DPOConfig, train_dpo
from common.train.ppo import train_ppo
from pcrm.data import DataConfig, run_data
from pcrm.ppo import PCRMPPOConfig
from pcrm.prior import PriorConfig, annotate_prior
from pcrm.variants import VariantsConfig, run_variants


def test_pcrm_chain_runs_and_each_stage_feeds_the_next(tmp_path, shared_data, tiny_llama, minilm):
    data = tmp_path / "data"
    run_data(DataConfig(source="sst2_pairs", data_root=str(shared_data), limit=16, eval_limit=8,
                        output_dir=str(data)))
    rm_settings = {"model_name_or_path": minilm, "template": "plain", "num_train_epochs": 1,
                   "learning_rate": 1e-4, "per_device_train_batch_size": 8, "max_length": 48, "report_to": "none",
                   "save_steps": 100000}
    prior = {"tokenizer": minilm, "encoder": minilm, "max_length": 48}
    out = run_variants(VariantsConfig(data_dir=str(data), output_dir=str(tmp_path / "rm"),
                                      variants=["baseline", "fixed"], rm=rm_settings, prior=prior))
    assert math.isfinite(out["baseline_accuracy"]) and math.isfinite(out["fixed_margin_max"])
    fixed_train = read_jsonl(tmp_path / "rm" / "fixed" / "data" / "train.jsonl")
    assert {r["delta_star"] for r in fixed_train} == {4.5}  # dialogue preset, stored on every pair
    assert "delta_star" not in read_jsonl(tmp_path / "rm" / "baseline" / "data" / "train.jsonl")[0]
    assert (tmp_path / "rm" / "fixed" / "similarity_cos_sim_vs_margin.png").is_file()
    table = (tmp_path / "rm" / "variants.md").read_text()
    assert "| baseline |" in table and "| fixed |" in table

    pairs = annotate_prior(read_jsonl(data / "train.jsonl"), PriorConfig(kind="len_rat", tokenizer=tiny_llama))
    from common.artifacts import write_jsonl

    write_jsonl(tmp_path / "dpo_pairs.jsonl", pairs)
    dpo = train_dpo(build_dataclass(DPOConfig, {
        "model_name_or_path": tiny_llama, "dataset": str(tmp_path / "dpo_pairs.jsonl"),
        "output_dir": str(tmp_path / "dpo"), "template": "tokenizer", "pair_term": "upper_bound", "max_steps": 1,
        "per_device_train_batch_size": 4, "max_length": 64, "report_to": "none"}, "dpo"))
    assert math.isfinite(dpo["train_loss"])

    ppo = train_ppo(PCRMPPOConfig(model=tiny_llama, dataset=str(data / "train.jsonl"), template="tokenizer",
                                  reward_model=str(tmp_path / "rm" / "fixed" / "rm"), reward_max_length=48,
                                  output_dir=str(tmp_path / "ppo"), total_steps=1, rollout_batch_size=2,
                                  mini_batch_size=2, ppo_epochs=1, max_new_tokens=4, save_steps=0))
    log = read_jsonl(tmp_path / "ppo" / "log.jsonl")
    assert log and all(math.isfinite(v) for v in log[0].values() if isinstance(v, float))
    assert ppo
