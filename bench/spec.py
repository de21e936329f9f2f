"""One benchmark run's settings (what ``python -m bench.run`` parses), shared by every runner."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch

from bench.synthetic import LengthSpec

STAGES = ("sft", "rm", "dpo", "ppo")
IMPLS = ("ours", "trl")
TRL_MODES = ("default", "best")


@dataclass
class BenchSpec:
    stage: str
    impl: str
    size: str = "tiny"
    device: str = "cpu"
    trl_mode: str = "best"
    steps: int = 4
    warmup: int = 1
    batch: int = 4
    min_len: int = 128
    max_len: int = 2048
    gen_len: int = 64  # PPO: response tokens per episode
    ppo_epochs: int = 4
    seed: int = 0
    ours_padding_free: bool = True  # SFT: our stage's padding_free option (same loss, no pad tokens)
    work_dir: str = field(default="", metadata={"help": "scratch folder for trainer output (nothing is saved)"})

    @property
    def on_cuda(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def dtype(self) -> torch.dtype:
        return torch.bfloat16 if self.on_cuda else torch.float32

    @property
    def dtype_name(self) -> str:
        return "bfloat16" if self.on_cuda else "float32"

    @property
    def lengths(self) -> LengthSpec:
        return LengthSpec(self.min_len, self.max_len, self.seed)

    @property
    def label(self) -> str:
        if self.impl == "ours":
            return "ours" if self.ours_padding_free or self.stage == "ppo" else "ours-padded"
        return f"trl-{self.trl_mode}"

    def to_json(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "work_dir"}
