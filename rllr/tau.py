"""Propose τ, the cap on the label reward in RLLR-mixed, from the label RM's scores on correct-label responses.

    python -m rllr.tau --scores runs/rllr/x/rm_label/eval_scores.jsonl --output runs/rllr/x/rm_label/tau.json

Upstream hard-codes τ per model (rllr/reward.py: TAU_BY_MODEL) with no stated procedure. Our rule [GUESS]: τ is a
percentile (default the median) of RM_label's score on the chosen (correct-label) side of the held-out label pairs,
so the cap binds for a typical correct response and only rationale quality separates responses above it. The json
logs the whole distribution (correct and wrong side: mean, std, percentiles) next to the proposal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from common.artifacts import atomic_write_json, read_jsonl
from common.config import ConfigError, stage_cli

PERCENTILES = (5, 10, 25, 50, 75, 90, 95)


@dataclass
class TauConfig:
    scores: str = field(default="", metadata={"help": "eval_scores.jsonl of the label RM (common.train.rm)"})
    output: str = field(default="", metadata={"help": "json to write: {tau, percentile, distribution}"})
    percentile: float = field(default=50.0, metadata={"help": "which percentile of correct-label scores is τ"})

    def __post_init__(self) -> None:
        if not self.scores or not self.output:
            raise ConfigError("tau: pass --scores <label RM eval_scores.jsonl> and --output <tau.json>")
        if not 0 <= self.percentile <= 100:
            raise ConfigError(f"tau.percentile: {self.percentile} must be in [0, 100]")


def describe(values: np.ndarray) -> dict[str, float]:
    return {"n": int(values.size), "mean": float(values.mean()), "std": float(values.std()),
            **{f"p{p}": float(np.percentile(values, p)) for p in PERCENTILES}}


def propose_tau(correct_scores: np.ndarray, percentile: float = 50.0) -> float:
    """τ = the ``percentile``-th percentile of the label RM's scores on correct-label responses, (N,) -> float."""
    if correct_scores.size == 0:
        raise ConfigError("tau: no scores to propose τ from")
    return float(np.percentile(correct_scores, percentile))


def run_tau(cfg: TauConfig) -> dict[str, Any]:
    rows = read_jsonl(cfg.scores)
    if not rows or "chosen_score" not in rows[0]:
        raise ConfigError(f"tau.scores: {cfg.scores} has no chosen_score rows; pass the eval_scores.jsonl that "
                          "common.train.rm writes for the label RM")
    correct = np.array([r["chosen_score"] for r in rows], dtype=np.float64)
    wrong = np.array([r["rejected_score"] for r in rows], dtype=np.float64)
    out = {"tau": propose_tau(correct, cfg.percentile), "percentile": cfg.percentile, "source": cfg.scores,
           "correct_label": describe(correct), "wrong_label": describe(wrong)}
    atomic_write_json(cfg.output, out)
    print(f"proposed tau = {out['tau']:.4f} (p{cfg.percentile:g} of {correct.size} correct-label scores; "
          f"correct mean {out['correct_label']['mean']:.3f}, wrong mean {out['wrong_label']['mean']:.3f})")
    return out


def main(argv: list[str] | None = None) -> Any:
    return stage_cli(TauConfig, run_tau, "tau", __doc__.split("\n")[0], argv)


if __name__ == "__main__":
    main()
