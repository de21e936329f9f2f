"""The vllm generation backend's engine settings: tensor parallelism and memory share reach ``vllm.LLM``.

vllm is not installed on CPU machines, so a stand-in ``vllm`` module records what the backend hands to ``LLM``.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import yaml

from common.config import ConfigError
from common.generation import GenerationConfig, build_generator
from common.generation.vllm_offline import engine_kwargs

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_engine_kwargs_carry_tensor_parallel_size_and_memory_share():
    cfg = GenerationConfig(backend="vllm", model="meta-llama/Llama-3.3-70B-Instruct", dtype="bfloat16", seed=3,
                           tensor_parallel_size=4, gpu_memory_utilization=0.85)
    assert engine_kwargs(cfg, "/models/llama70b") == {
        "model": "/models/llama70b", "dtype": "bfloat16", "seed": 3, "trust_remote_code": False,
        "tensor_parallel_size": 4, "gpu_memory_utilization": 0.85}


def test_engine_kwargs_defaults_are_one_gpu_and_vllms_memory_share():
    kwargs = engine_kwargs(GenerationConfig(backend="vllm", model="m"), "m")
    assert kwargs["tensor_parallel_size"] == 1 and kwargs["gpu_memory_utilization"] == 0.9


class _FakeTokenizer:
    eos_token_id = 2
    all_special_ids = (2,)

    def convert_tokens_to_ids(self, token):
        return None


def test_vllm_generator_passes_tensor_parallel_size_to_vllm_llm(monkeypatch):
    seen: dict = {}

    class FakeLLM:
        def __init__(self, **kwargs):
            seen.update(kwargs)

        def get_tokenizer(self):
            return _FakeTokenizer()

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=FakeLLM))
    build_generator(GenerationConfig(backend="vllm", model="meta-llama/Llama-3.3-70B-Instruct", dtype="bfloat16",
                                     tensor_parallel_size=8, gpu_memory_utilization=0.8))
    assert seen["tensor_parallel_size"] == 8 and seen["gpu_memory_utilization"] == 0.8
    assert seen["model"] == "meta-llama/Llama-3.3-70B-Instruct" and seen["dtype"] == "bfloat16"


@pytest.mark.parametrize("bad", [{"tensor_parallel_size": 0}, {"tensor_parallel_size": -2},
                                 {"gpu_memory_utilization": 0.0}, {"gpu_memory_utilization": 1.5}])
def test_bad_tensor_parallel_or_memory_share_is_a_config_error(bad):
    with pytest.raises(ConfigError, match=next(iter(bad))):
        GenerationConfig(backend="vllm", model="m", **bad)


@pytest.mark.parametrize("config", ["llama3", "qwen2.5"])
def test_rlchf_70b_persona_writer_is_sharded(config):
    """Llama-3.3-70B in bf16 (~131 GiB) cannot sit on one 80 GB card: the persona generator shards it."""
    cfg = yaml.safe_load((REPO_ROOT / "rlchf" / "configs" / f"{config}.yaml").read_text())
    gen = cfg["personas"]["generator"]
    assert "70B" in gen["model"] and gen["backend"] == "vllm"
    assert GenerationConfig(**gen).tensor_parallel_size >= 4
