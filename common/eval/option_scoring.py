"""Multiple choice by log-likelihood: score each option as the assistant's reply to a chat-templated prompt.

For prompt x and option y (rendered with the template's end-of-turn text, so "this option and nothing more" is
what is scored): ``log p(y | x) = Σ_t log π(y_t | x, y_<t)`` over the reply's tokens, and the length-normalised
variant divides by the number of reply tokens. Tokenisation goes through ``common.templates.encode_prompt_response``,
the same path training uses, so a scored option is exactly the text a trained model would have produced.
"""

from __future__ import annotations

from typing import Any, Sequence

from tqdm.auto import tqdm

from common.templates import encode_prompt_response


def option_logprobs(model: Any, tokenizer: Any, prompts: Sequence[Any], options: Sequence[Sequence[str]],
                    template: str, system: str | None = None, batch_size: int = 8, max_length: int = 2048,
                    desc: str | None = "options") -> list[list[tuple[float, int]]]:
    """For each prompt, [(sum of reply log-probs, number of reply tokens) for each of its options]."""
    import torch

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


def pick_option(scores: Sequence[tuple[float, int]], length_normalise: bool = False) -> int:
    """argmax over options of the summed (or per-token mean) log-likelihood; ties go to the first option."""
    values = [s / max(n, 1) if length_normalise else s for s, n in scores]
    return max(range(len(values)), key=lambda k: (values[k], -k))
