"""The shared real preference sets: SST-2 sentiment pairs and HH-RLHF final-turn pairs (through common.data's one
HH parser: malformed rows skipped and counted, or fatal with on_bad_row: error)."""

from __future__ import annotations

import gzip
import logging
import shutil
from pathlib import Path

import pytest

from common.config import UserError
from common.data import split_hh_dialogue
from common.preference_sets import hh_messages_to_text, hh_rlhf_pairs, sst2_sentiment_pairs

HH_MIXED = Path(__file__).resolve().parents[1] / "data" / "hh_mixed.jsonl"  # 10 rows, each with a "case" field


def _hh_folder(tmp_path: Path) -> Path:
    """<tmp>/hh-rlhf/helpful-base/test.jsonl.gz holding tests/data/hh_mixed.jsonl."""
    sub = tmp_path / "hh-rlhf" / "helpful-base"
    sub.mkdir(parents=True)
    with HH_MIXED.open("rb") as src, gzip.open(sub / "test.jsonl.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    return tmp_path


def test_hh_messages_to_text_is_the_inverse_of_the_parser():
    text = "\n\nHuman: Hi there\n\nAssistant: Hello!\n\nHuman: Tell me a joke\n\nAssistant: Why did the chicken..."
    messages, reply = split_hh_dialogue(text)
    assert messages == [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello!"},
                        {"role": "user", "content": "Tell me a joke"}]
    assert reply == "Why did the chicken..."
    assert hh_messages_to_text(messages) + reply == text


def test_hh_pairs_skip_and_count_malformed_rows_per_reason(tmp_path, caplog):
    folder = _hh_folder(tmp_path)
    stats: dict = {}
    with caplog.at_level(logging.WARNING, logger="common.data"):
        pairs = hh_rlhf_pairs(folder, subsets=["helpful-base"], stats=stats)
    assert sorted(int(p["source_id"].split(":")[1]) for p in pairs) == [1, 2, 9, 10]  # the four "ok" rows
    assert stats == {"rows": 10, "kept": 4, "skipped": {"unparseable": 2, "no_final_assistant": 1,
                                                        "prompt_mismatch": 1, "empty_reply": 1,
                                                        "identical_replies": 1}}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "test.jsonl.gz: skipped 6 of 10 HH-RLHF rows: unparseable 2 (rows 6, 7)" in \
        warnings[0]


def test_hh_pairs_on_bad_row_error_names_the_file_and_row(tmp_path):
    folder = _hh_folder(tmp_path)
    with pytest.raises(UserError, match=r"helpful-base/test\.jsonl\.gz:3: field 'rejected': the transcript ends with "
                                        r"a Human turn.*\[no_final_assistant\]"):
        hh_rlhf_pairs(folder, subsets=["helpful-base"], on_bad_row="error")


def test_sst2_pairs_put_a_positive_review_over_a_negative_one_and_are_seeded(shared_data):
    pairs = sst2_sentiment_pairs(shared_data, n_pairs=50, seed=3, split="dev")
    assert len(pairs) == 50 and pairs == sst2_sentiment_pairs(shared_data, n_pairs=50, seed=3, split="dev")
    assert pairs != sst2_sentiment_pairs(shared_data, n_pairs=50, seed=4, split="dev")
    rows = {}
    with open(shared_data / "glue/sst2/dev.tsv") as fh:
        for i, line in enumerate(fh, start=1):
            sentence, label = line.rstrip("\n").split("\t")
            rows[i] = (sentence.strip(), label)
    for p in pairs:
        _, pos_row, neg_row = p["source_id"].split(":")
        assert rows[int(pos_row)] == (p["chosen"], "1") and rows[int(neg_row)] == (p["rejected"], "0")
        assert len(p["chosen"].split()) >= 6 and len(p["rejected"].split()) >= 6


def test_sst2_asking_for_more_pairs_than_exist_is_a_user_error(shared_data):
    with pytest.raises(UserError, match="only .* pairs"):
        sst2_sentiment_pairs(shared_data, n_pairs=10_000, split="dev")


def test_hh_pairs_share_the_dialogue_and_differ_in_the_final_reply(shared_data):
    stats: dict = {}
    everything = hh_rlhf_pairs(shared_data, stats=stats)  # both shared test splits load without raising
    assert stats == {"rows": 4666, "kept": 4656, "skipped": {"empty_reply": 8, "identical_replies": 2}}
    assert len(everything) == 4656
    pairs = hh_rlhf_pairs(shared_data, subsets=["helpful-base"], n=20, seed=0)
    assert len(pairs) == 20
    for p in pairs:
        assert p["prompt"][-1]["role"] == "user" and p["chosen"] != p["rejected"]
        assert p["source_id"].startswith("helpful-base/test:")
    text = hh_rlhf_pairs(shared_data, subsets=["helpful-base"], n=20, seed=0, prompt_format="hh_text")
    assert text[0]["prompt"] == hh_messages_to_text(pairs[0]["prompt"])
    assert text[0]["prompt"].startswith("\n\nHuman: ") and text[0]["prompt"].endswith("\n\nAssistant: ")
