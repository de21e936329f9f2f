"""The human-labelled preference sets SER starts from, and their split into seed / unlabelled pool / held-out.

Sources (``ser.dataset``): the four hub sets of the paper [PAPER] with their field mapping, plus the two small real
sets of the shared data folder (``hh_local``: HH-RLHF test rows, ``sst2``: SST-2 sentiment pairs) and ``jsonl``
(canonical records). Every source yields canonical records ``{prompt: str, chosen, rejected}``; the prompt is
flattened to text because SER's RM reads ``"Question: {q}\\n\\nAnswer: {a}"`` [CODE].

The pool hides its labels: a pool item is ``{id, prompt, response_a, response_b}`` with the two responses in a
seeded random order, and the human answer (+1 when a was chosen, −1 when b was) lives in a separate file that only
the agreement metric reads.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from common.artifacts import read_jsonl
from common.config import UserError
from common.preference_sets import hh_rlhf_pairs, split_hh_text, sst2_sentiment_pairs

_SPEAKER = {"user": "Human", "assistant": "Assistant", "system": "System"}


def question_text(prompt: str | list[dict]) -> str:
    """A prompt as the text that fills ``{q}``: a str as is, chat messages as 'Human: ...\\n\\nAssistant: ...'."""
    if isinstance(prompt, str):
        return prompt
    return "\n\n".join(f"{_SPEAKER.get(m['role'], m['role'])}: {m['content']}" for m in prompt)


def _last_assistant(messages: list[dict]) -> str:
    return next(m["content"] for m in reversed(messages) if m["role"] == "assistant")


def _hh_row(row: dict) -> dict | None:
    prompt_c, chosen = split_hh_text(row["chosen"])
    prompt_r, rejected = split_hh_text(row["rejected"])
    if prompt_c != prompt_r or not chosen or not rejected or chosen == rejected:
        return None
    return {"prompt": prompt_c, "chosen": chosen, "rejected": rejected}


def _h4_messages_row(row: dict) -> dict | None:
    """H4 binarized format: ``prompt`` str, ``chosen``/``rejected`` message lists ending with the reply."""
    chosen, rejected = _last_assistant(row["chosen"]), _last_assistant(row["rejected"])
    if not chosen or not rejected or chosen == rejected:
        return None
    return {"prompt": row["prompt"], "chosen": chosen, "rejected": rejected}


def _summarize_row(row: dict) -> dict | None:
    """OpenAI comparisons layout: ``info.post`` (+ title), ``summaries[2].text``, ``choice`` = preferred index."""
    if "summaries" not in row:  # the H4 re-export in binarized form
        return _h4_messages_row(row)
    info = row["info"]
    post = f"{info.get('title') or ''}\n\n{info.get('post') or info.get('article') or ''}".strip()
    texts = [s["text"].strip() for s in row["summaries"]]
    choice = int(row["choice"])
    if texts[0] == texts[1]:
        return None
    return {"prompt": f"Summarize this post.\n\n{post}", "chosen": texts[choice], "rejected": texts[1 - choice]}


def _stackexchange_rows(row: dict) -> list[dict]:
    """One pair per question: the highest- vs the lowest-scored answer (pm_score), skipping ties [GUESS]."""
    answers = sorted(row["answers"], key=lambda a: a["pm_score"])
    if len(answers) < 2 or answers[0]["pm_score"] == answers[-1]["pm_score"]:
        return []
    return [{"prompt": row["question"], "chosen": answers[-1]["text"], "rejected": answers[0]["text"]}]


@dataclass(frozen=True)
class HubSet:
    hub_id: str
    split: str
    to_pairs: Callable[[dict], list[dict]]


def _one(fn: Callable[[dict], dict | None]) -> Callable[[dict], list[dict]]:
    return lambda row: [r for r in [fn(row)] if r is not None]


HUB_SETS: dict[str, HubSet] = {
    "hh": HubSet("Anthropic/hh-rlhf", "train", _one(_hh_row)),
    "ultrafeedback": HubSet("HuggingFaceH4/ultrafeedback_binarized", "train_prefs", _one(_h4_messages_row)),
    "summarize": HubSet("HuggingFaceH4/summarize-from-feedback", "train", _one(_summarize_row)),
    "stackexchange": HubSet("HuggingFaceH4/stack-exchange-preferences", "train", _stackexchange_rows),
}
LOCAL_SETS = ("hh_local", "sst2", "jsonl")


def load_pairs(dataset: str, path: str | None = None, split: str | None = None, limit: int | None = None,
               seed: int = 0) -> list[dict]:
    """Canonical preference records with a text prompt, at most ``limit`` of them (seeded shuffle first)."""
    if dataset in HUB_SETS:
        spec = HUB_SETS[dataset]
        from datasets import load_dataset

        rows = load_dataset(path or spec.hub_id, split=split or spec.split)
        if limit is not None:
            rows = rows.shuffle(seed=seed).select(range(min(len(rows), 3 * limit)))
        records = [pair for row in rows for pair in spec.to_pairs(row)]
    elif dataset == "hh_local":
        records = hh_rlhf_pairs(_need(path, dataset), n=None, seed=seed)
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


def _need(path: str | None, dataset: str) -> str:
    if not path:
        raise UserError(f"ser.dataset {dataset!r} reads a local file or folder; set ser.data_path")
    return path


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
