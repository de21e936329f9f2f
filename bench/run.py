"""Throughput of one training stage, ours or TRL's, on a random-init Llama and synthetic tokens.

    python -m bench.run --stage sft|rm|dpo|ppo --impl ours|trl [--trl-mode default|best] --model-size tiny|60m|160m|1b
        [--device cpu|cuda] [--steps N] [--warmup W] [--batch B] [--min-len 128 --max-len 2048] [--gen-len T]
        [--out results.jsonl]

Prints one JSON record and appends it to ``--out``: tokens/s (non-pad tokens of the trained sequences per second of
optimiser step, warmup steps excluded), model TFLOP/s and MFU against the card's dense bf16 peak (CPU: GFLOP/s, no
MFU), peak memory (GPU allocated, or the process's peak RSS on CPU); for PPO, episodes/s and the seconds spent in
generation, scoring and training. ``python -m bench.table results.jsonl`` turns records into the RESULTS table.
One configuration per process, so peak memory and compiled state never leak between runs.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

from bench.shapes import MODEL_SIZES, card_peak_tflops, stage_flops
from bench.spec import IMPLS, STAGES, TRL_MODES, BenchSpec
from bench.timing import StepLog, instrument, peak_memory_gb, reset_peak_memory


def versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for name in ("torch", "transformers", "trl", "accelerate", "datasets", "peft", "liger-kernel"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def machine() -> dict:
    card, _ = card_peak_tflops("cpu")
    info = {"cpu": card, "cpu_count": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)}
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return info


def run_hf_stage(spec: BenchSpec) -> dict:
    """SFT / RM / DPO: build the trainer, train warmup + steps optimiser steps, time the steps after warmup."""
    from bench.shapes import build_tokenizer
    from bench.trainers import BUILDERS

    tokenizer = build_tokenizer(spec.size)
    trainer = BUILDERS[(spec.stage, spec.impl)](spec, tokenizer)
    log = StepLog(warmup=spec.warmup, device=spec.device)
    instrument(trainer, log)
    reset_peak_memory(spec.device)
    trainer.train()
    seconds, seq_lens = log.timed()
    if seconds <= 0 or not seq_lens:
        raise RuntimeError(f"no timed steps: {len(log.durations)} steps ran, warmup {spec.warmup}")
    tokens = sum(seq_lens)
    # pairs: the chosen and rejected sequences are both trained, each counted once
    flops = stage_flops(spec.stage, spec.size, seq_lens)
    card, peak = card_peak_tflops(spec.device)
    tflops = flops / seconds / 1e12
    return {"tokens": tokens, "seconds": round(seconds, 4), "tokens_per_s": round(tokens / seconds, 2),
            "model_tflops_per_s": round(tflops, 5), "mfu": round(tflops / peak, 4) if peak else None,
            "peak_mem_gb": round(peak_memory_gb(spec.device), 3), "card": card,
            "timed_steps": len(log.durations) - spec.warmup}


def run(spec: BenchSpec) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        spec.work_dir = tmp
        if spec.stage == "ppo":
            from bench.ppo import run_ppo

            result = run_ppo(spec)
        else:
            result = run_hf_stage(spec)
    return {"date": datetime.datetime.now().isoformat(timespec="seconds"), **spec.to_json(), "label": spec.label,
            **result, "machine": machine(), "versions": result.pop("versions", None) or versions()}


def parse_args(argv: list[str] | None = None) -> tuple[BenchSpec, str | None]:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stage", required=True, choices=STAGES)
    p.add_argument("--impl", required=True, choices=IMPLS, help="ours = common.train; trl = TRL's stock trainer")
    p.add_argument("--trl-mode", default="best", choices=TRL_MODES, help="TRL defaults, or its best settings")
    p.add_argument("--model-size", default="tiny", choices=sorted(MODEL_SIZES), help="1b = TinyLlama-1.1B shape")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--steps", type=int, default=4, help="timed optimiser steps (PPO: RL steps)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    p.add_argument("--batch", type=int, default=4, help="sequences (SFT), pairs (RM, DPO) or prompts (PPO) a step")
    p.add_argument("--min-len", type=int, default=128, help="shortest sequence (tokens)")
    p.add_argument("--max-len", type=int, default=2048, help="longest sequence (tokens)")
    p.add_argument("--gen-len", type=int, default=64, help="PPO: response tokens per episode")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ours-padding-free", default="true", choices=("true", "false"),
                   help="SFT: run our stage with padding_free (default true)")
    p.add_argument("--out", default=None, help="append the JSON record to this jsonl file")
    a = p.parse_args(argv)
    for name in ("steps", "batch", "min_len", "gen_len"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(a, name)}")
    if a.warmup < 0:
        p.error(f"--warmup must be >= 0, got {a.warmup}")
    if a.max_len < a.min_len:
        p.error(f"--max-len {a.max_len} is below --min-len {a.min_len}")
    if a.max_len > MODEL_SIZES[a.model_size].max_positions:
        p.error(f"--max-len {a.max_len} exceeds the model's {MODEL_SIZES[a.model_size].max_positions} positions")
    if a.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            p.error("--device cuda: no CUDA device is visible here; use --device cpu")
    spec = BenchSpec(stage=a.stage, impl=a.impl, size=a.model_size, device=a.device, trl_mode=a.trl_mode,
                     steps=a.steps, warmup=a.warmup, batch=a.batch, min_len=a.min_len, max_len=a.max_len,
                     gen_len=a.gen_len, seed=a.seed, ours_padding_free=a.ours_padding_free == "true")
    return spec, a.out


def main(argv: list[str] | None = None) -> dict:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("WANDB_MODE", "disabled")
    spec, out = parse_args(argv)
    record = run(spec)
    line = json.dumps(record)
    print(line, flush=True)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        with open(out, "a") as fh:
            fh.write(line + "\n")
    return record


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
