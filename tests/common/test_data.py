"""Data loaders (jsonl/csv/tsv/parquet/json, gz, folders), column mapping, validation errors naming file/row/field,
splits, and the HH-RLHF transcript parser."""

from __future__ import annotations

import gzip
import json

import pytest

from common.data import DataError, DataSpec, load_records, split_hh_dialogue, split_records, validate_records

PAIRS = [
    {"question": "2+2?", "good": "4", "bad": "5", "source": "math"},
    {"question": "Capital of France?", "good": "Paris", "bad": "Rome", "source": "geo"},
    {"question": "Colour of the sky?", "good": "Blue", "bad": "Green", "source": "sci"},
]
MAPPING = {"prompt": "question", "chosen": "good", "rejected": "bad"}
CANONICAL = [{"prompt": r["question"], "chosen": r["good"], "rejected": r["bad"], "source": r["source"]} for r in PAIRS]


def _write_jsonl(path, rows, gz=False):
    text = "".join(json.dumps(r) + "\n" for r in rows)
    if gz:
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize("fmt", ["jsonl", "jsonl.gz", "json", "csv", "tsv", "parquet"])
def test_every_file_type_loads_the_same_canonical_records(tmp_path, fmt):
    import pandas as pd

    path = tmp_path / f"pairs.{fmt}"
    if fmt.startswith("jsonl"):
        _write_jsonl(path, PAIRS, gz=fmt.endswith(".gz"))
    elif fmt == "json":
        path.write_text(json.dumps(PAIRS))
    elif fmt == "csv":
        pd.DataFrame(PAIRS).to_csv(path, index=False)
    elif fmt == "tsv":
        pd.DataFrame(PAIRS).to_csv(path, index=False, sep="\t")
    else:
        pd.DataFrame(PAIRS).to_parquet(path)
    assert load_records(str(path), "preference", columns=MAPPING) == CANONICAL


def test_folder_source_picks_the_split_file(tmp_path):
    _write_jsonl(tmp_path / "test.jsonl", CANONICAL[:1])
    _write_jsonl(tmp_path / "train.jsonl", CANONICAL)
    assert load_records(str(tmp_path), "preference", split="test") == CANONICAL[:1]
    with pytest.raises(DataError, match="no file for split 'dev'"):
        load_records(str(tmp_path), "preference", split="dev")


def test_limit_is_a_seeded_subset_in_file_order(tmp_path):
    rows = [{"prompt": f"p{i}"} for i in range(50)]
    path = str(_write_jsonl(tmp_path / "p.jsonl", rows))
    a = load_records(path, "prompt", limit=10, seed=1)
    assert a == load_records(path, "prompt", limit=10, seed=1) != load_records(path, "prompt", limit=10, seed=2)
    idx = [int(r["prompt"][1:]) for r in a]
    assert len(idx) == 10 and idx == sorted(idx)
    assert DataSpec.from_fields(path, limit=10).load("prompt", seed=1) == a


def test_missing_column_names_file_row_and_field(tmp_path):
    rows = [dict(CANONICAL[0]), {"prompt": "q", "chosen": "a"}]
    path = _write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError, match=r"bad\.jsonl row 2: field 'rejected' is missing"):
        load_records(str(path), "preference")


def test_mapped_column_missing_names_source_field(tmp_path):
    path = _write_jsonl(tmp_path / "bad.jsonl", PAIRS)
    with pytest.raises(DataError, match=r"bad\.jsonl row 1: field 'answer' \(mapped to 'chosen'\) is missing"):
        load_records(str(path), "preference", columns={"prompt": "question", "chosen": "answer", "rejected": "bad"})


def test_empty_dataset_is_refused(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    with pytest.raises(DataError, match=r"empty\.jsonl: the dataset is empty"):
        load_records(str(path), "sft")


def test_non_string_field_names_row_and_field(tmp_path):
    rows = [{"prompt": "q", "response": "a"}, {"prompt": "q", "response": "a"}, {"prompt": "q", "response": 3}]
    path = _write_jsonl(tmp_path / "sft.jsonl", rows)
    with pytest.raises(DataError, match=r"sft\.jsonl row 3, field 'response': expected a string, got int"):
        load_records(str(path), "sft")


def test_chosen_equal_to_rejected_is_refused(tmp_path):
    rows = [dict(CANONICAL[0]), {"prompt": "q", "chosen": "same", "rejected": "same"}]
    path = _write_jsonl(tmp_path / "ties.jsonl", rows)
    with pytest.raises(DataError, match=r"ties\.jsonl row 2, field 'rejected': identical to 'chosen'"):
        load_records(str(path), "preference")


def test_messages_records_are_checked():
    ok = [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}]
    validate_records(ok, "sft", "mem")
    bad = [{"messages": [{"role": "user", "content": "q"}]}]
    with pytest.raises(DataError, match=r"mem row 1, field 'messages': the last message must be a turn of role 'assistant'"):
        validate_records(bad, "sft", "mem")
    with pytest.raises(DataError, match=r"mem row 1, field 'prompt'\[0\]"):
        validate_records([{"prompt": [{"role": "bot", "content": "x"}]}], "prompt", "mem")


def test_missing_local_file_is_a_clear_error():
    with pytest.raises(DataError, match="no such file"):
        load_records("./nowhere/pairs.jsonl", "preference")


def test_split_records_is_disjoint_complete_and_seeded():
    records = [{"i": i} for i in range(101)]
    parts = split_records(records, {"train": 0.8, "eval": 0.2}, seed=3)
    assert len(parts["train"]) == 80 and len(parts["eval"]) == 21
    assert sorted(r["i"] for p in parts.values() for r in p) == list(range(101))
    assert parts == split_records(records, {"train": 0.8, "eval": 0.2}, seed=3)
    with pytest.raises(DataError, match="sum to"):
        split_records(records, {"a": 0.7, "b": 0.7})


def test_split_hh_dialogue_returns_prompt_messages_and_final_reply():
    text = "\n\nHuman: Hi\n\nAssistant: Hello.\n\nHuman: How are you?\n\nAssistant: Fine, thanks."
    prompt, reply = split_hh_dialogue(text)
    assert prompt == [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."},
                      {"role": "user", "content": "How are you?"}]
    assert reply == "Fine, thanks."
    # two Human turns in a row (an upstream quirk) are joined so roles alternate
    prompt, reply = split_hh_dialogue("\n\nHuman: a\n\nHuman: b\n\nAssistant:")
    assert prompt == [{"role": "user", "content": "a\n\nb"}] and reply == ""
    with pytest.raises(DataError, match="HH-RLHF"):
        split_hh_dialogue("Question: x\n\nAnswer: y")


def test_hh_rlhf_test_split_loads_as_preference_pairs(shared_data):
    records = load_records(str(shared_data / "hh-rlhf" / "helpful-base"), "preference", split="test",
                           source_format="hh_rlhf")
    assert len(records) == 2354 - 2  # two pairs with identical replies are dropped
    first = records[0]
    assert first["prompt"][-1]["role"] == "user" and first["chosen"] != first["rejected"]


def test_hh_rlhf_gives_sft_and_prompt_records_too(tmp_path):
    row = {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello!", "rejected": "\n\nHuman: Hi\n\nAssistant: Go away."}
    path = str(_write_jsonl(tmp_path / "hh.jsonl", [row]))
    prompt = [{"role": "user", "content": "Hi"}]
    assert load_records(path, "sft", source_format="hh_rlhf") == [{"prompt": prompt, "response": "Hello!"}]
    assert load_records(path, "prompt", source_format="hh_rlhf") == [{"prompt": prompt}]
