"""Offline generation with vLLM's ``LLM`` engine (GPU machines with the ``gpu`` extra installed).

Prompts are rendered and tokenised exactly as for the hf backend (same template, same BOS rule) and handed over as
token ids, so both backends see identical inputs. Each engine call takes ``batch_size`` prompts (use hundreds; vLLM
batches internally) and its answers are cached before the next call starts. Per-request seeds come from the cache
keys, so a rerun draws the same samples. ``tensor_parallel_size`` shards one engine over that many GPUs (a model too
big for one card, e.g. RLCHF's 70B persona writer); ``gpu_memory_utilization`` is the share of each card it takes.
"""

from __future__ import annotations

from typing import Any

from common.config import UserError
from common.generation.base import Emit, GenerationConfig, Generator, GenRequest
from common.generation.hf import encode_prompt, render_chat, stop_token_ids

VLLM_DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
               "float16": "float16", "fp16": "float16", "auto": "auto"}


def engine_kwargs(cfg: GenerationConfig, model_path: str, revision: str | None = None) -> dict[str, Any]:
    """Keyword arguments for ``vllm.LLM``: model, dtype, seed, remote code, tensor parallelism, memory share, and the
    pinned revision of a hub model (``name@revision``: model, tokenizer and remote code at that commit)."""
    if cfg.dtype not in VLLM_DTYPES:
        raise UserError(f"GenerationConfig.dtype = {cfg.dtype!r}: vllm takes one of {sorted(VLLM_DTYPES)}")
    pin = {"revision": revision, "tokenizer_revision": revision, "code_revision": revision} if revision else {}
    return {"model": model_path, "dtype": VLLM_DTYPES[cfg.dtype], "seed": cfg.seed or 0,
            "trust_remote_code": cfg.trust_remote_code, "tensor_parallel_size": cfg.tensor_parallel_size,
            "gpu_memory_utilization": cfg.gpu_memory_utilization, **pin}


class VLLMGenerator(Generator):
    def __init__(self, cfg: GenerationConfig):
        super().__init__(cfg)
        try:
            from vllm import LLM
        except ImportError:
            raise UserError("generation backend 'vllm' needs the vllm package (pip install -e '.[gpu]' on a GPU "
                            "machine); on CPU use backend: hf, or backend: openai against `vllm serve`") from None
        from common.models import hub_kwargs

        path, pin = hub_kwargs(cfg.model)
        self.llm = LLM(**engine_kwargs(cfg, path, pin.get("revision")))
        self.tokenizer = self.llm.get_tokenizer()
        self.stop_ids = stop_token_ids(self.tokenizer)

    def _key_params(self, params: dict[str, Any]) -> dict[str, Any]:
        return {**params, "template": self.cfg.template}

    def _generate(self, requests: list[GenRequest], params: dict[str, Any], emit: Emit) -> None:
        from vllm import SamplingParams

        for start in range(0, len(requests), self.cfg.batch_size):
            chunk = requests[start:start + self.cfg.batch_size]
            prompts = [{"prompt_token_ids": encode_prompt(render_chat(r.messages, self.cfg.template, self.tokenizer),
                                                          self.tokenizer)} for r in chunk]
            sampling = [SamplingParams(n=1, temperature=params["temperature"], top_p=params["top_p"],
                                       max_tokens=params["max_new_tokens"], seed=r.seed,
                                       stop_token_ids=self.stop_ids) for r in chunk]
            outputs = self.llm.generate(prompts, sampling, use_tqdm=False)
            for req, prompt, out in zip(chunk, prompts, outputs):
                best = out.outputs[0]
                self.add_usage(prompt_tokens=len(prompt["prompt_token_ids"]), completion_tokens=len(best.token_ids))
                emit(req, {"text": best.text, "finish_reason": best.finish_reason,
                           "prompt_tokens": len(prompt["prompt_token_ids"]),
                           "completion_tokens": len(best.token_ids)})
