"""hf / vllm / openai generation behind one interface, with a resumable jsonl cache.

    cfg = GenerationConfig(backend="openai", model="gpt-4o-mini", cache_path="runs/x/gen_cache.jsonl")
    gen = build_generator(cfg)
    answers = gen.chat([[{"role": "user", "content": "Hi"}]], n=2)   # -> [["...", "..."]]
    gen.usage                                                           # generated / cached / tokens / retries

Modules: ``base`` (config, Generator, errors), ``cache`` (the jsonl cache), ``hf``, ``vllm_offline``, ``openai_api``.
"""

from common.generation.base import (
    BACKENDS,
    GenerationConfig,
    GenerationError,
    Generator,
    GenRequest,
    Usage,
    build_generator,
)
from common.generation.cache import GenerationCache, request_key, seed_from_key

__all__ = [
    "BACKENDS",
    "GenRequest",
    "GenerationCache",
    "GenerationConfig",
    "GenerationError",
    "Generator",
    "Usage",
    "build_generator",
    "request_key",
    "seed_from_key",
]
