"""Guided judging for small judges: the answer is the most likely of the finitely many valid answers.

A 135M judge almost never writes a well-formed ``<ranking>`` tag (1 valid ballot in 9 here, copied from the format
example), so every SmolLM2 ballot became an abstention. Upstream calls the remedy guided decoding (vLLM's
``guided_choice`` for its ``<Ans>`` letters); we do it by log-likelihood, which needs no special decoder: for the K
candidates shown, every answer the strict parser accepts is enumerated (K! strict rankings, ≤ 24 for K ≤ 4; every
weak order when ties are allowed: 13 for K = 3, 75 for K = 4; A / B / C in pairwise mode), each is scored as the
judge's whole reply after its own prompt,

    log p(answer | judge prompt) = Σ_t log π(answer_t | prompt, answer_<t),

and the argmax is the ballot. Every strict ranking has the same number of tokens (SmolLM2's tokenizer: 13 for K = 3,
15 for K = 4, end-of-turn included; letters and `` >`` are one token each), so the sums compare fairly; when the
options' token lengths differ (ties with some tokenizers, other judges), the per-token mean is used instead and the
ballot records ``length_normalised: true``. The ballot also records ``logprob_gap``, the top-1 minus top-2 score: a
small gap is a judge that barely prefers its answer.

Small judges also carry a strong prior over the answer strings themselves (SmolLM2-135M puts "A > B > C" first in
every tiny-run ballot: pure position bias). ``judge_calibration: content_free`` subtracts, per judge, each answer's
score under the same prompt with the conversation and every response replaced by "N/A" (contextual calibration,
Zhao et al. 2021, "Calibrate Before Use", arXiv 2102.09690) [GUESS: our choice, not upstream's]; it costs one extra
prompt per judge. The uncalibrated argmax is kept in the ballot (``uncalibrated_ranking``) so both position biases
are reported. Each judge still sees its own seeded order and its own persona
system prompt, so ballots differ by judge. Scores go through ``common.eval.option_scoring.option_logprobs`` (chat
template, same tokenisation as training) with the prompt read once per ballot, and are cached per ballot
(``loglik_cache.jsonl``), so a killed rank stage resumes.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from common.artifacts import read_jsonl, write_jsonl
from common.config import build_dataclass

# (conversations, option texts shared by all of them) -> per conversation, [(summed log-prob, n tokens) per option]
Scorer = Callable[[list[list[dict]], list[str]], list[list[tuple[float, int]]]]
LOGLIK_MAX_TOKENS = 8192  # judge prompt + answer; longer prompts are cut by encode_prompt_response (end kept short)


def weak_orders(labels: str) -> Iterator[list[list[str]]]:
    """Every ordered partition of ``labels`` into tiers (best first); the first tier is any non-empty subset."""
    if not labels:
        yield []
        return
    for size in range(1, len(labels) + 1):
        for top in itertools.combinations(labels, size):
            rest = "".join(c for c in labels if c not in top)
            for tail in weak_orders(rest):
                yield [list(top), *tail]


def ranking_answers(labels: str, allow_ties: bool) -> list[tuple[str, list[list[str]]]]:
    """(reply text, tiers) of every ranking ``rank.parse_ranking`` accepts for these labels."""
    if allow_ties:
        orders = list(weak_orders(labels))
    else:
        orders = [[[c] for c in perm] for perm in itertools.permutations(labels)]
    return [("<ranking>" + " > ".join(" = ".join(t) for t in tiers) + "</ranking>", tiers) for tiers in orders]


def pairwise_answers() -> list[tuple[str, str]]:
    return [(f"<Ans>{c}</Ans>", c) for c in "ABC"]


@dataclass
class GuidedAnswer:
    """The argmax answer, in the shape ``rank.ballot_record`` reads from ``common.structured`` answers."""

    value: object
    raw: list[str]
    logprob: float  # the chosen answer's score (summed, or per token when length_normalised)
    logprob_gap: float | None  # top-1 minus top-2 score; None with a single option
    length_normalised: bool
    uncalibrated: object = None  # the argmax before subtracting the content-free baseline (None: not calibrated)
    attempts: int = 1
    error: str | None = None


def guided_answers(conversations: list[list[dict]], answers: list[tuple[str, object]], score: Scorer,
                   baselines: list[list[tuple[float, int]]] | None = None) -> list[GuidedAnswer]:
    """For each conversation, the answer with the highest log-likelihood (ties: the first listed); with
    ``baselines`` (one score row per conversation, e.g. its judge's content-free prompt) the highest
    log p(answer | prompt) − log p(answer | baseline prompt)."""
    texts = [text for text, _ in answers]
    scores = score(conversations, texts)
    normalise = len({n for row in scores for _, n in row}) > 1

    def values_of(row: list[tuple[float, int]]) -> list[float]:
        return [s / max(n, 1) if normalise else s for s, n in row]

    def ranked(values: list[float]) -> list[int]:
        return sorted(range(len(values)), key=lambda i: (-values[i], i))

    out = []
    for i, row in enumerate(scores):
        values = values_of(row)
        uncalibrated = None
        if baselines is not None:
            uncalibrated = answers[ranked(values)[0]][1]
            values = [v - b for v, b in zip(values, values_of(baselines[i]))]
        order = ranked(values)
        gap = values[order[0]] - values[order[1]] if len(order) > 1 else None
        out.append(GuidedAnswer(value=answers[order[0]][1], raw=[texts[order[0]]], logprob=values[order[0]],
                                logprob_gap=gap, length_normalised=normalise, uncalibrated=uncalibrated))
    return out


class LoglikScorer:
    """A ``Scorer`` over a local HF judge (``rank.judge`` GenerationConfig: model, template, dtype, batch_size, ...),
    caching each conversation's option scores in ``cache_path`` (one fsynced jsonl line per conversation)."""

    def __init__(self, spec: dict, where: str, cache_path: str | Path, chunk: int = 8):
        from common.generation import GenerationConfig

        self.cfg = build_dataclass(GenerationConfig, dict(spec), where)
        self.cache_path, self.chunk = Path(cache_path), chunk
        self.model = self.tokenizer = None

    def key(self, conversation: list[dict], options: list[str]) -> str:
        blob = json.dumps([self.cfg.model, self.cfg.template, self.cfg.dtype, conversation, options], sort_keys=True,
                          ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()

    def _load(self) -> None:
        import torch

        from common.models import load_causal_lm, load_tokenizer

        self.tokenizer = load_tokenizer(self.cfg.model, self.cfg.trust_remote_code)
        self.model = load_causal_lm(self.cfg.model, self.cfg.dtype, self.cfg.trust_remote_code)
        device = self.cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(device).eval()

    def __call__(self, conversations: list[list[dict]], options: list[str]) -> list[list[tuple[float, int]]]:
        from common.eval.option_scoring import option_logprobs

        cached: dict[str, list] = {}
        if self.cache_path.exists():
            records = read_jsonl(self.cache_path, tolerate_torn_tail=True)
            write_jsonl(self.cache_path, records)  # drops a torn last line left by a killed run
            cached = {r["key"]: r["scores"] for r in records}
        keys = [self.key(conv, options) for conv in conversations]
        todo = [i for i, k in enumerate(keys) if k not in cached]
        if todo and self.model is None:
            self._load()
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        with self.cache_path.open("a") as fh, tqdm(total=len(todo), desc="guided ballots",
                                                   disable=not self.cfg.progress or not todo) as bar:
            for start in range(0, len(todo), self.chunk):
                part = todo[start:start + self.chunk]
                scores = option_logprobs(self.model, self.tokenizer, [conversations[i] for i in part],
                                         [options] * len(part), self.cfg.template, batch_size=self.cfg.batch_size,
                                         max_length=LOGLIK_MAX_TOKENS, desc=None, share_prompt=True)
                for i, row in zip(part, scores):
                    cached[keys[i]] = [list(s) for s in row]
                    fh.write(json.dumps({"key": keys[i], "scores": cached[keys[i]]}) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
                bar.update(len(part))
        return [[(float(s), int(n)) for s, n in cached[k]] for k in keys]
