"""The shared real preference sets: SST-2 sentiment pairs and HH-RLHF final-turn pairs."""

from __future__ import annotations

import pytest

from common.config import UserError
from common.preference_sets import hh_messages_to_text, hh_rlhf_pairs, split_hh_text, sst2_sentiment_pairs


def test_split_hh_text_returns_history_and_final_reply():
    text = "\n\nHuman: Hi there\n\nAssistant: Hello!\n\nHuman: Tell me a joke\n\nAssistant: Why did the chicken..."
    messages, reply = split_hh_text(text)
    assert messages == [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello!"},
                        {"role": "user", "content": "Tell me a joke"}]
    assert reply == "Why did the chicken..."
    assert hh_messages_to_text(messages) + reply == text


def test_split_hh_text_refuses_a_dialogue_ending_with_the_human():
    with pytest.raises(ValueError, match="assistant turn"):
        split_hh_text("\n\nHuman: a\n\nAssistant: b\n\nHuman: c")


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
    pairs = hh_rlhf_pairs(shared_data, subsets=["helpful-base"], n=20, seed=0)
    assert len(pairs) == 20
    for p in pairs:
        assert p["prompt"][-1]["role"] == "user" and p["chosen"] != p["rejected"]
        assert p["source_id"].startswith("helpful-base/test:")
    text = hh_rlhf_pairs(shared_data, subsets=["helpful-base"], n=20, seed=0, prompt_format="hh_text")
    assert text[0]["prompt"] == hh_messages_to_text(pairs[0]["prompt"])
    assert text[0]["prompt"].startswith("\n\nHuman: ") and text[0]["prompt"].endswith("\n\nAssistant: ")
