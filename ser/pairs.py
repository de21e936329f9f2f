"""The human-labelled preference sets SER starts from, and their split into seed / unlabelled pool / held-out.

Sources (``ser.dataset``): the four hub sets of the paper [PAPER] with their field mapping, plus the two small real
sets of the shared data folder (``hh_local``: HH-RLHF test rows, ``sst2``: SST-2 sentiment pairs) and ``jsonl``
(canonical records). Every source yields canonical records ``{prompt: str, chosen, rejected}``; the prompt is
flattened to text because SER's RM reads ``"Question: {q}\\n\\nAnswer: {a}"`` [CODE].
A hub set reads a local copy of its hub files when ``ser.data_path`` is one (a .jsonl/.json/.parquet file, or a folder
holding ``<split>.<ext>``), else the hub; the row schema of each set and its source sit above its mapper.

The pool hides its labels: a pool item is ``{id, prompt, response_a, response_b}`` with the two responses in a
seeded random order, and the human answer (+1 when a was chosen, −1 when b was) lives in a separate file that only
the agreement metric reads.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from common.artifacts import read_jsonl
from common.config import UserError
from common.data import BadRows, HHRowError, check_on_bad_row, parse_hh_pair, read_table, resolve_local
from common.hub_data import hub_id, load_hub, local_source
from common.preference_sets import hh_rlhf_pairs, sst2_sentiment_pairs

_SPEAKER = {"user": "Human", "assistant": "Assistant", "system": "System"}


def question_text(prompt: str | list[dict]) -> str:
    """A prompt as the text that fills ``{q}``: a str as is, chat messages as 'Human: ...\\n\\nAssistant: ...'."""
    if isinstance(prompt, str):
        return prompt
    return "\n\n".join(f"{_SPEAKER.get(m['role'], m['role'])}: {m['content']}" for m in prompt)


class _RowError(Exception):
    """A hub row that does not have the documented schema; ``load_pairs`` adds the set, file and row number."""


def _field(row: dict, name: str) -> Any:
    if not isinstance(row, dict) or name not in row or row[name] is None:
        fields = sorted(row) if isinstance(row, dict) else type(row).__name__
        raise _RowError(f"no field {name!r} (fields there: {fields})")
    return row[name]


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise _RowError(f"field {name!r}: expected a string, got {type(value).__name__}")
    return value


def _items(value: Any, name: str) -> list:
    """A list column as a list: parquet read through pandas gives numpy arrays, json gives lists."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return list(value)
    raise _RowError(f"field {name!r}: expected a list, got {type(value).__name__}")


def _last_assistant(messages: Any, name: str) -> str:
    for m in reversed(_items(messages, name)):
        if isinstance(m, dict) and m.get("role") == "assistant":
            return _text(m.get("content"), f"{name}[].content")
    raise _RowError(f"field {name!r}: no message of role 'assistant'")


# Anthropic/hh-rlhf, splits train (160,800 rows) / test (8,552), four data_dir subsets (helpful-base, ...):
# {chosen: str, rejected: str}, each a whole dialogue "\n\nHuman: ...\n\nAssistant: ..." that ends with the
# compared reply. [DOC] https://huggingface.co/datasets/Anthropic/hh-rlhf ("each line of the jsonl files contains
# a pair of texts, one 'chosen' and one 'rejected'"); [CODE] https://github.com/anthropics/hh-rlhf
def _hh_row(row: dict) -> dict:
    """The dialogue before the final reply as the prompt, through the project's one HH parser
    (``common.data.parse_hh_pair``, the same as ``hh_local``): a row that gives no pair (dialogues that differ
    before the final reply, an empty or identical reply, a transcript ending with the Human, ...) raises
    HHRowError with its reason, which ``load_pairs`` counts or, with ``on_bad_row: error``, reports."""
    pair = parse_hh_pair(row)
    return {"prompt": pair["prompt"], "chosen": pair["chosen"], "rejected": pair["rejected"]}


# HuggingFaceH4/ultrafeedback_binarized, splits train_prefs (61,135) / test_prefs (2,000) (+ *_sft, *_gen):
# {prompt: str, prompt_id, chosen: [{role, content}], rejected: [{role, content}], messages, score_chosen: float,
# score_rejected: float}; chosen/rejected are [user prompt, assistant reply].
# [DOC] https://huggingface.co/datasets/HuggingFaceH4/ultrafeedback_binarized (README dataset_info)
def _h4_messages_row(row: dict) -> dict | None:
    """``prompt`` and the last assistant turn of each side; the scores are not needed (chosen is the label)."""
    prompt = _text(_field(row, "prompt"), "prompt")
    chosen = _last_assistant(_field(row, "chosen"), "chosen").strip()
    rejected = _last_assistant(_field(row, "rejected"), "rejected").strip()
    if not chosen or not rejected or chosen == rejected:
        return None
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


# HuggingFaceH4/summarize-from-feedback, splits train (92,858) / validation (86,086): the `comparisons` config of
# openai/summarize_from_feedback with its columns renamed: meta {id, post, title, subreddit, site, article},
# responses [{text, policy, note}] x 2, label (index of the preferred response), worker, batch, split, extra.
# [CODE] public loaders of https://huggingface.co/datasets/HuggingFaceH4/summarize-from-feedback index
# `responses[label]["text"]`, `responses[1 - label]`, `meta["post"/"title"/"subreddit"/"id"]`; [DOC] the OpenAI
# layout it renames (info/summaries/choice): https://huggingface.co/datasets/openai/summarize_from_feedback and
# https://github.com/openai/summarize-from-feedback#human-feedback-data. Both layouts are read.
_SUMMARIZE_LAYOUTS = (("meta", "responses", "label"), ("info", "summaries", "choice"))


def _summarize_row(row: dict) -> dict | None:
    """The post in OpenAI's TL;DR query format [CODE: summarize-from-feedback's query template "SUBREDDIT: r/...
    TITLE: ... POST: ... TL;DR:"] (CNN/DM rows of the validation split carry ``article`` instead of a post);
    chosen = ``responses[label]``. Pairs with identical summaries are skipped."""
    meta_key, resp_key, label_key = next((lay for lay in _SUMMARIZE_LAYOUTS if isinstance(row, dict)
                                          and lay[0] in row), _SUMMARIZE_LAYOUTS[0])
    meta, label = _field(row, meta_key), _field(row, label_key)
    texts = [_text(_field(r, "text"), f"{resp_key}[].text").strip() for r in _items(_field(row, resp_key), resp_key)]
    if len(texts) != 2 or label not in (0, 1):
        raise _RowError(f"expected two {resp_key!r} and {label_key!r} 0 or 1, got {len(texts)} and {label!r}")
    if not isinstance(meta, dict):
        raise _RowError(f"field {meta_key!r}: expected a mapping, got {type(meta).__name__}")
    body = meta.get("post") or meta.get("article")
    if not body:
        raise _RowError(f"field {meta_key!r}: neither 'post' nor 'article' is set")
    head = [f"SUBREDDIT: r/{meta['subreddit']}"] if meta.get("subreddit") else []
    head += [f"TITLE: {meta['title']}"] if meta.get("title") else []
    head += [f"{'POST' if meta.get('post') else 'ARTICLE'}: {body.strip()}"]
    chosen, rejected = texts[int(label)], texts[1 - int(label)]
    if not chosen or not rejected or chosen == rejected:
        return None
    return {"prompt": "\n\n".join(head) + "\n\nTL;DR:", "chosen": chosen, "rejected": rejected}


# HuggingFaceH4/stack-exchange-preferences, split train only (~10.8M questions, every one with >= 2 answers):
# {qid, question: str (HTML), answers: [{answer_id, author, author_id, author_profile, pm_score: int,
# selected: bool, text: str (HTML)}], date, metadata}; pm_score = round(log2(1 + upvotes)) (+1 if accepted,
# -1 if downvoted). [DOC] https://huggingface.co/datasets/HuggingFaceH4/stack-exchange-preferences (card,
# "the data will likely need to be filtered more due to matching scores"); [CODE] its binarization script reads
# `d["question"]`, `d["answers"]`, `a["pm_score"]`, `a["text"]`.
def _stackexchange_rows(row: dict) -> list[dict]:
    """One pair per question: the first highest- vs the first lowest-pm_score answer; questions whose answers all
    tie (or with < 2 answers, or identical texts) give no pair [GUESS: upstream's pairing is not published]."""
    question = _text(_field(row, "question"), "question")
    answers = _items(_field(row, "answers"), "answers")
    scored = [(_field(a, "pm_score"), _text(_field(a, "text"), "answers[].text")) for a in answers]
    if len(scored) < 2:
        return []
    best, worst = max(scored, key=lambda s: s[0]), min(scored, key=lambda s: s[0])
    if best[0] == worst[0] or best[1] == worst[1]:
        return []
    return [{"prompt": question, "chosen": best[1], "rejected": worst[1]}]


@dataclass(frozen=True)
class HubSet:
    hub_id: str
    split: str
    to_pairs: Callable[[dict], list[dict]]


def _one(fn: Callable[[dict], dict | None]) -> Callable[[dict], list[dict]]:
    return lambda row: [r for r in [fn(row)] if r is not None]


HUB_SETS: dict[str, HubSet] = {
    "hh": HubSet(hub_id("hh-rlhf"), "train", _one(_hh_row)),
    "ultrafeedback": HubSet(hub_id("ultrafeedback"), "train_prefs", _one(_h4_messages_row)),
    "summarize": HubSet(hub_id("summarize"), "train", _one(_summarize_row)),
    "stackexchange": HubSet(hub_id("stackexchange"), "train", _stackexchange_rows),
}
LOCAL_SETS = ("hh_local", "sst2", "jsonl")


def load_pairs(dataset: str, path: str | None = None, split: str | None = None, limit: int | None = None,
               seed: int = 0, on_bad_row: str = "skip", stats: dict | None = None) -> list[dict]:
    """Canonical preference records with a text prompt, at most ``limit`` of them (seeded shuffle first).

    A hub set reads ``path`` when it is a local copy (a .jsonl/.json/.parquet file, or a folder holding
    ``<split>.<ext>``, e.g. ``train_prefs.parquet``), else the hub id ``path or HubSet.hub_id``; the same row
    mapper runs on both.

    HH-RLHF rows (``hh``, ``hh_local``) that give no pair are skipped, counted per reason
    (``common.data.HH_SKIP_REASONS``) and reported in one warning line; ``on_bad_row: error`` stops at the first
    malformed one with a UserError naming ``file:row`` and the reason. ``stats``, when given, receives
    ``{"rows", "kept", "skipped": {reason: count}}`` for the HH sets (rows read, pairs before ``limit``).
    """
    check_on_bad_row(on_bad_row, f"ser.dataset {dataset}")
    if dataset in HUB_SETS:
        records = _hub_pairs(dataset, path, split, limit, seed, on_bad_row, stats)
    elif dataset == "hh_local":
        records = hh_rlhf_pairs(_need(path, dataset), n=None, seed=seed, on_bad_row=on_bad_row, stats=stats)
    elif dataset == "sst2":
        records = sst2_sentiment_pairs(_need(path, dataset), n_pairs=limit or 2000, seed=seed, split=split or "train")
    elif dataset == "jsonl":
        records = read_jsonl(_need(path, dataset))
    else:
        raise UserError(f"ser.dataset {dataset!r} is not one of {sorted(HUB_SETS) + list(LOCAL_SETS)}")
    random.Random(seed).shuffle(records)
    out = [{"prompt": question_text(r["prompt"]), "chosen": r["chosen"], "rejected": r["rejected"]}
           for r in records[:limit]]
    if not out:
        raise UserError(f"ser.dataset {dataset!r} ({path or 'hub'}) produced no preference pairs")
    return out


def _hub_pairs(dataset: str, path: str | None, split: str | None, limit: int | None, seed: int,
               on_bad_row: str = "skip", stats: dict | None = None) -> list[dict]:
    spec = HUB_SETS[dataset]
    split = split or spec.split
    source = path or spec.hub_id
    local = resolve_local(source, split)  # DataError (a UserError) names the folder and the missing split file
    if local is not None:
        rows, where = read_table(local), str(local)
    else:
        rows, where = _load_hub_split(source, split), f"{source} split {split!r}"
    order = list(range(len(rows)))
    if limit is not None:  # mappers skip some rows: read 3x the pairs wanted, a seeded random subset
        random.Random(seed).shuffle(order)
        order = order[:3 * limit]
    picked = rows.select(order) if hasattr(rows, "select") else [rows[i] for i in order]
    records, bad = [], BadRows(where, on_bad_row)
    for i, row in zip(order, picked):
        try:
            records += spec.to_pairs(row)
        except HHRowError as exc:  # hh rows: skipped and counted per reason (or fatal with on_bad_row: error)
            bad.skip(i + 1, exc)
        except _RowError as exc:
            raise UserError(f"ser.dataset {dataset} row {i + 1} of {where}: {exc}") from None
    bad.report(len(order), len(records), stats)
    if not records:
        counts = f" (skipped: {bad.counts})" if bad.rows else ""
        raise UserError(f"ser.dataset {dataset} ({where}): 0 preference pairs from {len(order)} rows{counts}; every "
                        "row was skipped (identical or tied responses, fewer than 2 answers, malformed HH rows); "
                        "check the set and split")
    return records


def _load_hub_split(source: str, split: str):
    try:
        return load_hub(source, None, split)
    except UserError as exc:
        raise UserError(f"{exc}; or pass a local copy as ser.data_path") from None


def _need(path: str | None, dataset: str) -> str:
    if not path:
        raise UserError(f"ser.dataset {dataset!r} reads a local file or folder; set ser.data_path")
    return local_source(path)  # mirror:<name>/... -> the shared mirror's copy


@dataclass
class SERSplit:
    seed: list[dict]  # labelled: {id, prompt, chosen, rejected}
    pool: list[dict]  # unlabelled: {id, prompt, response_a, response_b}
    pool_labels: dict[str, int]  # hidden: id -> +1 (a is the human choice) or -1
    heldout: list[dict]  # labelled, never trained on

    def pool_as_labelled(self) -> list[dict]:
        """The pool with its human labels restored: the 100%-label baseline trains on seed + this."""
        return [_orient(p, self.pool_labels[p["id"]]) for p in self.pool]


def _orient(item: dict, label: int) -> dict:
    win, lose = (item["response_a"], item["response_b"]) if label > 0 else (item["response_b"], item["response_a"])
    return {"id": item["id"], "prompt": item["prompt"], "chosen": win, "rejected": lose}


def split_seed_pool_heldout(records: list[dict], seed_fraction: float, heldout_size: int, seed: int) -> SERSplit:
    """Held-out first (``heldout_size`` pairs), then ``seed_fraction`` of the rest labelled, the remainder the pool."""
    if not 0.0 < seed_fraction < 1.0:
        raise UserError(f"ser.seed_fraction must lie in (0, 1); got {seed_fraction}")
    if not 0 < heldout_size < len(records) - 1:
        raise UserError(f"ser.heldout_size={heldout_size} must be positive and leave training pairs; the dataset "
                        f"has {len(records)} pairs")
    rng = random.Random(seed)
    order = list(range(len(records)))
    rng.shuffle(order)
    rows: list[dict[str, Any]] = [dict(records[i], id=f"p{i}") for i in order]
    heldout, train = rows[:heldout_size], rows[heldout_size:]
    n_seed = max(1, round(seed_fraction * len(train)))
    labelled, unlabelled = train[:n_seed], train[n_seed:]
    pool, labels = [], {}
    for r in unlabelled:
        a_is_chosen = rng.random() < 0.5
        a, b = (r["chosen"], r["rejected"]) if a_is_chosen else (r["rejected"], r["chosen"])
        pool.append({"id": r["id"], "prompt": r["prompt"], "response_a": a, "response_b": b})
        labels[r["id"]] = 1 if a_is_chosen else -1
    return SERSplit(seed=labelled, pool=pool, pool_labels=labels, heldout=heldout)
