"""The one generation interface: a config, a Generator base class that owns the cache and the progress bar, errors.

A backend only implements ``_generate(requests, params, emit)``: produce one answer per ``GenRequest`` and call
``emit(request, record)`` as each arrives. Everything else (which requests are missing from the cache, writing them
durably, de-duplicating, counting tokens, the progress bar, putting answers back in order) lives here once.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from common.config import ConfigError, UserError
from common.config import help_meta as _help
from common.generation.cache import GenerationCache, request_key, seed_from_key

BACKENDS = ("hf", "vllm", "openai")
SAMPLING_KEYS = ("temperature", "top_p", "max_new_tokens", "seed")


class GenerationError(UserError):
    """A generation backend cannot do its job (bad key, unknown model, dead endpoint); one line, never the key."""


@dataclass
class GenerationConfig:
    """How to generate: which backend and model, sampling, batching/concurrency, retries and the cache file."""

    backend: str = field(default="hf", metadata=_help("hf (local transformers), vllm (offline engine) or openai "
                                                      "(any OpenAI-compatible HTTP endpoint)"))
    model: str = field(default="", metadata=_help("hf/vllm: hub id, local folder or embedded:<name>; "
                                                  "openai: the served model name"))
    base_url: str | None = field(default=None, metadata=_help("openai: endpoint root ending in /v1; default "
                                                              "$OPENAI_BASE_URL, else https://api.openai.com/v1"))
    api_key_env: str = field(default="OPENAI_API_KEY", metadata=_help("openai: name of the environment variable "
                                                                      "holding the key (the key itself is never "
                                                                      "stored); optional for 127.0.0.1/localhost"))
    template: str = field(default="tokenizer", metadata=_help("hf/vllm: chat template from common.templates, or "
                                                              "'tokenizer' for the tokenizer's own chat template"))
    system: str | None = field(default=None, metadata=_help("system message put first in every conversation that "
                                                            "has none (all backends; part of the cache key)"))
    temperature: float = field(default=1.0, metadata=_help("0 = greedy"))
    top_p: float = field(default=1.0, metadata=_help("nucleus sampling mass, in (0, 1]"))
    max_new_tokens: int = field(default=256, metadata=_help("answer length limit (max_tokens for openai)"))
    seed: int | None = field(default=0, metadata=_help("base seed; each sample's seed is derived from its cache key "
                                                       "so it does not depend on batching; None = unseeded"))
    batch_size: int = field(default=8, metadata=_help("hf: sequences per generate call; vllm: prompts per engine "
                                                      "call (each call's answers are cached together; use hundreds)"))
    concurrency: int = field(default=8, metadata=_help("openai: requests in flight at once"))
    max_retries: int = field(default=6, metadata=_help("openai: retries after the first try on 429/5xx/timeouts/"
                                                       "connection errors"))
    backoff_s: float = field(default=1.0, metadata=_help("openai: first retry delay; doubles each retry, with "
                                                         "jitter"))
    backoff_max_s: float = field(default=60.0, metadata=_help("openai: cap on one retry delay"))
    timeout_s: float = field(default=120.0, metadata=_help("openai: seconds per HTTP request"))
    check_model: bool = field(default=True, metadata=_help("openai: check once via /models that the server has "
                                                           "`model`"))
    extra_body: dict | None = field(default=None, metadata=_help("openai: extra JSON fields for every request "
                                                                 "(part of the cache key)"))
    cache_path: str | None = field(default=None, metadata=_help("jsonl cache; reruns request only missing answers; "
                                                                "None = no cache"))
    dtype: str = field(default="float32", metadata=_help("hf/vllm weights dtype: float32, bfloat16, float16"))
    device: str | None = field(default=None, metadata=_help("hf: torch device; None = cuda when available"))
    trust_remote_code: bool = field(default=False, metadata=_help("hf/vllm: allow a model's own code"))
    tensor_parallel_size: int = field(default=1, metadata=_help(
        "vllm: GPUs one engine shards the model over (tensor parallelism; a 70B bf16 model needs 4 x 80 GB, see "
        "`python -m common.gpu_plan`); must divide the model's attention heads"))
    gpu_memory_utilization: float = field(default=0.9, metadata=_help(
        "vllm: share of each GPU's memory the engine may take for weights + KV cache, in (0, 1] (vLLM's default)"))
    progress: bool = field(default=True, metadata=_help("show a tqdm progress bar"))

    def __post_init__(self) -> None:
        checks = [
            (self.backend in BACKENDS, "backend", f"one of {list(BACKENDS)}"),
            (bool(self.model), "model", "a model name (hub id, folder, embedded:<name>, or the served name)"),
            (self.temperature >= 0, "temperature", ">= 0"),
            (0 < self.top_p <= 1, "top_p", "in (0, 1]"),
            (self.max_new_tokens >= 1, "max_new_tokens", ">= 1"),
            (self.batch_size >= 1, "batch_size", ">= 1"),
            (self.concurrency >= 1, "concurrency", ">= 1"),
            (self.max_retries >= 0, "max_retries", ">= 0"),
            (self.backoff_s >= 0 and self.backoff_max_s >= 0, "backoff_s", ">= 0 (and backoff_max_s >= 0)"),
            (self.timeout_s > 0, "timeout_s", "> 0"),
            (isinstance(self.tensor_parallel_size, int) and self.tensor_parallel_size >= 1, "tensor_parallel_size",
             "an integer >= 1"),
            (0 < self.gpu_memory_utilization <= 1, "gpu_memory_utilization", "in (0, 1]"),
        ]
        for ok, name, allowed in checks:
            if not ok:
                raise ConfigError(f"GenerationConfig.{name} = {getattr(self, name)!r}: must be {allowed}")


@dataclass
class Usage:
    """What a generator did in this process: answers generated vs served from the cache, tokens, retries."""

    generated: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    http_calls: int = 0
    retries: int = 0

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclass
class GenRequest:
    """One answer to produce: conversation ``messages``, its ``sample`` index, cache ``key`` and derived ``seed``."""

    messages: list[dict]
    sample: int
    key: str
    seed: int | None


Emit = Callable[[GenRequest, dict], None]


def validate_conversation(conv: Any, where: str) -> None:
    if not isinstance(conv, list) or not conv:
        raise UserError(f"{where}: a conversation must be a non-empty list of messages, got {type(conv).__name__}")
    for j, msg in enumerate(conv):
        if not isinstance(msg, dict) or msg.get("role") not in ("system", "user", "assistant") or not isinstance(
                msg.get("content"), str):
            raise UserError(f"{where}[{j}]: a message must be {{'role': system|user|assistant, 'content': str}}, "
                            f"got {msg!r:.120}")


class Generator:
    """Base class: ``chat`` for texts, ``chat_records`` for full cache records; ``usage`` counts what was done."""

    def __init__(self, cfg: GenerationConfig):
        self.cfg = cfg
        self.usage = Usage()
        self.cache = GenerationCache(cfg.cache_path)
        self._usage_lock = threading.Lock()

    # -- what a backend provides --------------------------------------------------------------------------------
    def _generate(self, requests: list[GenRequest], params: dict[str, Any], emit: Emit) -> None:
        raise NotImplementedError

    def _key_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Everything besides model and messages that decides an answer (backends add their prompt format)."""
        return dict(params)

    # -- the shared machinery -----------------------------------------------------------------------------------
    def sampling(self, overrides: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(overrides) - set(SAMPLING_KEYS))
        if unknown:
            raise UserError(f"unknown sampling override {unknown[0]!r}; allowed: {list(SAMPLING_KEYS)}")
        merged = {k: getattr(self.cfg, k) for k in SAMPLING_KEYS}
        merged.update(overrides)
        # Re-validate through the config so an override gets the same checks as a YAML value.
        dataclasses.replace(self.cfg, **{k: merged[k] for k in SAMPLING_KEYS})
        return merged

    def add_usage(self, **counts: int) -> None:
        with self._usage_lock:
            for name, value in counts.items():
                setattr(self.usage, name, getattr(self.usage, name) + int(value or 0))

    def chat(self, conversations: list[list[dict]], n: int = 1, desc: str | None = None,
             **sampling_overrides: Any) -> list[list[str]]:
        """For each conversation, ``n`` sampled answers (texts). Cached answers are reused, new ones cached."""
        return [[r["text"] for r in recs] for recs in self.chat_records(conversations, n, desc, **sampling_overrides)]

    def chat_records(self, conversations: list[list[dict]], n: int = 1, desc: str | None = None,
                     **sampling_overrides: Any) -> list[list[dict]]:
        """Like ``chat`` but each answer is its cache record: key, model, sample, text, finish_reason, tokens."""
        if n < 1:
            raise UserError(f"n = {n}: the number of samples per conversation must be >= 1")
        params = self.sampling(sampling_overrides)
        key_params = self._key_params(params)
        keys: list[list[str]] = []
        todo: dict[str, GenRequest] = {}
        with self.cache:
            for i, conv in enumerate(conversations):
                validate_conversation(conv, f"conversations[{i}]")
                if self.cfg.system is not None and conv[0]["role"] != "system":
                    conv = [{"role": "system", "content": self.cfg.system}, *conv]
                row = []
                for s in range(n):
                    key = request_key(self.cfg.model, conv, key_params, s)
                    row.append(key)
                    if key not in self.cache and key not in todo:
                        seed = seed_from_key(key) if params["seed"] is not None else None
                        todo[key] = GenRequest(messages=conv, sample=s, key=key, seed=seed)
                keys.append(row)
            self.add_usage(cached=sum(len(r) for r in keys) - len(todo))
            if todo:
                self._run(list(todo.values()), params, desc)
            return [[self.cache.get(k) or self._missing(k) for k in row] for row in keys]

    def _missing(self, key: str) -> dict:
        raise RuntimeError(f"backend {self.cfg.backend} finished without an answer for request {key[:12]}")

    def _run(self, requests: list[GenRequest], params: dict[str, Any], desc: str | None) -> None:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(requests), desc=desc or f"{self.cfg.backend}:{self.cfg.model}", unit="req",
                   disable=not self.cfg.progress, mininterval=1.0, dynamic_ncols=True)
        try:
            def emit(req: GenRequest, answer: dict) -> None:
                record = {"key": req.key, "model": self.cfg.model, "sample": req.sample, **answer}
                if self.cache.add(record):
                    self.add_usage(generated=1)
                bar.update(1)
                bar.set_postfix({"tok_in": self.usage.prompt_tokens, "tok_out": self.usage.completion_tokens,
                                 "retries": self.usage.retries}, refresh=False)

            self._generate(requests, params, emit)
        finally:
            bar.close()


def build_generator(cfg: GenerationConfig) -> Generator:
    """The generator for ``cfg.backend``; loads the model (hf/vllm) or checks key and endpoint (openai) now."""
    if cfg.backend == "hf":
        from common.generation.hf import HFGenerator

        return HFGenerator(cfg)
    if cfg.backend == "vllm":
        from common.generation.vllm_offline import VLLMGenerator

        return VLLMGenerator(cfg)
    from common.generation.openai_api import OpenAIGenerator

    return OpenAIGenerator(cfg)
