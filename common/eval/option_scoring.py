"""Multiple choice by log-likelihood: score each option as the assistant's reply to a chat-templated prompt.

For prompt x and option y (rendered with the template's end-of-turn text, so "this option and nothing more" is
what is scored): ``log p(y | x) = Σ_t log π(y_t | x, y_<t)`` over the reply's tokens, and the length-normalised
variant divides by the number of reply tokens. Tokenisation goes through ``common.templates.encode_prompt_response``,
the same path training uses, so a scored option is exactly the text a trained model would have produced.

``share_prompt=True`` reads each prompt once and scores its options in the same forward pass (same numbers up to
float rounding): a 4D attention mask lets each option see the prompt but not the other options. Many short options
after one long prompt (RLCHF's K! rankings after a judge prompt, BBQ's three answers) then cost one pass, not one per
option. Consecutive prompts that open with the same tokens (RLDF's referee asks one question per debater after the
same debate transcript; BBQ's four items per context, visited in token order with ``sort_prompts``) also share that
opening: the cache is cut back to the common prefix and only the rest of the new prompt is read.

Exactness: a token's keys/values depend only on the tokens it may attend to and its position, both of which the mask
and position ids make the same as in a separate prompt+option sequence; tests/common/test_option_scoring.py compares
the numbers with the one-sequence-per-option path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tqdm.auto import tqdm

from common.templates import common_prefix_length, encode_prompt_response


def option_logprobs(model: Any, tokenizer: Any, prompts: Sequence[Any], options: Sequence[Sequence[str]],
                    template: str, system: str | None = None, batch_size: int = 8, max_length: int = 2048,
                    desc: str | None = "options", share_prompt: bool = False,
                    sort_prompts: bool = False) -> list[list[tuple[float, int]]]:
    """For each prompt, [(sum of reply log-probs, number of reply tokens) for each of its options], in input order.
    ``sort_prompts`` (with ``share_prompt``) visits the prompts in the order of their token ids, so prompts that open
    alike are read one after another and share their opening."""
    import torch

    if share_prompt and _tree_ready(model):
        return _shared_prompt_logprobs(model, tokenizer, prompts, options, template, system, batch_size, max_length,
                                       desc, sort_prompts)

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


def _crop_to(cache: Any, length: int) -> None:
    extra = cache.get_seq_length() - length
    if extra > 0:
        cache.crop(-extra)  # this transformers API only takes a negative count: tokens to drop from the end


def _tree_ready(model: Any) -> bool:
    """Whether ``model`` honours a custom 4D additive attention mask with explicit position ids (transformers' own
    decoder implementations with eager or sdpa attention do; remote code may not)."""
    return (type(model).__module__.startswith("transformers.models.")
            and getattr(model.config, "_attn_implementation", None) in ("eager", "sdpa"))


def _shared_prompt_logprobs(model: Any, tokenizer: Any, prompts: Sequence[Any], options: Sequence[Sequence[str]],
                            template: str, system: str | None, batch_size: int, max_length: int, desc: str | None,
                            sort_prompts: bool) -> list[list[tuple[float, int]]]:
    """``option_logprobs`` with each prompt's unshared tail and up to ``batch_size`` of its options in one forward pass.

    The pass's input is [tail of the prompt | option 1 | option 2 | ...] after the cached keys/values of the opening it
    shares with the previous prompt. A 4D mask lets every token see the cache and the prompt tail causally, and lets
    an option's token see only its own option's earlier tokens; position ids restart at the prompt's end for each
    option. So each option sees exactly the context a separate prompt+option sequence would give it, and a prompt with
    three short options costs one pass instead of a prompt pass plus an option pass (CPU passes of a 135M model have
    a ~60 ms floor whatever their length). After the pass the cache is cut back to the prompt for the next one."""
    import torch
    from transformers import DynamicCache

    device = next(model.parameters()).device
    model.eval()
    encoded: list[tuple[list[int], list[list[int]]] | None] = []  # (prompt ids, reply ids per option)
    for prompt, opts in zip(prompts, options):
        encs = [encode_prompt_response(tokenizer, prompt, o, template, max_length, system) for o in opts]
        heads = [enc["input_ids"][: enc["labels"].count(-100)] for enc in encs]
        replies = [enc["input_ids"][len(heads[0]):] for enc in encs]
        usable = heads[0] and all(h == heads[0] for h in heads) and all(replies)  # truncation can split heads
        encoded.append((heads[0], replies) if usable else None)
    visit = list(range(len(prompts)))
    if sort_prompts:  # prompts that open alike become neighbours
        visit.sort(key=lambda i: (encoded[i] is None, encoded[i][0] if encoded[i] else []))
    out: list[list[tuple[float, int]] | None] = [None] * len(prompts)
    cache, cached_ids = DynamicCache(), []
    for i in tqdm(visit, desc=desc, disable=desc is None):
        if encoded[i] is None:  # score it the plain way
            out[i] = option_logprobs(model, tokenizer, [prompts[i]], [options[i]], template, system, batch_size,
                                     max_length, desc=None)[0]
            continue
        head, replies = encoded[i]
        keep = min(common_prefix_length(head, cached_ids), len(head) - 1)  # the last prompt token always runs:
        _crop_to(cache, keep)  # its logits predict every option's first token
        cached_ids = head
        scores: list[tuple[float, int]] = []
        first_logps = None
        for start in range(0, len(replies), batch_size):
            chunk = replies[start:start + batch_size]
            past = cache.get_seq_length()  # keep on the first chunk, len(head) after
            tail = head[past:]
            ids = tail + [tok for reply in chunk for tok in reply]
            positions = list(range(past, len(head))) + [len(head) + t for reply in chunk for t in range(len(reply))]
            allowed = torch.zeros((len(ids), past + len(ids)), dtype=torch.bool)  # (Q, cache + Q)
            allowed[:, :past] = True
            allowed[:len(tail), past:past + len(tail)] = torch.ones(len(tail), len(tail), dtype=torch.bool).tril()
            allowed[len(tail):, past:past + len(tail)] = True
            row = len(tail)
            for reply in chunk:  # each option: causal within itself, blind to the other options
                n = len(reply)
                allowed[row:row + n, past + row:past + row + n] = torch.ones(n, n, dtype=torch.bool).tril()
                row += n
            dtype = next(model.parameters()).dtype
            mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)
            skip = max(len(tail) - 1, 0)  # no logits needed before the prompt's last token
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([ids], device=device),
                               position_ids=torch.tensor([positions], device=device),
                               attention_mask=mask[None, None].to(device), cache=cache, use_cache=True,
                               logits_to_keep=len(ids) - skip).logits[0]
            logps = torch.log_softmax(logits.float(), dim=-1)  # (Q - skip, V): row q - skip predicts what follows q
            if tail:
                first_logps = logps[0]
            row = len(tail) - skip
            for reply in chunk:
                total = first_logps[reply[0]].item() + sum(logps[row + t - 1, tok].item()
                                                           for t, tok in enumerate(reply) if t > 0)
                scores.append((total, len(reply)))
                row += len(reply)
            _crop_to(cache, len(head))
        out[i] = scores
    return out  # type: ignore[return-value]


def pick_option(scores: Sequence[tuple[float, int]], length_normalise: bool = False) -> int:
    """argmax over options of the summed (or per-token mean) log-likelihood; ties go to the first option."""
    values = [s / max(n, 1) if length_normalise else s for s, n in scores]
    return max(range(len(values)), key=lambda k: (values[k], -k))
