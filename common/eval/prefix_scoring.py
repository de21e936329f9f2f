"""Option log-likelihoods of many prompts that share long token prefixes, each prefix read once (CPU fidelity runs).

Same numbers as ``common.eval.option_scoring.option_logprobs(..., share_prompt=True)`` up to float rounding: each
prompt is read once and its options continue from a copy of the prompt's keys/values. On top of that, the prompts are
visited in the lexicographic order of their token ids, and the keys/values of the longest token prefix a prompt shares
with the one before it are kept (``DynamicCache.crop``), so only the rest is read. BBQ is the case it is for: the four
items of one context (ambiguous / disambiguated x negative / non-negative question) share the chat template and the
ambiguous context, and the disambiguated context extends it, so a group of four costs about half of four prompts.

Exactness: a token's keys/values depend only on the tokens before it, and a shared prefix is compared as token ids
(the tokenisation of each whole prompt, as ``encode_prompt_response`` renders it), so reused keys/values are the ones a
fresh pass would compute; ``tests/common/test_prefix_scoring.py`` checks the numbers against ``option_logprobs``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from tqdm.auto import tqdm

from common.eval.option_scoring import option_logprobs
from common.templates import encode_prompt_response


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def prefix_option_logprobs(model: Any, tokenizer: Any, prompts: Sequence[Any], options: Sequence[Sequence[str]],
                           template: str, system: str | None = None, batch_size: int = 8, max_length: int = 2048,
                           desc: str | None = "options") -> list[list[tuple[float, int]]]:
    """For each prompt, [(sum of reply log-probs, number of reply tokens) for each of its options], in input order."""
    import torch
    from transformers import DynamicCache

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    model.eval()
    encoded = []  # per prompt: (head ids, [reply ids per option]) or None when truncation split the heads
    for prompt, opts in zip(prompts, options):
        encs = [encode_prompt_response(tokenizer, prompt, o, template, max_length, system) for o in opts]
        heads = [enc["input_ids"][: enc["labels"].count(-100)] for enc in encs]
        if any(h != heads[0] for h in heads) or not heads[0]:
            encoded.append(None)
        else:
            encoded.append((heads[0], [enc["input_ids"][len(heads[0]):] for enc in encs]))
    order = sorted(range(len(prompts)), key=lambda i: (encoded[i] is None, encoded[i][0] if encoded[i] else []))
    out: list[list[tuple[float, int]] | None] = [None] * len(prompts)
    cache, cached_ids = None, []
    for i in tqdm(order, desc=desc, disable=desc is None):
        if encoded[i] is None:  # truncation cut the prompt differently per option: score it the plain way
            out[i] = option_logprobs(model, tokenizer, [prompts[i]], [options[i]], template, system, batch_size,
                                     max_length, desc=None)[0]
            continue
        head, replies = encoded[i]
        keep = min(_common_prefix(head, cached_ids), len(head) - 1)  # read at least the last token for its logits
        if cache is None or keep == 0:
            cache, keep = DynamicCache(), 0
        elif cache.get_seq_length() > keep:
            cache.crop(keep - cache.get_seq_length())  # a negative count: drop that many tokens from the end
        with torch.no_grad():
            first = model(input_ids=torch.tensor([head[keep:]], device=device), cache=cache, use_cache=True,
                          logits_to_keep=1)
            cache, cached_ids = first.cache, head
            first_logps = torch.log_softmax(first.logits[0, -1].float(), dim=-1)  # (V,): predicts reply token 0
            scores = []
            for start in range(0, len(replies), batch_size):
                chunk = replies[start:start + batch_size]
                width = max(len(r) for r in chunk)
                ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)  # (N, R), right-padded
                mask = torch.zeros((len(chunk), len(head) + width), dtype=torch.long)  # (N, P + R)
                for row, reply in enumerate(chunk):
                    ids[row, :len(reply)] = torch.tensor(reply)
                    mask[row, : len(head) + len(reply)] = 1
                branch = copy.deepcopy(cache)
                branch.batch_repeat_interleave(len(chunk))
                logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), cache=branch).logits
                logps = torch.log_softmax(logits[:, :-1].float(), dim=-1)  # (N, R-1, V): position t predicts t+1
                for row, reply in enumerate(chunk):
                    total = first_logps[reply[0]].item() + sum(
                        logps[row, t - 1, tok].item() for t, tok in enumerate(reply) if t > 0)
                    scores.append((total, len(reply)))
        out[i] = scores
    return out  # type: ignore[return-value]
