"""Data loaders (jsonl/csv/tsv/parquet/json, gz, folders), column mapping, validation errors naming file/row/field,
unreadable files, splits, and the HH-RLHF transcript parser (turn markers, malformed rows skipped or fatal)."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import pytest

from common.config import UserError
from common.data import (
    DataError,
    DataSpec,
    HHRowError,
    load_records,
    parse_hh_pair,
    read_table,
    split_hh_dialogue,
    split_records,
    validate_records,
)

HH_MIXED = Path(__file__).resolve().parents[1] / "data" / "hh_mixed.jsonl"  # 10 rows, each with a "case" field
HH_MIXED_SKIPPED = {"unparseable": 2, "no_final_assistant": 1, "prompt_mismatch": 1, "empty_reply": 1,
                    "identical_replies": 1}

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


def test_hh_turn_markers_need_their_blank_line():
    """Anthropic's format: a turn starts at "\n\nHuman:" / "\n\nAssistant:"; the same words after one newline, a
    space or mid-text belong to the current turn. Only the first marker may open the text without the blank line."""
    text = ("\n\nHuman: Write a chat.\nAssistant: (not a turn)\n\nAssistant: Sure. Human: hi\nAssistant: hello"
            "\n\n Human: still the reply")
    prompt, reply = split_hh_dialogue(text)
    assert prompt == [{"role": "user", "content": "Write a chat.\nAssistant: (not a turn)"}]
    assert reply == "Sure. Human: hi\nAssistant: hello\n\n Human: still the reply"
    assert split_hh_dialogue("Human: Hi\n\nAssistant: Hello.") == ([{"role": "user", "content": "Hi"}], "Hello.")
    assert split_hh_dialogue("\n\nHuman: Hi\n\nAssistant: Hello.\nHuman: more?")[1] == "Hello.\nHuman: more?"
    with pytest.raises(HHRowError, match="ends with a Human turn") as err:
        split_hh_dialogue("\n\nHuman: a\n\nAssistant: b\n\nHuman: c")
    assert err.value.reason == "no_final_assistant"
    with pytest.raises(HHRowError, match="opens with an Assistant turn") as err:
        split_hh_dialogue("\n\nAssistant: a\n\nHuman: b\n\nAssistant: c")
    assert err.value.reason == "unparseable"


@pytest.mark.parametrize("row, reason", [
    ({"chosen": "\n\nHuman: q\n\nAssistant: a", "rejected": "\n\nHuman: q\n\nAssistant: b\n\nHuman: c"},
     "no_final_assistant"),
    ({"chosen": "\n\nHuman: q\n\nAssistant:", "rejected": "\n\nHuman: q\n\nAssistant: b"}, "empty_reply"),
    ({"chosen": "\n\nHuman: q\n\nAssistant: a", "rejected": "\n\nHuman: r\n\nAssistant: b"}, "prompt_mismatch"),
    ({"chosen": "\n\nHuman: q\n\nAssistant: a", "rejected": None}, "unparseable"),
    ({"chosen": "\n\nHuman: q\n\nAssistant: a", "rejected": "\n\nHuman: q\n\nAssistant: a"}, "identical_replies"),
])
def test_parse_hh_pair_names_the_reason(row, reason):
    with pytest.raises(HHRowError) as err:
        parse_hh_pair(row)
    assert err.value.reason == reason


def test_hh_file_with_malformed_rows_keeps_every_good_pair_and_counts_the_rest(caplog):
    rows = read_table(HH_MIXED)
    stats: dict = {}
    with caplog.at_level(logging.WARNING, logger="common.data"):
        records = load_records(str(HH_MIXED), "preference", source_format="hh_rlhf", stats=stats)
    assert [r["case"] for r in records] == [r["case"] for r in rows if r["case"].startswith("ok")]
    assert stats == {"rows": 10, "kept": 4, "skipped": HH_MIXED_SKIPPED}
    by_case = {r["case"]: r for r in records}
    assert by_case["ok: markers without their blank line are text of the turn"]["chosen"] == \
        "Sure. Human: hi there\nAssistant: hello"
    assert by_case["ok: two Human turns in a row are joined"]["prompt"] == \
        [{"role": "user", "content": "Hello\n\nAre you there?"}]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert "skipped 6 of 10 HH-RLHF rows" in warnings[0]
    for reason, n in HH_MIXED_SKIPPED.items():
        assert f"{reason} {n} (rows " in warnings[0]
    # sft and prompt records come from the same kept pairs
    assert len(load_records(str(HH_MIXED), "sft", source_format="hh_rlhf")) == 4
    assert len(DataSpec.from_fields(str(HH_MIXED), source_format="hh_rlhf").load("prompt")) == 4


def test_hh_on_bad_row_error_names_the_file_row_and_reason():
    with pytest.raises(UserError) as err:
        load_records(str(HH_MIXED), "preference", source_format="hh_rlhf", on_bad_row="error")
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{HH_MIXED}:3: field 'rejected': the transcript ends with a Human turn")
    assert msg.endswith("[no_final_assistant]; set on_bad_row: skip to skip and count such rows")
    with pytest.raises(DataError, match=r"hh_mixed\.jsonl:3: .*\[no_final_assistant\]"):
        DataSpec.from_fields(str(HH_MIXED), source_format="hh_rlhf", on_bad_row="error").load("preference")
    with pytest.raises(DataError, match="on_bad_row 'ignore' is not one of"):
        load_records(str(HH_MIXED), "preference", source_format="hh_rlhf", on_bad_row="ignore")


def test_hh_file_without_a_single_usable_row_is_one_error_with_the_counts(tmp_path):
    rows = [r for r in read_table(HH_MIXED) if not r["case"].startswith("ok")]
    path = _write_jsonl(tmp_path / "hh.jsonl", rows)
    with pytest.raises(DataError) as err:
        load_records(str(path), "preference", source_format="hh_rlhf")
    msg = str(err.value)
    assert msg.startswith(f"{path}: none of its 6 HH-RLHF rows gives a preference pair (skipped: unparseable 2 "
                          "(rows 4, 5); no_final_assistant 1 (rows 1);") and "\n" not in msg


def test_identical_replies_are_skipped_even_under_on_bad_row_error(tmp_path):
    rows = read_table(HH_MIXED)
    keep = [r for r in rows if r["case"].startswith("ok") or r["case"] == "identical_replies"]
    path = _write_jsonl(tmp_path / "hh.jsonl", keep)
    stats: dict = {}
    records = load_records(str(path), "preference", source_format="hh_rlhf", on_bad_row="error", stats=stats)
    assert len(records) == 4 and stats["skipped"] == {"identical_replies": 1}


@pytest.mark.parametrize("subset, rows, skipped", [
    ("helpful-base", 2354, {"empty_reply": 4, "identical_replies": 2}),
    ("harmless-base", 2312, {"empty_reply": 4}),
])
def test_hh_rlhf_test_split_loads_as_preference_pairs(shared_data, subset, rows, skipped):
    stats: dict = {}
    records = load_records(str(shared_data / "hh-rlhf" / subset), "preference", split="test",
                           source_format="hh_rlhf", stats=stats)
    assert stats == {"rows": rows, "kept": len(records), "skipped": skipped}
    assert len(records) == rows - sum(skipped.values())
    for r in records:
        assert r["prompt"][0]["role"] == "user" and r["prompt"][-1]["role"] == "user"
        assert all(a["role"] != b["role"] for a, b in zip(r["prompt"], r["prompt"][1:]))
        assert r["chosen"] and r["rejected"] and r["chosen"] != r["rejected"]


def test_hh_rlhf_gives_sft_and_prompt_records_too(tmp_path):
    row = {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello!", "rejected": "\n\nHuman: Hi\n\nAssistant: Go away."}
    path = str(_write_jsonl(tmp_path / "hh.jsonl", [row]))
    prompt = [{"role": "user", "content": "Hi"}]
    assert load_records(path, "sft", source_format="hh_rlhf") == [{"prompt": prompt, "response": "Hello!"}]
    assert load_records(path, "prompt", source_format="hh_rlhf") == [{"prompt": prompt}]


# --- Files that cannot be read: one DataError naming the file (and the line where known). -----------------------


def test_non_utf8_jsonl_names_the_file_and_line(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"prompt": "ok"}\n{"prompt": "caf\xe9"}\n')
    with pytest.raises(DataError, match=r"latin1\.jsonl line 2: not valid UTF-8 \(byte 0xe9 at column 16\)"):
        load_records(str(path), "prompt")


def test_non_utf8_csv_and_json_name_the_file_and_line(tmp_path):
    csv_path = tmp_path / "rows.csv"
    csv_path.write_bytes(b"prompt\nfine\nna\xefve\n")
    with pytest.raises(DataError, match=r"rows\.csv line 3: not valid UTF-8"):
        load_records(str(csv_path), "prompt")
    json_path = tmp_path / "rows.json"
    json_path.write_bytes(b'[{"prompt": "\xff"}]')
    with pytest.raises(DataError, match=r"rows\.json line 1: not valid UTF-8"):
        load_records(str(json_path), "prompt")


def test_truncated_gzip_is_a_clear_error(tmp_path):
    whole = gzip.compress(b"".join(json.dumps({"prompt": f"p{i}"}).encode() + b"\n" for i in range(500)))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match=r"cut\.jsonl\.gz: the gzip stream is truncated"):
        load_records(str(path), "prompt")


def test_a_gz_file_that_is_not_gzip_is_a_clear_error(tmp_path):
    path = tmp_path / "plain.jsonl.gz"
    path.write_text('{"prompt": "not compressed"}\n')
    with pytest.raises(DataError, match=r"plain\.jsonl\.gz: not a readable gzip file"):
        load_records(str(path), "prompt")


@pytest.mark.parametrize("content", [b"this is not parquet" * 10, b""])
def test_garbage_parquet_is_a_clear_error(tmp_path, content):
    path = tmp_path / "broken.parquet"
    path.write_bytes(content)
    with pytest.raises(DataError, match=r"broken\.parquet: not a readable parquet file"):
        load_records(str(path), "prompt")


def test_truncated_parquet_is_a_clear_error_and_gzipped_parquet_loads(tmp_path):
    import pandas as pd

    path = tmp_path / "rows.parquet"
    pd.DataFrame(PAIRS).to_parquet(path)
    whole = path.read_bytes()
    (tmp_path / "rows.parquet.gz").write_bytes(gzip.compress(whole))
    assert load_records(str(tmp_path / "rows.parquet.gz"), "preference", columns=MAPPING) == CANONICAL
    path.write_bytes(whole[:-40])
    with pytest.raises(DataError, match=r"rows\.parquet: not a readable parquet file"):
        load_records(str(path), "preference", columns=MAPPING)
