"""PCRM's prior constraint: a per-pair upper bound δ* on the reward margin, computed once, without gradient.

    δ* = β1 / (s + β2) + β3,   s ∈ [0, 1] a prior similarity of the two responses  [CODE]

The upstream help text says β1·(s + β2); the code divides, and we follow the code. Variants (``kind``):

- ``len_rat``: s = (token length of the shorter response) / (the longer one), both counted after the tokens the
  two responses share at their start (s = 1 when nothing is left of either). The prompt is common to both sides,
  so it always lies in the shared prefix: we tokenize the responses alone with the RM's tokenizer.
- ``cos_sim``: s = (π − arccos(clamp(cos(e_c, e_r), 0, 1))) / π, e = the L2-normalised CLS vector of
  prompt+response from a frozen encoder. Because of the clamp, s ∈ [0.5, 1]. The DPO code upstream uses the raw
  cosine instead; we use this one definition everywhere.
- ``random``: δ* ~ U(low, high) per pair (seeded); ``fixed``: δ* = value; ``baseline``: no term, no column.

δ* and s are stored as columns ``delta_star`` and ``similarity`` on each preference record. Upstream reads the BERT
inputs from a second DataLoader with its own sampler, so a pair's δ* could come from another pair; a column on the
record travels with its pair through every shuffle, split and batch.

CLI: ``python -m pcrm.prior --config pcrm/configs/tiny.yaml --section prior input=pairs.jsonl output_dir=...``
writes ``<output_dir>/pairs.jsonl`` (the records plus the two columns) and δ*/s statistics in ``metrics.json``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.artifacts import RunDir, read_jsonl, write_jsonl
from common.config import ConfigError, UserError, stage_cli
from common.templates import common_prefix_length

KINDS = ("baseline", "len_rat", "cos_sim", "random", "fixed")
TASKS = ("dialogue", "tldr")
# Per task and variant, the upstream launch scripts' settings [CODE] wangclnlp/DeepSpeed-Chat-Extension, branch
# PCRM: (β1, β2, β3) for len_rat/cos_sim, (low, high) for random, value for fixed. Alpaca len_rat sweeps
# β3 ∈ {−13, −15, −17, −19} in the RM scripts and uses −15 for DPO; we default to −15. The TL;DR "fixed" script
# passes 5.0 as a range argument (code default 3.0): intended value 5.0 [GUESS].
PRESETS: dict[str, dict[str, dict[str, float]]] = {
    "dialogue": {
        "len_rat": {"beta1": 20.0, "beta2": 0.001, "beta3": -15.0},
        "cos_sim": {"beta1": 20.0, "beta2": 0.001, "beta3": -15.0},
        "random": {"low": 4.0, "high": 5.0},
        "fixed": {"value": 4.5},
    },
    "tldr": {
        "len_rat": {"beta1": 10.0, "beta2": 0.001, "beta3": -5.0},
        "cos_sim": {"beta1": 30.0, "beta2": 0.001, "beta3": -25.0},
        "random": {"low": 5.0, "high": 6.0},
        "fixed": {"value": 5.0},
    },
}


@dataclass
class PriorConfig:
    """Which prior bound to put on each pair. Unset numbers (None) take the task's upstream preset."""

    kind: str = field(default="len_rat", metadata={"help": f"one of {list(KINDS)}"})
    task: str = field(default="dialogue", metadata={"help": f"preset table to use: {list(TASKS)}"})
    beta1: float | None = field(default=None, metadata={"help": "δ* = β1/(s+β2)+β3 (len_rat, cos_sim)"})
    beta2: float | None = field(default=None, metadata={"help": "β2, keeps δ* finite at s = 0"})
    beta3: float | None = field(default=None, metadata={"help": "β3, shifts the bound"})
    low: float | None = field(default=None, metadata={"help": "random: δ* ~ U(low, high)"})
    high: float | None = field(default=None, metadata={"help": "random: upper end"})
    value: float | None = field(default=None, metadata={"help": "fixed: the constant δ*"})
    tokenizer: str = field(default="embedded:tiny-llama", metadata={"help": "len_rat: tokenizer counting lengths "
                                                                            "(the RM's)"})
    encoder: str = field(default="google-bert/bert-base-uncased", metadata={"help": "cos_sim: frozen CLS encoder"})
    template: str = field(default="plain", metadata={"help": "cos_sim: how the prompt is rendered before the "
                                                             "response"})
    max_length: int = field(default=512, metadata={"help": "cos_sim: encoder truncation (tokens)"})
    batch_size: int = field(default=32, metadata={"help": "cos_sim: pairs per encoder batch"})
    seed: int = field(default=0, metadata={"help": "random: seed of the U(low, high) draws"})
    input: str = field(default="", metadata={"help": "CLI: preference jsonl to annotate"})
    output_dir: str = field(default="runs/pcrm/prior", metadata={"help": "CLI: run folder; pairs.jsonl goes here"})
    overwrite: bool = field(default=False, metadata={"help": "replace a finished run in output_dir"})

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"prior.kind: {self.kind!r} is not one of {list(KINDS)}")
        if self.task not in TASKS:
            raise ConfigError(f"prior.task: {self.task!r} is not one of {list(TASKS)}")
        for key, preset in PRESETS[self.task].get(self.kind, {}).items():
            if getattr(self, key) is None:
                setattr(self, key, preset)
        if self.kind == "random" and not self.low <= self.high:
            raise ConfigError(f"prior.low/high: need low <= high, got {self.low} > {self.high}")
        if self.kind in ("len_rat", "cos_sim") and self.beta2 <= 0:
            raise ConfigError(f"prior.beta2: must be > 0 so δ* stays finite at s = 0, got {self.beta2}")


def delta_from_similarity(s: torch.Tensor | float, beta1: float, beta2: float, beta3: float) -> torch.Tensor:
    """δ* = β1 / (s + β2) + β3;  s (B,) in [0, 1] -> (B,). Smaller for more similar responses."""
    return beta1 / (torch.as_tensor(s, dtype=torch.float64) + beta2) + beta3


def length_ratio(chosen_ids: list[int], rejected_ids: list[int]) -> float:
    """Shorter / longer token count after the common prefix of the two sequences; 1.0 when both are used up."""
    shared = common_prefix_length(chosen_ids, rejected_ids)
    n_c, n_r = len(chosen_ids) - shared, len(rejected_ids) - shared
    return 1.0 if max(n_c, n_r) == 0 else min(n_c, n_r) / max(n_c, n_r)


def angular_similarity(chosen_emb: torch.Tensor, rejected_emb: torch.Tensor) -> torch.Tensor:
    """s = (π − arccos(clamp(cos, 0, 1))) / π of row-paired embeddings;  (B, H), (B, H) -> (B,), s ∈ [0.5, 1]."""
    cos = torch.nn.functional.cosine_similarity(chosen_emb.double(), rejected_emb.double(), dim=-1)
    return (math.pi - torch.arccos(cos.clamp(0.0, 1.0))) / math.pi


def _prompt_text(prompt: Any, template: str) -> str:
    from common.templates import render_prompt

    return render_prompt(prompt, template)


@torch.no_grad()
def cls_embeddings(texts: list[str], encoder, tokenizer, max_length: int) -> torch.Tensor:
    """L2-normalised CLS (first-token) vectors of the last hidden layer;  list of B texts -> (B, H)."""
    batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    hidden = encoder(**batch).last_hidden_state  # (B, T, H)
    return torch.nn.functional.normalize(hidden[:, 0], dim=-1)


def similarities(records: list[dict], cfg: PriorConfig) -> list[float] | None:
    """s per pair for len_rat / cos_sim (None for the variants that do not use one)."""
    from common.models import load_tokenizer

    if cfg.kind == "len_rat":
        tok = load_tokenizer(cfg.tokenizer)
        enc = lambda text: tok(text, add_special_tokens=False)["input_ids"]
        return [length_ratio(enc(r["chosen"]), enc(r["rejected"])) for r in records]
    if cfg.kind != "cos_sim":
        return None
    from transformers import AutoModel

    from common.models import resolve_model

    tok = load_tokenizer(cfg.encoder)
    encoder = AutoModel.from_pretrained(resolve_model(cfg.encoder)).eval()
    out: list[float] = []
    for start in range(0, len(records), cfg.batch_size):
        chunk = records[start:start + cfg.batch_size]
        prompts = [_prompt_text(r["prompt"], cfg.template) for r in chunk]
        # Both sides of each pair go through the same forward pass: rows [0, B) chosen, [B, 2B) rejected.
        texts = [p + r["chosen"] for p, r in zip(prompts, chunk)] + [p + r["rejected"] for p, r in zip(prompts, chunk)]
        emb = cls_embeddings(texts, encoder, tok, cfg.max_length)  # (2B, H)
        out.extend(angular_similarity(emb[:len(chunk)], emb[len(chunk):]).tolist())
    return out


def annotate_prior(records: list[dict], cfg: PriorConfig) -> list[dict]:
    """Copies of ``records`` with ``delta_star`` and ``similarity`` columns (none at all for ``baseline``)."""
    if cfg.kind == "baseline":
        return [dict(r) for r in records]
    sims = similarities(records, cfg)
    if cfg.kind == "random":
        deltas = np.random.default_rng(cfg.seed).uniform(cfg.low, cfg.high, size=len(records)).tolist()
    elif cfg.kind == "fixed":
        deltas = [float(cfg.value)] * len(records)
    else:
        deltas = delta_from_similarity(torch.tensor(sims), cfg.beta1, cfg.beta2, cfg.beta3).tolist()
    return [{**r, "delta_star": float(d), "similarity": None if sims is None else float(s)}
            for r, d, s in zip(records, deltas, sims or [None] * len(records))]


def run_prior(cfg: PriorConfig) -> dict[str, Any]:
    """CLI stage: annotate ``cfg.input`` into ``<output_dir>/pairs.jsonl``; metrics are δ* and s statistics."""
    if not cfg.input or not Path(cfg.input).is_file():
        raise UserError(f"prior.input: {cfg.input!r} is not a file; pass input=<preference jsonl>")
    records = read_jsonl(cfg.input)
    for i, r in enumerate(records):
        missing = [k for k in ("prompt", "chosen", "rejected") if k not in r]
        if missing:
            raise UserError(f"{cfg.input}:{i + 1}: preference record lacks {missing}")
    run = RunDir.start(cfg.output_dir, cfg, seed=cfg.seed, overwrite=cfg.overwrite)
    annotated = annotate_prior(records, cfg)
    write_jsonl(run.path / "pairs.jsonl", annotated)
    metrics: dict[str, Any] = {"n_pairs": len(annotated), "kind": cfg.kind}
    for col in ("delta_star", "similarity"):
        values = np.array([r[col] for r in annotated if r.get(col) is not None], dtype=float)
        if values.size:
            metrics.update({f"{col}_mean": float(values.mean()), f"{col}_min": float(values.min()),
                            f"{col}_max": float(values.max())})
    return run.finish(metrics)


def main(argv: list[str] | None = None) -> None:
    stage_cli(PriorConfig, run_prior, "prior", __doc__.split("\n")[0], argv)


if __name__ == "__main__":
    main()
