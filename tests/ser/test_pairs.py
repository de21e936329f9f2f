"""The four hub sets of SER read from local copies in their documented hub schema: exact canonical records, the
rows each mapper skips, the clear errors; and the hh mapper on real HH-RLHF rows."""

import gzip
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from common.config import UserError
from common.data import HHRowError, load_records, read_table
from common.preference_sets import hh_rlhf_pairs
from ser.pairs import _hh_row, load_pairs, question_text

HH_MIXED = Path(__file__).resolve().parents[1] / "data" / "hh_mixed.jsonl"  # 10 rows, each with a "case" field
HH_MIXED_STATS = {"rows": 10, "kept": 4, "skipped": {"unparseable": 2, "no_final_assistant": 1, "prompt_mismatch": 1,
                                                     "empty_reply": 1, "identical_replies": 1}}


def _write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _by_chosen(records):
    return {r["chosen"]: r for r in records}


# --- Anthropic/hh-rlhf: {chosen, rejected}, two whole dialogues ----------------------------------------------

HH_ROWS = [
    {"chosen": "\n\nHuman: How do I keep my cat off the kitchen counter?\n\nAssistant: Cats dislike sticky "
               "surfaces, so double-sided tape along the edge usually works within a week.",
     "rejected": "\n\nHuman: How do I keep my cat off the kitchen counter?\n\nAssistant: Just yell at it."},
    {"chosen": "\n\nHuman: Can you recommend a book for learning Python?\n\nAssistant: Sure, are you new to "
               "programming?\n\nHuman: Yes, a complete beginner.\n\nAssistant: Try \"Automate the Boring Stuff "
               "with Python\"; it is free to read online.",
     "rejected": "\n\nHuman: Can you recommend a book for learning Python?\n\nAssistant: Sure, are you new to "
                 "programming?\n\nHuman: Yes, a complete beginner.\n\nAssistant: Read the documentation."},
    # identical final replies: no preference
    {"chosen": "\n\nHuman: What is the capital of Australia?\n\nAssistant: Canberra.",
     "rejected": "\n\nHuman: What is the capital of Australia?\n\nAssistant: Canberra."},
    # the dialogues differ before the final reply: the replies answer different prompts
    {"chosen": "\n\nHuman: Tell me a joke.\n\nAssistant: Why did the scarecrow win an award?\n\nHuman: Why?"
               "\n\nAssistant: He was outstanding in his field.",
     "rejected": "\n\nHuman: Tell me a joke.\n\nAssistant: Knock knock.\n\nHuman: Who's there?\n\nAssistant: "
                 "Lettuce."},
]


def test_hh_local_copy_maps_single_and_multi_turn_and_skips_ties_and_mismatched_prompts(tmp_path):
    _write_jsonl(tmp_path / "hh" / "train.jsonl", HH_ROWS)
    got = _by_chosen(load_pairs("hh", path=str(tmp_path / "hh")))
    assert got == {
        "Cats dislike sticky surfaces, so double-sided tape along the edge usually works within a week.": {
            "prompt": "Human: How do I keep my cat off the kitchen counter?",
            "chosen": "Cats dislike sticky surfaces, so double-sided tape along the edge usually works within a week.",
            "rejected": "Just yell at it."},
        "Try \"Automate the Boring Stuff with Python\"; it is free to read online.": {
            "prompt": "Human: Can you recommend a book for learning Python?\n\nAssistant: Sure, are you new to "
                      "programming?\n\nHuman: Yes, a complete beginner.",
            "chosen": "Try \"Automate the Boring Stuff with Python\"; it is free to read online.",
            "rejected": "Read the documentation."},
    }


def _final_reply(text):
    turns = re.split(r"\n\nAssistant:", re.split(r"\n\nHuman:", text)[-1])[1:]
    return "\n\n".join(t.strip() for t in turns)


def _mapped_or_none(row):
    try:
        return _hh_row(row)
    except HHRowError:
        return None


def test_every_hh_loader_gives_the_same_pairs_and_counts_on_one_file_with_malformed_rows(tmp_path):
    """load_records(source_format hh_rlhf), hh_rlhf_pairs, and ser's hh / hh_local sets: one parser, one result."""
    sub = tmp_path / "hh-rlhf" / "helpful-base"
    sub.mkdir(parents=True)
    with HH_MIXED.open("rb") as src, gzip.open(sub / "test.jsonl.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    (tmp_path / "hh-rlhf" / "harmless-base").mkdir()  # hh_local reads both subsets; this one is empty
    (tmp_path / "hh-rlhf" / "harmless-base" / "test.jsonl.gz").write_bytes(gzip.compress(b""))
    results = {}
    stats = {name: {} for name in ("load_records", "hh_rlhf_pairs", "ser hh", "ser hh_local")}
    results["load_records"] = load_records(str(HH_MIXED), "preference", source_format="hh_rlhf",
                                           stats=stats["load_records"])
    results["hh_rlhf_pairs"] = hh_rlhf_pairs(tmp_path, subsets=["helpful-base"], stats=stats["hh_rlhf_pairs"])
    results["ser hh"] = load_pairs("hh", path=str(HH_MIXED), stats=stats["ser hh"])
    results["ser hh_local"] = load_pairs("hh_local", path=str(tmp_path), stats=stats["ser hh_local"])
    as_text = {name: {(question_text(r["prompt"]), r["chosen"], r["rejected"]) for r in records}
               for name, records in results.items()}
    expected = {(question_text(r["prompt"]), r["chosen"], r["rejected"]) for r in results["load_records"]}
    assert len(expected) == 4
    assert as_text == {name: expected for name in results}
    assert stats == {name: HH_MIXED_STATS for name in stats}
    assert ("Human: Hello\n\nAre you there?", "Yes, I am here.", "No.") in expected


def test_ser_hh_sets_on_bad_row_error_name_the_file_row_and_reason(tmp_path):
    with pytest.raises(UserError, match=r"hh_mixed\.jsonl:3: field 'rejected': .*\[no_final_assistant\]"):
        load_pairs("hh", path=str(HH_MIXED), on_bad_row="error")
    with pytest.raises(UserError, match="on_bad_row 'strict' is not one of"):
        load_pairs("hh", path=str(HH_MIXED), on_bad_row="strict")


def test_hh_mapper_on_real_rows_agrees_with_hh_local(shared_data):
    folder = shared_data / "hh-rlhf" / "helpful-base"
    rows = read_table(folder / "test.jsonl.gz")[:400]
    mapped = [(row, _mapped_or_none(row)) for row in rows]
    kept = [(row, rec) for row, rec in mapped if rec is not None]
    assert len(kept) >= 0.95 * len(rows)
    for row, rec in kept:
        prompt = question_text(rec["prompt"])
        assert rec["chosen"] != rec["rejected"] and rec["chosen"] and rec["rejected"]
        assert prompt.startswith("Human: ")
        # the prompt stops before the final reply: its last speaker is the human, and both transcripts hold it
        assert re.findall(r"(?:^|\n\n)(Human|Assistant): ", prompt)[-1] == "Human"
        assert prompt.split("\n\nAssistant: ")[0][7:].strip() in row["chosen"]
        # the reply is every Assistant turn after the last Human one (two in a row, as in 35 shared rows, are joined)
        assert rec["chosen"] == _final_reply(row["chosen"]) and rec["rejected"] == _final_reply(row["rejected"])
    exact = sum("\n\n" + question_text(rec["prompt"]) + "\n\nAssistant: " + rec["chosen"] == row["chosen"]
                for row, rec in kept)
    assert exact >= 0.99 * len(kept)
    # the whole split through load_pairs gives exactly the pairs of the shared-data loader (hh_local)
    hub_copy = {tuple(r.values()) for r in load_pairs("hh", path=str(folder), split="test")}
    local = {(question_text(r["prompt"]), r["chosen"], r["rejected"])
             for r in hh_rlhf_pairs(shared_data, subsets=("helpful-base",))}
    assert hub_copy == local and len(local) > 2300
    # and so does load_records with source_format hh_rlhf, on both shared test splits
    for subset in ("helpful-base", "harmless-base"):
        stats_ser, stats_lr = {}, {}
        ser_pairs = {tuple(r.values()) for r in load_pairs("hh", path=str(shared_data / "hh-rlhf" / subset),
                                                           split="test", stats=stats_ser)}
        records = load_records(str(shared_data / "hh-rlhf" / subset), "preference", split="test",
                               source_format="hh_rlhf", stats=stats_lr)
        assert ser_pairs == {(question_text(r["prompt"]), r["chosen"], r["rejected"]) for r in records}
        assert stats_ser == stats_lr and stats_lr["kept"] == len(records)


# --- HuggingFaceH4/ultrafeedback_binarized: prompt, chosen/rejected message lists, scores ----------------------

def _uf_row(pid, prompt, chosen, rejected, score_chosen, score_rejected):
    def conv(reply):
        return [{"content": prompt, "role": "user"}, {"content": reply, "role": "assistant"}]

    return {"prompt": prompt, "prompt_id": pid, "chosen": conv(chosen), "rejected": conv(rejected),
            "messages": conv(chosen), "score_chosen": score_chosen, "score_rejected": score_rejected}


UF_ROWS = [
    _uf_row("a1", "Convert 10 kilometres to miles.", "10 km is about 6.21 miles (1 km = 0.621371 mi).",
            "10 km is 16 miles.", 9.0, 3.0),
    _uf_row("b2", "Write a haiku about autumn.", "Crisp leaves drift and fall\nthe maple lets go of red\n"
            "cold wind hums its song", "Autumn is a season.", 8.5, 4.0),
    # the same completion on both sides (a tie the binarization kept): no preference
    _uf_row("c3", "What is 2 + 2?", "4", "4", 10.0, 10.0),
]


def test_ultrafeedback_parquet_copy_maps_last_assistant_turn_and_skips_identical_replies(tmp_path):
    (tmp_path / "uf").mkdir()
    pd.DataFrame(UF_ROWS).to_parquet(tmp_path / "uf" / "train_prefs.parquet")  # the hub's own file format
    got = _by_chosen(load_pairs("ultrafeedback", path=str(tmp_path / "uf")))
    assert got == {
        "10 km is about 6.21 miles (1 km = 0.621371 mi).": {
            "prompt": "Convert 10 kilometres to miles.", "chosen": "10 km is about 6.21 miles (1 km = 0.621371 mi).",
            "rejected": "10 km is 16 miles."},
        "Crisp leaves drift and fall\nthe maple lets go of red\ncold wind hums its song": {
            "prompt": "Write a haiku about autumn.",
            "chosen": "Crisp leaves drift and fall\nthe maple lets go of red\ncold wind hums its song",
            "rejected": "Autumn is a season."},
    }
    # a jsonl copy of the test split gives the same records
    _write_jsonl(tmp_path / "uf" / "test_prefs.jsonl", UF_ROWS)
    assert _by_chosen(load_pairs("ultrafeedback", path=str(tmp_path / "uf"), split="test_prefs")) == got


def test_ultrafeedback_row_without_chosen_names_row_and_field(tmp_path):
    rows = [UF_ROWS[0], {k: v for k, v in UF_ROWS[1].items() if k != "chosen"}]
    _write_jsonl(tmp_path / "train_prefs.jsonl", rows)
    with pytest.raises(UserError, match=r"ultrafeedback row 2 of .*train_prefs\.jsonl: no field 'chosen'") as exc:
        load_pairs("ultrafeedback", path=str(tmp_path))
    assert "\n" not in str(exc.value)


def test_missing_split_file_names_folder_and_split(tmp_path):
    _write_jsonl(tmp_path / "train_prefs.jsonl", UF_ROWS)
    with pytest.raises(UserError, match=r"no file for split 'test_prefs'") as exc:
        load_pairs("ultrafeedback", path=str(tmp_path), split="test_prefs")
    assert str(tmp_path) in str(exc.value) and "\n" not in str(exc.value)


# --- HuggingFaceH4/summarize-from-feedback: meta, responses[2], label ----------------------------------------

def _sf_row(pid, title, post, subreddit, texts, label, split="train"):
    return {"meta": {"id": pid, "post": post, "title": title, "subreddit": subreddit, "site": None, "article": None},
            "responses": [{"text": t, "policy": "sup1", "note": None} for t in texts], "label": label,
            "worker": "qo6WIyEh27cwAjWpA3Q60J7NaDxzQJ", "batch": "batch3", "split": split,
            "extra": {"confidence": None}}


SF_ROWS = [
    _sf_row("t3_34xale", "Mother [51] not speaking to me [21] because of a trip I am planning",
            "My boyfriend and I are long distance. We have a trip planned this summer.", "relationships",
            [" Mum is mad at me for not flying on my own trip to meet my boyfriend.",
             " I made sure my mother is comfortable with the trip and now she is mad because I booked it."], 1),
    _sf_row("t3_1a2b3c", "My landlord kept my whole deposit", "I moved out in May, cleaned everything, and he kept "
            "all $1,200 citing 'wear and tear'.", "legaladvice",
            [" Landlord kept my full deposit for normal wear and tear; can I get it back?",
             " Landlord bad."], 0),
    # both summaries the same text (up to whitespace): no preference
    _sf_row("t3_9z9z9z", "Lost my keys", "I lost my keys at the park.", "tifu",
            [" Lost my keys.", "Lost my keys. "], 0),
]


def test_summarize_local_copy_builds_tldr_prompt_and_skips_identical_summaries(tmp_path):
    _write_jsonl(tmp_path / "train.jsonl", SF_ROWS)
    got = _by_chosen(load_pairs("summarize", path=str(tmp_path / "train.jsonl")))
    assert got == {
        "I made sure my mother is comfortable with the trip and now she is mad because I booked it.": {
            "prompt": "SUBREDDIT: r/relationships\n\nTITLE: Mother [51] not speaking to me [21] because of a trip I am "
                      "planning\n\nPOST: My boyfriend and I are long distance. We have a trip planned this summer."
                      "\n\nTL;DR:",
            "chosen": "I made sure my mother is comfortable with the trip and now she is mad because I booked it.",
            "rejected": "Mum is mad at me for not flying on my own trip to meet my boyfriend."},
        "Landlord kept my full deposit for normal wear and tear; can I get it back?": {
            "prompt": "SUBREDDIT: r/legaladvice\n\nTITLE: My landlord kept my whole deposit\n\nPOST: I moved out in "
                      "May, cleaned everything, and he kept all $1,200 citing 'wear and tear'.\n\nTL;DR:",
            "chosen": "Landlord kept my full deposit for normal wear and tear; can I get it back?",
            "rejected": "Landlord bad."},
    }


def test_summarize_reads_the_openai_layout_and_cnndm_articles(tmp_path):
    openai_row = {"info": {"id": "t3_x", "post": "Body.", "title": "Title", "subreddit": "AskReddit", "site": None,
                           "article": None},
                  "summaries": [{"text": " A", "policy": "ref", "note": None},
                                {"text": " B", "policy": "sup2", "note": None}], "choice": 0,
                  "worker": "w", "batch": "batch5", "split": "train", "extra": {"confidence": 7}}
    cnndm = _sf_row("cnn-1", "Storm hits coast", None, None, [" Storm hits.", " Big storm hits the coast."], 1,
                    split="valid2")
    cnndm["meta"].update(site="cnn", article="A storm hit the coast on Monday.")
    _write_jsonl(tmp_path / "validation.jsonl", [openai_row, cnndm])
    got = _by_chosen(load_pairs("summarize", path=str(tmp_path), split="validation"))
    assert got["A"] == {"prompt": "SUBREDDIT: r/AskReddit\n\nTITLE: Title\n\nPOST: Body.\n\nTL;DR:", "chosen": "A",
                        "rejected": "B"}
    assert got["Big storm hits the coast."]["prompt"] == ("TITLE: Storm hits coast\n\nARTICLE: A storm hit the coast "
                                                          "on Monday.\n\nTL;DR:")


# --- HuggingFaceH4/stack-exchange-preferences: question, answers[{pm_score, text, ...}] --------------------------

def _answer(aid, pm_score, text, selected=False):
    return {"answer_id": aid, "author": "user", "author_id": aid * 7, "author_profile": f"https://x.com/users/{aid}",
            "pm_score": pm_score, "selected": selected, "text": text}


SE_ROWS = [
    {"qid": 101, "question": "<p>How do I reverse a list in Python?</p>",
     "answers": [_answer(1, 2, "<p>Use <code>reversed(xs)</code>.</p>"),
                 _answer(2, 5, "<p>Use <code>xs[::-1]</code> for a copy or <code>xs.reverse()</code> in "
                               "place.</p>", selected=True),
                 _answer(3, 0, "<p>Write a loop.</p>")],
     "date": "2012/03/01", "metadata": ["https://stackoverflow.com/questions/101"]},
    # every answer has the same pm_score: no preference
    {"qid": 102, "question": "<p>Tabs or spaces?</p>",
     "answers": [_answer(4, 1, "<p>Tabs.</p>"), _answer(5, 1, "<p>Spaces.</p>")],
     "date": "2013/05/02", "metadata": []},
    # a single answer: nothing to compare
    {"qid": 103, "question": "<p>What does <code>git stash</code> do?</p>",
     "answers": [_answer(6, 3, "<p>It shelves your changes.</p>")], "date": "2014/01/01", "metadata": []},
    # a tie at the top: the first of the best-scored answers is chosen
    {"qid": 104, "question": "<p>How do I exit vim?</p>",
     "answers": [_answer(7, 3, "<p>Type <code>:q</code>.</p>"), _answer(8, 3, "<p>Type <code>:wq</code>.</p>"),
                 _answer(9, -1, "<p>Unplug the computer.</p>")],
     "date": "2015/01/01", "metadata": []},
]


def test_stackexchange_local_copy_pairs_best_vs_worst_and_skips_ties_and_single_answers(tmp_path):
    _write_jsonl(tmp_path / "train.jsonl", SE_ROWS)
    got = load_pairs("stackexchange", path=str(tmp_path))
    assert sorted(got, key=lambda r: r["prompt"]) == [
        {"prompt": "<p>How do I exit vim?</p>", "chosen": "<p>Type <code>:q</code>.</p>",
         "rejected": "<p>Unplug the computer.</p>"},
        {"prompt": "<p>How do I reverse a list in Python?</p>",
         "chosen": "<p>Use <code>xs[::-1]</code> for a copy or <code>xs.reverse()</code> in place.</p>",
         "rejected": "<p>Write a loop.</p>"},
    ]
    assert len(load_pairs("stackexchange", path=str(tmp_path), limit=1)) == 1


def test_a_set_with_only_skipped_rows_reports_zero_pairs(tmp_path):
    _write_jsonl(tmp_path / "train.jsonl", SE_ROWS[1:3])
    with pytest.raises(UserError, match=r"stackexchange .*train\.jsonl\): 0 preference pairs from 2 rows") as exc:
        load_pairs("stackexchange", path=str(tmp_path))
    assert "\n" not in str(exc.value)


def test_malformed_hh_transcript_and_missing_answer_score_name_the_row(tmp_path):
    _write_jsonl(tmp_path / "hh" / "train.jsonl", [HH_ROWS[0], {"chosen": "Human: hi", "rejected": "Human: hi"}])
    stats = {}
    assert len(load_pairs("hh", path=str(tmp_path / "hh"), stats=stats)) == 1  # skipped and counted by default
    assert stats == {"rows": 2, "kept": 1, "skipped": {"no_final_assistant": 1}}
    with pytest.raises(UserError, match=r"hh/train\.jsonl:2: field 'chosen': the transcript ends with a Human turn"):
        load_pairs("hh", path=str(tmp_path / "hh"), on_bad_row="error")
    broken = json.loads(json.dumps(SE_ROWS[0]))
    del broken["answers"][1]["pm_score"]
    _write_jsonl(tmp_path / "se" / "train.jsonl", [broken])
    with pytest.raises(UserError, match=r"stackexchange row 1 of .*: no field 'pm_score'"):
        load_pairs("stackexchange", path=str(tmp_path / "se"))
