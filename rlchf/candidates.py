"""Candidates: prompts of a preference dataset, each with K responses (the dataset's chosen and rejected plus K − 2
sampled from a policy), and a disjoint held-out split of gold pairs for held-out preference accuracy.

Upstream [CODE] judges only the dataset's two responses; Conitzer et al.'s rankings need K ≥ 3. Keeping the gold
pair among the candidates lets us check the judges against the human label.

``candidates.jsonl``: ``{prompt_id, prompt, candidates: [{id, text, source}], chosen_id, rejected_id}`` with ids
``chosen``, ``rejected``, ``s0``, ``s1``, ...; ``heldout.jsonl``: canonical preference records plus ``prompt_id``.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from typing import Any

from common.artifacts import RunDir, write_jsonl
from common.config import ConfigError, UserError, stage_cli
from common.config import help_meta as _help
from rlchf.personas import build_generator_from

LABELS = "ABCDEFGHIJ"  # display labels; K is at most their number


def prompt_id_of(record: dict) -> str:
    """Stable id of a preference record: the hash of its prompt and both responses."""
    blob = json.dumps([record["prompt"], record["chosen"], record["rejected"]], sort_keys=True, ensure_ascii=False)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def as_messages(prompt: str | list[dict]) -> list[dict]:
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


@dataclass
class CandidatesConfig:
    """Stage ``candidates``: prompts from a preference dataset, each with K responses; a held-out gold split."""

    dataset: str = field(default="", metadata=_help("hub id or local file/folder of preference records"))
    dataset_split: str = field(default="train", metadata=_help("split (hub) or file stem (folder)"))
    dataset_subset: str | None = field(default=None, metadata=_help("hub config name"))
    source_format: str = field(default="hh_rlhf", metadata=_help("canonical | hh_rlhf (common.data)"))
    n_prompts: int = field(default=500, metadata=_help("prompts to rank [GUESS]"))
    n_heldout: int = field(default=200, metadata=_help("further gold pairs kept for held-out preference accuracy"))
    k: int = field(default=4, metadata=_help("candidates per prompt: chosen + rejected + k-2 sampled [GUESS]"))
    policy: dict = field(default_factory=dict, metadata=_help("GenerationConfig of the model sampling k-2 responses"))
    seed: int = field(default=0, metadata=_help("seed of the prompt subset"))
    output_dir: str = field(default="runs/rlchf/candidates", metadata=_help("run folder"))
    overwrite: bool = field(default=False, metadata=_help("replace a finished run"))
    resume: bool = field(default=True, metadata=_help("reuse the generation cache of an unfinished run"))

    def __post_init__(self) -> None:
        if not self.dataset:
            raise ConfigError("candidates.dataset: required (hub id or local path of preference records)")
        if not 2 <= self.k <= len(LABELS):
            raise ConfigError(f"candidates.k = {self.k}: must be in [2, {len(LABELS)}]")
        if self.n_prompts < 1 or self.n_heldout < 0:
            raise ConfigError("candidates.n_prompts must be >= 1 and n_heldout >= 0")


def run_candidates(cfg: CandidatesConfig) -> dict:
    from common.data import load_records

    run = RunDir.start(cfg.output_dir, cfg, seed=cfg.seed, overwrite=cfg.overwrite, resume=cfg.resume)
    records = load_records(cfg.dataset, "preference", split=cfg.dataset_split, subset=cfg.dataset_subset,
                           limit=cfg.n_prompts + cfg.n_heldout, seed=cfg.seed, source_format=cfg.source_format)
    if len(records) < cfg.n_prompts + cfg.n_heldout:
        raise UserError(f"{cfg.dataset}: {len(records)} pairs, fewer than n_prompts + n_heldout = "
                        f"{cfg.n_prompts + cfg.n_heldout}")
    random.Random(cfg.seed).shuffle(records)
    ranked, heldout = records[:cfg.n_prompts], records[cfg.n_prompts:]
    sampled: list[list[str]] = [[] for _ in ranked]
    if cfg.k > 2:
        policy = build_generator_from(cfg.policy, "candidates.policy", run.path / "policy_cache.jsonl")
        sampled = policy.chat([as_messages(r["prompt"]) for r in ranked], n=cfg.k - 2, desc="policy samples")
    rows = []
    for rec, texts in zip(ranked, sampled):
        cands = [{"id": "chosen", "text": rec["chosen"], "source": "dataset"},
                 {"id": "rejected", "text": rec["rejected"], "source": "dataset"}]
        cands += [{"id": f"s{i}", "text": t.strip(), "source": "policy"} for i, t in enumerate(texts)]
        rows.append({"prompt_id": prompt_id_of(rec), "prompt": rec["prompt"], "candidates": cands,
                     "chosen_id": "chosen", "rejected_id": "rejected"})
    write_jsonl(run.path / "candidates.jsonl", rows)
    write_jsonl(run.path / "heldout.jsonl", [{**r, "prompt_id": prompt_id_of(r)} for r in heldout])
    empty = sum(1 for r in rows for c in r["candidates"] if not c["text"])
    return run.finish({"n_prompts": len(rows), "n_heldout": len(heldout), "k": cfg.k, "empty_candidates": empty},
                      key_metric="n_prompts")


def main(argv: list[str] | None = None) -> Any:
    return stage_cli(CandidatesConfig, run_candidates, "candidates", "K candidate responses per prompt (RLCHF).", argv)


if __name__ == "__main__":
    main()
