"""Multiple choice by log-likelihood: score each option as the assistant's reply to a chat-templated prompt.

For prompt x and option y (rendered with the template's end-of-turn text, so "this option and nothing more" is
what is scored): ``log p(y | x) = Σ_t log π(y_t | x, y_<t)`` over the reply's tokens, and the length-normalised
variant divides by the number of reply tokens. Tokenisation goes through ``common.templates.encode_prompt_response``,
the same path training uses, so a scored option is exactly the text a trained model would have produced.

``share_prompt=True`` reads each prompt once and scores its options from the cached keys/values (same numbers up to
float rounding): many short options after one long prompt (RLCHF's K! rankings after a judge prompt) then cost one
prompt pass, not one per option. Consecutive prompts that open with the same tokens (RLDF's referee asks one question
per debater after the same debate transcript) also share that opening: the previous prompt's cache is cut back to
the common prefix and only the rest of the new prompt is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tqdm.auto import tqdm

from common.templates import common_prefix_length, encode_prompt_response

# shorter common openings (a chat template's system header) are not worth copying a cache for
MIN_SHARED_PREFIX = 32


def option_logprobs(model: Any, tokenizer: Any, prompts: Sequence[Any], options: Sequence[Sequence[str]],
                    template: str, system: str | None = None, batch_size: int = 8, max_length: int = 2048,
                    desc: str | None = "options", share_prompt: bool = False) -> list[list[tuple[float, int]]]:
    """For each prompt, [(sum of reply log-probs, number of reply tokens) for each of its options]."""
    import torch

    if share_prompt:
        return _shared_prompt_logprobs(model, tokenizer, prompts, options, template, system, batch_size, max_length,
                                       desc)

    flat = []  # (prompt index, option index, encoded)
    for i, (prompt, opts) in enumerate(zip(prompts, options)):
        for k, option in enumerate(opts):
            flat.append((i, k, encode_prompt_response(tokenizer, prompt, option, template, max_length, system)))
    out: list[list[tuple[float, int]]] = [[(0.0, 0)] * len(opts) for opts in options]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    model.eval()
    for start in tqdm(range(0, len(flat), batch_size), desc=desc, disable=desc is None):
        chunk = flat[start:start + batch_size]
        width = max(len(enc["input_ids"]) for _, _, enc in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)  # (B, T), right-padded
        labels = torch.full((len(chunk), width), -100, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, (_, _, enc) in enumerate(chunk):
            n = len(enc["input_ids"])
            ids[row, :n] = torch.tensor(enc["input_ids"])
            labels[row, :n] = torch.tensor(enc["labels"])
            mask[row, :n] = 1
        with torch.no_grad():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()  # (B, T, V)
        logps = torch.log_softmax(logits[:, :-1], dim=-1)  # (B, T-1, V): position t predicts token t+1
        target = labels[:, 1:].to(device)  # (B, T-1)
        scored = target != -100
        token_logps = logps.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1) * scored  # (B, T-1)
        for row, (i, k, _) in enumerate(chunk):
            out[i][k] = (float(token_logps[row].sum()), int(scored[row].sum()))
    return out


def _shared_prompt_logprobs(model: Any, tokenizer: Any, prompts: Sequence[Any], options: Sequence[Sequence[str]],
                            template: str, system: str | None, batch_size: int, max_length: int,
                            desc: str | None) -> list[list[tuple[float, int]]]:
    """``option_logprobs`` with one forward pass per prompt; its options continue from a copy of the KV cache."""
    import copy

    import torch

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    model.eval()
    out: list[list[tuple[float, int]]] = []
    prev_head: list[int] = []
    prev_cache = None  # the previous prompt's keys/values, before any option
    for prompt, opts in tqdm(list(zip(prompts, options)), desc=desc, disable=desc is None):
        encs = [encode_prompt_response(tokenizer, prompt, o, template, max_length, system) for o in opts]
        heads = [enc["input_ids"][: enc["labels"].count(-100)] for enc in encs]
        if any(h != heads[0] for h in heads):  # truncation cut the prompt differently per option
            out.extend(option_logprobs(model, tokenizer, [prompt], [opts], template, system, batch_size, max_length,
                                       desc=None))
            continue
        replies = [enc["input_ids"][len(heads[0]):] for enc in encs]
        # the last prompt token always runs: its logits predict the reply's first token
        shared = min(common_prefix_length(prev_head, heads[0]), len(heads[0]) - 1)
        with torch.no_grad():
            if prev_cache is not None and shared >= MIN_SHARED_PREFIX:
                cache = copy.deepcopy(prev_cache)
                cache.crop(-(len(prev_head) - shared))  # negative: drop that many tokens from the end
                first = model(input_ids=torch.tensor([heads[0][shared:]], device=device), cache=cache,
                              use_cache=True, logits_to_keep=1)
            else:
                first = model(input_ids=torch.tensor([heads[0]], device=device), use_cache=True, logits_to_keep=1)
            prev_head, prev_cache = heads[0], first.cache
            first_logps = torch.log_softmax(first.logits[0, -1].float(), dim=-1)  # (V,): predicts reply token 0
            scores = []
            for start in range(0, len(replies), batch_size):
                chunk = replies[start:start + batch_size]
                width = max(len(r) for r in chunk)
                ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)  # (N, R), right-padded
                mask = torch.zeros((len(chunk), len(heads[0]) + width), dtype=torch.long)  # (N, P + R)
                for row, reply in enumerate(chunk):
                    ids[row, :len(reply)] = torch.tensor(reply)
                    mask[row, : len(heads[0]) + len(reply)] = 1
                cache = copy.deepcopy(first.cache)
                cache.batch_repeat_interleave(len(chunk))
                logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), cache=cache).logits
                logps = torch.log_softmax(logits[:, :-1].float(), dim=-1)  # (N, R-1, V): position t predicts t+1
                for row, reply in enumerate(chunk):
                    total = first_logps[reply[0]].item() + sum(
                        logps[row, t - 1, tok].item() for t, tok in enumerate(reply) if t > 0)
                    scores.append((total, len(reply)))
        out.append(scores)
    return out


def pick_option(scores: Sequence[tuple[float, int]], length_normalise: bool = False) -> int:
    """argmax over options of the summed (or per-token mean) log-likelihood; ties go to the first option."""
    values = [s / max(n, 1) if length_normalise else s for s, n in scores]
    return max(range(len(values)), key=lambda k: (values[k], -k))
