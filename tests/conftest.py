"""Shared fixtures: the embedded offline models (built once per session) and the optional shared mirror of hub data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from common.hub_data import shared_data_root

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Tests never need a wandb run; "disabled" makes wandb.init a no-op (runs default to offline outside tests).
os.environ["WANDB_MODE"] = "disabled"
# Tiny models train faster on one thread than on two contended ones (0.35 s vs 3 s a step measured here).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # only after OMP_NUM_THREADS is set, so torch picks it up

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = shared_data_root()


@pytest.fixture(scope="session")
def embedded_models() -> dict[str, Path]:
    from common.models import prepare

    return prepare()


@pytest.fixture(scope="session")
def tiny_llama(embedded_models) -> str:
    """Name of the 2-layer random-init Llama (SmolLM2 tokenizer): the fastest model for training tests."""
    return "embedded:tiny-llama"


@pytest.fixture(scope="session")
def smollm2(embedded_models) -> str:
    """Name of the real pretrained SmolLM2-135M-Instruct, for tests that need sensible text."""
    return "embedded:smollm2-135m-instruct"


@pytest.fixture(scope="session")
def minilm(embedded_models) -> str:
    return "embedded:all-minilm-l6-v2"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared mirror (common.hub_data.shared_data_root: $RLHF_SHARED_DATA or its default); tests that use it skip
    cleanly when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} is absent")
    return SHARED_DATA
