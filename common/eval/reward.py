"""Reward-model metrics on scored preference pairs: pairwise accuracy, rank correlation, margin statistics, a plot.

With margin d = r(chosen) − r(rejected) per pair:
- pairwise accuracy = #(d > 0) / n; ties (d == 0) are counted separately and are not correct. We also give the
  accuracy with ties as half a win, which is what a coin-flip tie-break scores in expectation.
- Kendall τ_b and Spearman ρ between d and the human preference strength, where the data has one (PCRM [PAPER]:
  "rank correlation with human preference").
- margin statistics: mean, std, min, p50, p95, max of d (PCRM: ranking losses let margins grow without bound).
- a scatter of pair similarity vs d (PCRM's constraint δ*(s) bounds d by similarity; the upstream code dumps this).

CLI: ``python -m common.eval.reward --scores runs/x/rm/eval_scores.jsonl --output_dir runs/x/rm_eval`` over records
``{"chosen_score": float, "rejected_score": float, "strength"?: float, "similarity"?: float}``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from common.artifacts import RunDir, read_jsonl
from common.config import UserError, stage_cli


def pairwise_accuracy(chosen: Sequence[float], rejected: Sequence[float]) -> dict[str, Any]:
    """Share of pairs with r_c > r_r; ties (r_c == r_r) reported on their own, and as half a win."""
    c, r = np.asarray(chosen, dtype=float), np.asarray(rejected, dtype=float)
    if c.shape != r.shape:
        raise ValueError(f"{c.shape[0]} chosen scores but {r.shape[0]} rejected scores")
    n = int(c.size)
    wins, ties = int((c > r).sum()), int((c == r).sum())
    return {
        "n_pairs": n,
        "accuracy": wins / n if n else None,
        "n_ties": ties,
        "tie_rate": ties / n if n else None,
        "accuracy_ties_half": (wins + 0.5 * ties) / n if n else None,
    }


def rank_correlations(margins: Sequence[float], strength: Sequence[float]) -> dict[str, float | None]:
    """Kendall τ_b and Spearman ρ of margins against preference strength; None where undefined (constant input)."""
    from scipy.stats import kendalltau, spearmanr

    m, s = np.asarray(margins, dtype=float), np.asarray(strength, dtype=float)
    if m.size < 2 or np.ptp(m) == 0 or np.ptp(s) == 0:
        return {"kendall_tau": None, "spearman_rho": None}
    return {"kendall_tau": float(kendalltau(m, s).statistic), "spearman_rho": float(spearmanr(m, s).statistic)}


def margin_stats(margins: Sequence[float]) -> dict[str, float | None]:
    """mean, std, min, p50, p95, max of r_c − r_r (numpy's linear-interpolation percentiles)."""
    m = np.asarray(margins, dtype=float)
    if m.size == 0:
        return {k: None for k in ("margin_mean", "margin_std", "margin_min", "margin_p50", "margin_p95", "margin_max")}
    return {
        "margin_mean": float(m.mean()),
        "margin_std": float(m.std()),
        "margin_min": float(m.min()),
        "margin_p50": float(np.percentile(m, 50)),
        "margin_p95": float(np.percentile(m, 95)),
        "margin_max": float(m.max()),
    }


def plot_similarity_vs_margin(similarity: Sequence[float], margins: Sequence[float], path: str | Path,
                              title: str = "") -> Path:
    """PNG scatter: x = pair similarity s ∈ [0, 1], y = margin r_c − r_r, with the zero line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(similarity, margins, s=8, alpha=0.5)
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_xlabel("pair similarity s")
    ax.set_ylabel("margin r(chosen) − r(rejected)")
    ax.set_title(title or f"{len(margins)} pairs")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def reward_metrics(records: list[dict], chosen_key: str = "chosen_score", rejected_key: str = "rejected_score",
                   strength_key: str = "strength", similarity_key: str = "similarity",
                   where: str = "scores") -> dict[str, Any]:
    """All metrics above from scored records; strength/similarity columns are used when every record has them."""
    if not records:
        raise UserError(f"{where}: no scored pairs")
    for i, rec in enumerate(records):
        for key in (chosen_key, rejected_key):
            value = rec.get(key)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise UserError(f"{where}:{i + 1}: {key!r} must be a finite number, got {value!r}")
    chosen = [float(r[chosen_key]) for r in records]
    rejected = [float(r[rejected_key]) for r in records]
    margins = [c - r for c, r in zip(chosen, rejected)]
    out: dict[str, Any] = {**pairwise_accuracy(chosen, rejected), **margin_stats(margins)}
    if all(r.get(strength_key) is not None for r in records):
        out.update(rank_correlations(margins, [float(r[strength_key]) for r in records]))
    return out


@dataclass
class RewardEvalConfig:
    """Metrics over an RM's scored eval pairs (eval_scores.jsonl)."""

    scores: str = field(default="", metadata={"help": "jsonl with chosen/rejected scores per pair"})
    output_dir: str = field(default="runs/rm_eval", metadata={"help": "run folder: metrics.json, similarity plot"})
    chosen_key: str = field(default="chosen_score", metadata={"help": "record key of r(chosen)"})
    rejected_key: str = field(default="rejected_score", metadata={"help": "record key of r(rejected)"})
    strength_key: str = field(default="strength", metadata={"help": "record key of preference strength, if any"})
    similarity_key: str = field(default="similarity", metadata={"help": "record key of pair similarity, if any"})
    overwrite: bool = field(default=False, metadata={"help": "replace a finished run in output_dir"})

    def __post_init__(self) -> None:
        if not self.scores:
            raise UserError("scores: pass the scored pairs file (--scores eval_scores.jsonl)")


def evaluate_reward(cfg: RewardEvalConfig) -> dict[str, Any]:
    if not Path(cfg.scores).is_file():
        raise UserError(f"scores: {cfg.scores} does not exist")
    records = read_jsonl(cfg.scores)
    metrics = reward_metrics(records, cfg.chosen_key, cfg.rejected_key, cfg.strength_key, cfg.similarity_key,
                             where=cfg.scores)
    run = RunDir.start(cfg.output_dir, cfg, overwrite=cfg.overwrite)
    if all(r.get(cfg.similarity_key) is not None for r in records):
        plot = plot_similarity_vs_margin([float(r[cfg.similarity_key]) for r in records],
                                         [r[cfg.chosen_key] - r[cfg.rejected_key] for r in records],
                                         run.path / "similarity_vs_margin.png")
        metrics["similarity_plot"] = plot.name
    out = run.finish(metrics, key_metric="accuracy")
    print({k: v for k, v in out.items() if k != "similarity_plot"})
    return out


def main(argv: list[str] | None = None) -> None:
    stage_cli(RewardEvalConfig, evaluate_reward, "rm_eval", __doc__.split("\n")[0], argv)


if __name__ == "__main__":
    main()
