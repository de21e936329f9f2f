"""Seeded synthetic token data with a realistic length spread, in the layouts each stage consumes.

Sequence lengths are log-uniform in [min_len, max_len] (chat data has many short and few long examples); the prompt
takes a uniform 20-70 % of a sequence. A preference pair shares its prompt; the rejected response has its own
length (0.5-1.5 × the chosen one), as in real pairs. PPO prompts use the same length law up to ``max_len``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from bench.shapes import EOS_ID, MODEL_SIZES, N_SPECIAL


@dataclass
class LengthSpec:
    min_len: int = 128
    max_len: int = 2048
    seed: int = 0


def _length(rng: random.Random, spec: LengthSpec) -> int:
    return round(math.exp(rng.uniform(math.log(spec.min_len), math.log(spec.max_len))))


def _tokens(rng: random.Random, n: int, vocab: int) -> list[int]:
    return [rng.randrange(N_SPECIAL, vocab) for _ in range(n)]


def sft_rows(n: int, size: str, spec: LengthSpec) -> list[dict]:
    """{input_ids, labels (prompt -100), completion_mask}: the response ends with EOS, which is trained."""
    rng, vocab = random.Random(spec.seed), MODEL_SIZES[size].vocab
    rows = []
    for _ in range(n):
        total = _length(rng, spec)
        n_prompt = max(1, int(total * rng.uniform(0.2, 0.7)))
        ids = _tokens(rng, total - 1, vocab) + [EOS_ID]
        rows.append({"input_ids": ids, "labels": [-100] * n_prompt + ids[n_prompt:],
                     "completion_mask": [0] * n_prompt + [1] * (total - n_prompt)})
    return rows


def pair_rows(n: int, size: str, spec: LengthSpec) -> list[dict]:
    """{prompt_ids, chosen_ids, rejected_ids} (responses end with EOS); prompt + response <= max_len."""
    rng, vocab = random.Random(spec.seed + 1), MODEL_SIZES[size].vocab
    rows = []
    for _ in range(n):
        total = _length(rng, spec)
        n_prompt = max(1, int(total * rng.uniform(0.2, 0.7)))
        n_chosen = max(2, total - n_prompt)
        n_rejected = max(2, min(spec.max_len - n_prompt, int(n_chosen * rng.uniform(0.5, 1.5))))
        rows.append({"prompt_ids": _tokens(rng, n_prompt, vocab),
                     "chosen_ids": _tokens(rng, n_chosen - 1, vocab) + [EOS_ID],
                     "rejected_ids": _tokens(rng, n_rejected - 1, vocab) + [EOS_ID]})
    return rows


def prompt_rows(n: int, size: str, spec: LengthSpec) -> list[list[int]]:
    rng, vocab = random.Random(spec.seed + 2), MODEL_SIZES[size].vocab
    return [_tokens(rng, _length(rng, spec), vocab) for _ in range(n)]
