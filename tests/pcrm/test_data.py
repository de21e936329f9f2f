"""PCRM data converters: the upstream prompt frames and which side wins, on hand-written hub rows."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from common.config import UserError
from pcrm.data import DataConfig, alpaca_preference, build_records, run_data, tldr_comparison, tldr_sft


def test_alpaca_preference_puts_the_preferred_output_first_in_the_human_assistant_frame():
    row = {"instruction": "Name a fruit.", "input": "", "output_1": "Apple.", "output_2": "Car.", "preference": 1}
    rec = alpaca_preference(row)
    assert rec == {"prompt": "\n\nHuman: Name a fruit.\n\nAssistant: ", "chosen": "Apple.", "rejected": "Car."}
    flipped = alpaca_preference({**row, "input": "Red ones.", "preference": 2})
    assert flipped["chosen"] == "Car." and flipped["prompt"] == "\n\nHuman: Name a fruit.Red ones.\n\nAssistant: "


def test_tldr_rows_use_the_summary_frame_and_choice_index():
    row = {"info": {"post": " My cat ate my homework. "}, "summaries": [{"text": " cat ate hw"}, {"text": "dog"}],
           "choice": 0}
    rec = tldr_comparison(row)
    assert rec["prompt"] == ("\n\nHuman: Your task is to generate a short summary of a post.\n\nPost: My cat ate my "
                             "homework.\n\nSummary: \n\nAssistant: ")
    assert (rec["chosen"], rec["rejected"]) == ("cat ate hw", "dog")
    sft = tldr_sft({"prompt": "SUBREDDIT: r/cats\nTITLE: help\nPOST: My cat ate my homework.\nTL;DR:", "label": " x"})
    assert "Post: My cat ate my homework.\n\n" in sft["prompt"] and sft["response"] == "x"


def test_a_malformed_hub_row_names_its_row(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"instruction": "a", "input": "", "output_1": "x", "output_2": "y", "preference": 3}))
    with pytest.raises(UserError, match="row 1"):
        build_records(DataConfig(source="alpaca_preference", local_path=str(path)))


def test_hh_rows_that_give_no_pair_are_counted_in_metrics_or_fatal(tmp_path):
    mixed = Path(__file__).resolve().parents[1] / "data" / "hh_mixed.jsonl"  # 4 good rows, 6 skipped (5 reasons)
    sub = tmp_path / "shared" / "hh-rlhf" / "helpful-base"
    sub.mkdir(parents=True)
    (sub / "test.jsonl.gz").write_bytes(gzip.compress(mixed.read_bytes()))
    cfg = {"source": "hh_rlhf", "data_root": str(tmp_path / "shared"), "hh_subsets": ["helpful-base"],
           "eval_fraction": 0.25}
    metrics = run_data(DataConfig(**cfg, output_dir=str(tmp_path / "out")))
    assert metrics["source_rows"] == 10 and metrics["n_train"] + metrics["n_eval"] == 4
    assert metrics["skipped_rows"] == {"unparseable": 2, "no_final_assistant": 1, "prompt_mismatch": 1,
                                       "empty_reply": 1, "identical_replies": 1}
    with pytest.raises(UserError, match=r"test\.jsonl\.gz:3: .*\[no_final_assistant\]"):
        build_records(DataConfig(**cfg, on_bad_row="error"))
    with pytest.raises(UserError, match="data.on_bad_row"):
        DataConfig(**cfg, on_bad_row="warn")
