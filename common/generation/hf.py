"""Local generation with transformers: batched ``generate`` with left padding and batch-independent seeded sampling.

Sampling happens in a logits processor that draws each row's token from that row's own ``torch.Generator``, seeded
from the request's cache key, and hands ``generate`` a one-hot score row to pick greedily. So an answer depends on
its key alone, not on which batch it landed in or how many requests came before it.
"""

from __future__ import annotations

from typing import Any

from common.generation.base import Emit, GenerationConfig, Generator, GenRequest

# End-of-turn markers of common chat formats; each counts as a stop token when it is a special token of the tokenizer.
END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>")


def render_chat(messages: list[dict], template: str, tokenizer) -> str:
    """The prompt text of a conversation, ending where the assistant's answer starts (common.templates)."""
    from common.templates import render_prompt

    return render_prompt(messages, template, tokenizer=tokenizer)


def encode_prompt(text: str, tokenizer) -> list[int]:
    """Token ids of a rendered prompt. Templates write their own special tokens; BOS is added only if the tokenizer
    normally adds it and the template did not (the rule common.train.ppo follows too)."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    bos = tokenizer.bos_token_id
    if bos is not None and (not ids or ids[0] != bos):
        probe = tokenizer("a", add_special_tokens=True)["input_ids"]
        if probe and probe[0] == bos:
            ids = [bos] + ids
    return ids


def stop_token_ids(tokenizer, generation_config=None) -> list[int]:
    """EOS ids of the tokenizer and the model's generation config, plus known end-of-turn special tokens."""
    ids: set[int] = set()
    for source in (tokenizer.eos_token_id, getattr(generation_config, "eos_token_id", None)):
        if isinstance(source, int):
            ids.add(source)
        elif source:
            ids.update(int(i) for i in source)
    special = set(tokenizer.all_special_ids)
    for tok in END_OF_TURN_TOKENS:
        tid = tokenizer.convert_tokens_to_ids(tok)
        if isinstance(tid, int) and tid in special:
            ids.add(tid)
    return sorted(ids)


class SeededRowSampler:
    """Logits processor: temperature + top-p sampling with one RNG per row. (B, V) scores -> (B, V) one-hot 0/-inf."""

    def __init__(self, seeds: list[int], temperature: float, top_p: float, device):
        import torch

        self.generators = [torch.Generator(device=device).manual_seed(s) for s in seeds]
        self.temperature = temperature
        self.top_p = top_p

    def __call__(self, input_ids, scores):
        import torch

        probs = torch.softmax(scores.float() / self.temperature, dim=-1)  # (B, V)
        if self.top_p < 1.0:
            sorted_p, order = probs.sort(dim=-1, descending=True)
            # keep the smallest prefix whose mass reaches top_p (the top token is always kept)
            drop = sorted_p.cumsum(dim=-1) - sorted_p >= self.top_p
            sorted_p = sorted_p.masked_fill(drop, 0.0)
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_p)
        picks = torch.stack([torch.multinomial(probs[b], 1, generator=g) for b, g in enumerate(self.generators)])
        out = torch.full_like(scores, float("-inf"))
        return out.scatter(-1, picks, 0.0)  # (B, V), argmax = the sampled token


class HFGenerator(Generator):
    def __init__(self, cfg: GenerationConfig):
        super().__init__(cfg)
        import torch

        from common.models import load_causal_lm, load_tokenizer

        self.device = cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = load_tokenizer(cfg.model, cfg.trust_remote_code, padding_side="left")
        self.model = load_causal_lm(cfg.model, cfg.dtype, cfg.trust_remote_code).to(self.device).eval()
        self.stop_ids = stop_token_ids(self.tokenizer, self.model.generation_config)

    def _key_params(self, params: dict[str, Any]) -> dict[str, Any]:
        return {**params, "template": self.cfg.template}

    def prompt_ids(self, messages: list[dict]) -> list[int]:
        return encode_prompt(render_chat(messages, self.cfg.template, self.tokenizer), self.tokenizer)

    def _generate(self, requests: list[GenRequest], params: dict[str, Any], emit: Emit) -> None:
        prompts = [self.prompt_ids(r.messages) for r in requests]
        # Similar lengths together waste less padding; answers do not depend on the order.
        order = sorted(range(len(requests)), key=lambda i: len(prompts[i]))
        for start in range(0, len(order), self.cfg.batch_size):
            chunk = order[start:start + self.cfg.batch_size]
            answers = self.generate_ids([prompts[i] for i in chunk], [requests[i].seed for i in chunk], params)
            for i, answer in zip(chunk, answers):
                self.add_usage(prompt_tokens=answer["prompt_tokens"], completion_tokens=answer["completion_tokens"])
                emit(requests[i], answer)

    def generate_ids(self, prompts: list[list[int]], seeds: list[int | None], params: dict[str, Any]) -> list[dict]:
        """One batched ``generate`` over token-id prompts; returns text, finish_reason and token counts per row."""
        import torch
        from transformers import GenerationConfig as HFGenerationConfig
        from transformers import LogitsProcessorList

        pad = self.tokenizer.pad_token_id
        width = max(len(p) for p in prompts)
        input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=self.device)  # (B, T)
        attention_mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=self.device)
        gen_cfg = HFGenerationConfig(max_new_tokens=params["max_new_tokens"], do_sample=False,
                                     eos_token_id=self.stop_ids, pad_token_id=pad)
        processors = LogitsProcessorList()
        if params["temperature"] > 0:
            seeds = [s if s is not None else int(torch.randint(0, 2**60, ()).item()) for s in seeds]
            processors.append(SeededRowSampler(seeds, params["temperature"], params["top_p"], self.device))
        with torch.no_grad():
            out = self.model.generate(input_ids=input_ids, attention_mask=attention_mask, generation_config=gen_cfg,
                                      logits_processor=processors)
        answers = []
        stops = set(self.stop_ids)
        for row, prompt in zip(out[:, width:].tolist(), prompts):  # (B, T_new)
            end = next((j for j, t in enumerate(row) if t in stops), None)
            tokens = row if end is None else row[:end]
            answers.append({
                "text": self.tokenizer.decode(tokens, skip_special_tokens=True),
                "finish_reason": "length" if end is None else "stop",
                "prompt_tokens": len(prompt),
                "completion_tokens": len(tokens) + (end is not None),
            })
        return answers
