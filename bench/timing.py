"""Timing an HF/TRL trainer step by step: wall time per optimiser step (warmup excluded), the non-pad tokens and the
sequence lengths each step processed, and peak memory.

The clock is a ``TrainerCallback`` (step begin/end, with a CUDA synchronise on both sides so queued kernels are
counted in their own step); tokens are read from the inputs ``training_step`` receives, so the count is the same
whether the batch is padded (attention_mask) or flattened padding-free (cu_seq_lens / position_ids).
"""

from __future__ import annotations

import itertools
import resource
import sys
import time
from dataclasses import dataclass, field

import torch


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def sequence_lengths(inputs: dict) -> list[int]:
    """Real (non-pad) length of every sequence in a training batch."""
    if "cu_seq_lens_q" in inputs:  # padding-free: one flat row, boundaries given
        return [int(x) for x in inputs["cu_seq_lens_q"].diff().tolist()]
    if "attention_mask" in inputs and inputs["attention_mask"] is not None:
        return [int(x) for x in inputs["attention_mask"].sum(-1).tolist()]
    if "position_ids" in inputs:
        starts = (inputs["position_ids"][0] == 0).nonzero().flatten().tolist() + [inputs["position_ids"].shape[1]]
        return [b - a for a, b in itertools.pairwise(starts)]
    ids = inputs["input_ids"]
    return [ids.shape[1]] * ids.shape[0]


@dataclass
class StepLog:
    warmup: int
    device: str
    durations: list[float] = field(default_factory=list)
    seq_lens: list[list[int]] = field(default_factory=list)  # per training_step call, in order
    _t0: float = 0.0

    def begin(self) -> None:
        sync(self.device)
        self._t0 = time.perf_counter()

    def end(self) -> None:
        sync(self.device)
        self.durations.append(time.perf_counter() - self._t0)

    def timed(self) -> tuple[float, list[int]]:
        """Seconds and sequence lengths of the steps after warmup (one micro-batch per step)."""
        lens = [n for step in self.seq_lens[self.warmup: len(self.durations)] for n in step]
        return sum(self.durations[self.warmup:]), lens


def instrument(trainer, log: StepLog) -> None:
    """Attach the clock and the token counter to a transformers Trainer (stock or subclass)."""
    from transformers import TrainerCallback

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            log.begin()

        def on_step_end(self, args, state, control, **kwargs):
            log.end()

    trainer.add_callback(Clock())
    step = trainer.training_step

    def counted_step(model, inputs, *args, **kwargs):
        log.seq_lens.append(sequence_lengths(inputs))
        return step(model, inputs, *args, **kwargs)

    trainer.training_step = counted_step


def reset_peak_memory(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def peak_memory_gb(device: str) -> float:
    """Peak allocated GPU memory, or the process's peak resident set size on CPU (whole process, GB)."""
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 1e9
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1e9 if sys.platform == "darwin" else rss * 1024 / 1e9
