"""BBQ for paired fidelity comparisons: nested samples of whole context groups, cached per-item option scores, and
per-item outcomes that ``common.stats.paired_bootstrap`` compares between two models on the same items.

- **Sample.** The official release lists each context as a block of four items (``example_id`` 4g .. 4g+3: the
  ambiguous and the disambiguated context, each with its negative and non-negative question). ``sample_groups``
  draws whole blocks in one seeded order across the requested categories, so the first n items of a larger sample
  are the sample of n (nested: a cut run reuses what it scored), and the four items of a block share their prompt
  prefix (``option_logprobs(share_prompt=True, sort_prompts=True)`` then reads it once).
- **Score.** ``score_items`` gives each item's three option log-likelihoods by the same option scoring as
  ``common.eval.bbq`` mc mode (``mc_prompt``, each option's text as the assistant's reply; argmax = the answer),
  appended to a jsonl cache per model as chunks finish; a rerun scores only what is missing.
- **Outcomes.** ``outcomes`` turns them into per-item 0/1 values: ``correct``; ``unknown`` (answered UNKNOWN);
  ``biased`` (answered the biased option, items whose biased option is known); and the option distribution
  (softmax of the three log-likelihoods) that ``option_kl`` compares between two models.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common.artifacts import iter_jsonl
from common.eval.bbq import load_bbq, mc_prompt
from common.eval.option_scoring import pick_option

GROUP_SIZE = 4


def group_key(item: dict) -> tuple[str, int]:
    return item["category"], item["example_id"] // GROUP_SIZE


def sample_groups(data: str, categories: Sequence[str], n_items: int | None, seed: int = 0
                  ) -> tuple[list[dict], dict[str, Any]]:
    """About ``n_items`` items (whole groups of four; None = every item) from ``categories``, in a seeded group order
    that does not depend on ``n_items``; plus load_bbq's info."""
    items, info = load_bbq(data, categories)
    groups: dict[tuple[str, int], list[dict]] = {}
    for it in items:
        groups.setdefault(group_key(it), []).append(it)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    out: list[dict] = []
    for key in keys:
        if n_items is not None and len(out) >= n_items:
            break
        out.extend(sorted(groups[key], key=lambda it: it["example_id"]))
    info = {**info, "n_groups": len({group_key(it) for it in out}), "sample_seed": seed,
            "categories": {c: sum(it["category"] == c for it in out) for c in categories or sorted(info["categories"])}}
    return out, info


def _key(item: dict) -> str:
    return f"{item['category']}:{item['example_id']}"


def score_items(model_path: str, items: list[dict], cache_path: str | Path, template: str = "tokenizer",
                dtype: str = "float32", chunk: int = 64, desc: str = "bbq") -> list[list[float]]:
    """Each item's option log-likelihoods (summed over the option's tokens) under ``model_path``; cached in
    ``cache_path`` (one line per item), appended chunk by chunk in the items' order."""
    from tqdm.auto import tqdm

    from common.eval.option_scoring import option_logprobs

    cache = Path(cache_path)
    done: dict[str, list[float]] = {}
    if cache.exists():
        done = {r["key"]: r["logprobs"] for r in iter_jsonl(cache, tolerate_torn_tail=True)}
    todo = [it for it in items if _key(it) not in done]
    if todo:
        from common.models import load_causal_lm, load_tokenizer

        tokenizer = load_tokenizer(model_path)
        model = load_causal_lm(model_path, dtype)
        cache.parent.mkdir(parents=True, exist_ok=True)
        with cache.open("a") as fh:
            for start in tqdm(range(0, len(todo), chunk), desc=f"{desc} ({len(todo)} items)"):
                part = todo[start:start + chunk]
                scores = option_logprobs(model, tokenizer, [mc_prompt(it) for it in part],
                                         [it["options"] for it in part], template, desc=None, share_prompt=True,
                                         sort_prompts=True)
                for it, s in zip(part, scores):
                    done[_key(it)] = [lp for lp, _ in s]
                    fh.write(json.dumps({"key": _key(it), "logprobs": done[_key(it)]}) + "\n")
                fh.flush()
    return [done[_key(it)] for it in items]


def softmax(logprobs: Sequence[float]) -> list[float]:
    top = max(logprobs)
    w = [math.exp(x - top) for x in logprobs]
    return [x / sum(w) for x in w]


def outcomes(items: list[dict], logprobs: list[list[float]]) -> list[dict]:
    """Per item: pred (argmax option), correct, unknown (answered UNKNOWN), biased (None when the item's biased
    option is unknown), probs (the option distribution)."""
    rows = []
    for it, lps in zip(items, logprobs):
        pred = pick_option([(lp, 1) for lp in lps])
        rows.append({"key": _key(it), "category": it["category"], "context_condition": it["context_condition"],
                     "pred": pred, "correct": int(pred == it["label"]), "unknown": int(pred == it["unknown_loc"]),
                     "biased": None if it["biased_loc"] is None else int(pred == it["biased_loc"]),
                     "probs": softmax(lps)})
    return rows


def option_kl(p: Sequence[float], q: Sequence[float]) -> float:
    """KL(p || q) in nats between two option distributions of one item."""
    return sum(a * (math.log(a) - math.log(max(b, 1e-300))) for a, b in zip(p, q) if a > 0)
