"""``on_bad_row`` in the stage configs that load data through common.data (SFT, RM, DPO, RL prompts, verl's prompt
export, the SER loop): malformed HH-RLHF rows are skipped and counted per reason in metrics.json (``data_rows``,
``data_skipped``), or stop the stage with one line naming ``file:row``; a value other than skip / error is a one-line
ConfigError naming the key. The CLI case (exit 2, one stderr line) is ``sft-hh-on-bad-row-error`` in
tests/test_bad_inputs.py."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from common.config import ConfigError, UserError
from common.rewards import FunctionReward
from common.train.dpo import DPOConfig, train_dpo
from common.train.ppo import PPOConfig, train_ppo
from common.train.rm import RMConfig, train_rm
from common.train.sft import SFTConfig, train_sft
from common.train.verl_engine import export_prompts
from ser.config import SERConfig
from ser.loop import load_cfg_pairs

HH_MIXED = str(Path(__file__).resolve().parents[1] / "data" / "hh_mixed.jsonl")  # 4 good rows of 10
SKIPPED = {"unparseable": 2, "no_final_assistant": 1, "prompt_mismatch": 1, "empty_reply": 1, "identical_replies": 1}
ROW_3 = r"hh_mixed\.jsonl:3: .*\[no_final_assistant\]"  # the first malformed row


def _written(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


def test_sft_on_hh_rows_records_the_skipped_rows_per_reason_in_metrics(tiny_llama, tmp_path):
    settings = {"model_name_or_path": tiny_llama, "dataset": HH_MIXED, "source_format": "hh_rlhf",
                "report_to": "none", "max_steps": 2, "per_device_train_batch_size": 4, "save_steps": 1000,
                "max_length": 64}
    metrics = train_sft(SFTConfig(**settings, output_dir=str(tmp_path / "sft")))
    assert metrics["n_train"] == 4
    assert metrics["data_rows"] == 10 and metrics["data_skipped"] == SKIPPED
    assert {k: _written(tmp_path / "sft")[k] for k in ("data_rows", "data_skipped")} == {"data_rows": 10,
                                                                                       "data_skipped": SKIPPED}
    with pytest.raises(UserError, match=ROW_3):
        train_sft(SFTConfig(**settings, on_bad_row="error", output_dir=str(tmp_path / "sft-strict")))


def test_rm_counts_the_skipped_rows_of_its_train_and_eval_files_together(tiny_llama, tmp_path):
    cfg = RMConfig(model_name_or_path=tiny_llama, dataset=HH_MIXED, eval_dataset=HH_MIXED, source_format="hh_rlhf",
                   output_dir=str(tmp_path / "rm"), report_to="none", max_steps=1, per_device_train_batch_size=4,
                   save_steps=1000, max_length=128)
    metrics = train_rm(cfg)
    assert metrics["data_rows"] == 20 and metrics["data_skipped"] == {k: 2 * n for k, n in SKIPPED.items()}
    assert _written(tmp_path / "rm")["data_skipped"] == metrics["data_skipped"]


def test_dpo_records_the_skipped_rows_and_stops_on_the_first_malformed_one_with_error(tiny_llama, tmp_path):
    settings = {"model_name_or_path": tiny_llama, "dataset": HH_MIXED, "source_format": "hh_rlhf",
                "report_to": "none", "max_steps": 1, "per_device_train_batch_size": 2, "save_steps": 1000,
                "eval_fraction": 0.0, "max_length": 128}
    metrics = train_dpo(DPOConfig(**settings, output_dir=str(tmp_path / "dpo")))
    assert metrics["train_pairs"] == 4 and metrics["data_rows"] == 10 and metrics["data_skipped"] == SKIPPED
    with pytest.raises(UserError, match=ROW_3):
        train_dpo(DPOConfig(**settings, on_bad_row="error", output_dir=str(tmp_path / "dpo-strict")))


def test_rl_prompts_from_hh_rows_record_the_skipped_rows_in_ours_and_in_verls_export(tiny_llama, tmp_path):
    cfg = PPOConfig(model=tiny_llama, dataset=HH_MIXED, dataset_source_format="hh_rlhf", algorithm="remax",
                    output_dir=str(tmp_path / "rl"), rollout_batch_size=4, mini_batch_size=4, ppo_epochs=1,
                    max_new_tokens=4, total_steps=1, save_steps=0, seed=0)
    metrics = train_ppo(cfg, reward_source=FunctionReward(lambda prompts, responses: [0.0] * len(responses)))
    assert metrics["num_prompts"] == 4 and metrics["data_rows"] == 10 and metrics["data_skipped"] == SKIPPED
    stats: dict = {}
    kept, dropped, _ = export_prompts(cfg, tmp_path / "verl" / "train.parquet", stats)
    assert (kept, dropped) == (4, 0) and len(pd.read_parquet(tmp_path / "verl" / "train.parquet")) == 4
    assert stats["rows"] == 10 and stats["skipped"] == SKIPPED
    cfg.dataset_on_bad_row = "error"
    with pytest.raises(UserError, match=ROW_3):
        export_prompts(cfg, tmp_path / "verl-strict" / "train.parquet")


def test_ser_loop_passes_on_bad_row_to_its_hh_pairs_and_keeps_the_counts(tmp_path):
    cfg = SERConfig(output_dir=str(tmp_path / "ser"), dataset="hh", data_path=HH_MIXED)
    stats: dict = {}
    assert len(load_cfg_pairs(cfg, stats)) == 4 and stats["skipped"] == SKIPPED
    strict = SERConfig(output_dir=str(tmp_path / "ser"), dataset="hh", data_path=HH_MIXED, on_bad_row="error")
    assert strict.fingerprint() == cfg.fingerprint()  # it changes no pair: a run may resume with either
    with pytest.raises(UserError, match=ROW_3):
        load_cfg_pairs(strict)


@pytest.mark.parametrize("make, key", [
    (lambda: SFTConfig(model_name_or_path="m", dataset="d", output_dir="o", on_bad_row="warn"), "sft.on_bad_row"),
    (lambda: RMConfig(model_name_or_path="m", dataset="d", output_dir="o", on_bad_row="warn"), "rm.on_bad_row"),
    (lambda: DPOConfig(model_name_or_path="m", dataset="d", output_dir="o", on_bad_row="warn"), "dpo.on_bad_row"),
    (lambda: PPOConfig(model="m", dataset="d", reward_models=[{"path": "r"}], dataset_on_bad_row="warn"),
     "rl.dataset_on_bad_row"),
    (lambda: SERConfig(output_dir="o", on_bad_row="warn"), "ser.on_bad_row"),
], ids=["sft", "rm", "dpo", "rl", "ser"])
def test_an_unknown_on_bad_row_is_a_one_line_config_error_naming_the_key(make, key):
    with pytest.raises(ConfigError) as err:
        make()
    assert str(err.value).startswith(f"{key}: 'warn' is not one of ['skip', 'error']")
    assert "\n" not in str(err.value)
