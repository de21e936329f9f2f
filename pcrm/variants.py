"""Train one reward model per PCRM variant on the same pairs and compare them: the paper's RM ablation in one process.

For each variant (baseline, len_rat, cos_sim, random, fixed): annotate the train pairs with δ* (``pcrm.prior``), train
the RM (``pcrm.rm``: common's trainer, pair term ``upper_bound``; ``none`` for baseline) with an evaluation after every
epoch, then score the held-out pairs. Reported per variant (``common.eval.reward`` for the metrics and plots):

- pairwise accuracy on held-out pairs;
- Kendall τ_b / Spearman ρ of the score difference against the human label. Our held-out sets only say which side
  won (binary), so each pair is shown in a seeded random order (A, B): we correlate x = r(A) − r(B) with
  y = 1 if A is the human-preferred side else 0. A perfect RM gives τ_b > 0 growing with how well |d| separates;
  a coin gives 0. (With graded labels one would correlate d with the label strength instead.)
- margin mean / p95 / max per epoch, and the share of held-out margins above the variant's own δ*;
- similarity-vs-margin scatter PNGs, with x = the len_rat and the cos_sim similarity of each held-out pair (the same
  x for every variant, so the panels compare).

    python -m pcrm.variants --config pcrm/configs/tiny.yaml --section variants data_dir=runs/.../data
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from common.artifacts import RunDir, atomic_write_text, read_jsonl, write_jsonl
from common.config import ConfigError, UserError, build_dataclass, stage_cli
from common.eval.reward import margin_stats, pairwise_accuracy, plot_similarity_vs_margin, rank_correlations
from pcrm.prior import KINDS, PriorConfig, annotate_prior
from pcrm.rm import PCRMRMConfig, train_pcrm_rm

SIMILARITY_KINDS = ("len_rat", "cos_sim")


@dataclass
class VariantsConfig:
    """Which variants to train and how; ``rm`` and ``prior`` are the shared settings of every variant."""

    data_dir: str = field(default="", metadata={"help": "folder with train.jsonl and eval.jsonl (pcrm.data)"})
    output_dir: str = field(default="runs/pcrm/variants", metadata={"help": "one sub-folder per variant + table"})
    variants: list[str] = field(default_factory=lambda: list(KINDS), metadata={"help": f"subset of {list(KINDS)}"})
    task: str = field(default="dialogue", metadata={"help": "δ* preset table: dialogue | tldr"})
    rm: dict = field(default_factory=dict, metadata={"help": "PCRMRMConfig settings shared by every variant"})
    prior: dict = field(default_factory=dict, metadata={"help": "PriorConfig settings (tokenizer, encoder, β...)"})
    rm_model: str | None = field(default=None, metadata={"help": "replaces rm.model_name_or_path (e.g. SFT model)"})
    rm_init: str = field(default="config", metadata={"help": "config (rm.model_name_or_path) | sft (the task's SFT "
                                                             "model, sft_model: upstream's RM init [CODE])"})
    sft_model: str | None = field(default=None, metadata={"help": "the task's SFT run folder (02_rm.sh passes it)"})
    seed: int = field(default=0, metadata={"help": "seed of the orientation draw for the rank correlation"})
    eval_each_epoch: bool = field(default=True, metadata={"help": "score the held-out pairs after every epoch (the "
                                                                  "margin-growth columns); false: at the end only"})
    overwrite: bool = field(default=False, metadata={"help": "replace finished runs in output_dir"})

    def __post_init__(self) -> None:
        unknown = [v for v in self.variants if v not in KINDS]
        if unknown or not self.variants:
            raise ConfigError(f"variants.variants: {unknown or self.variants} not in {list(KINDS)}")
        for key in ("dataset", "output_dir", "eval_dataset", "pair_term", "eval_each_epoch"):
            if key in self.rm:
                raise ConfigError(f"variants.rm.{key}: set by the driver per variant; remove it")
        for key in ("kind", "task", "input", "output_dir"):
            if key in self.prior:
                raise ConfigError(f"variants.prior.{key}: set by the driver per variant; remove it")
        if self.rm_init not in ("config", "sft"):
            raise ConfigError(f"variants.rm_init: {self.rm_init!r} is not one of ['config', 'sft']")
        if self.rm_model:  # an explicit backbone (RM_MODEL) wins over rm_init
            self.rm = {**self.rm, "model_name_or_path": self.rm_model}
        elif self.rm_init == "sft":
            if not self.sft_model:
                raise ConfigError("variants.sft_model: rm_init sft starts every RM from the task's SFT model; pass "
                                  "its folder (pcrm/scripts/02_rm.sh does), or set rm_init: config")
            self.rm = {**self.rm, "model_name_or_path": self.sft_model}
        if "model_name_or_path" not in self.rm:
            raise ConfigError("variants.rm.model_name_or_path: name the RM backbone (e.g. embedded:all-minilm-l6-v2)")


def oriented_correlation(chosen: list[float], rejected: list[float], seed: int) -> dict[str, float | None]:
    """Kendall τ_b / Spearman ρ of x = r(A) − r(B) vs y = [A is the chosen side], A/B a seeded random order."""
    rng = random.Random(seed)
    flips = [rng.random() < 0.5 for _ in chosen]
    x = [(r - c) if f else (c - r) for c, r, f in zip(chosen, rejected, flips)]
    y = [0.0 if f else 1.0 for f in flips]
    return rank_correlations(x, y)


def similarity_columns(records: list[dict], prior: dict, task: str) -> list[dict]:
    """Records plus ``sim_len_rat`` and ``sim_cos_sim`` (measurement only: the plots' x axes)."""
    out = [dict(r) for r in records]
    for kind in SIMILARITY_KINDS:
        annotated = annotate_prior(records, build_dataclass(PriorConfig, {**prior, "kind": kind, "task": task},
                                                            "variants.prior"))
        for rec, ann in zip(out, annotated):
            rec[f"sim_{kind}"] = ann["similarity"]
    return out


def run_variant(variant: str, train: list[dict], evals: list[dict], cfg: VariantsConfig) -> dict[str, Any]:
    folder = Path(cfg.output_dir) / variant
    finished = folder / "rm" / "metrics.json"
    resume = finished.is_file() and not cfg.overwrite  # a finished variant of a resumed sweep is reused, not retrained
    prior = build_dataclass(PriorConfig, {**cfg.prior, "kind": variant, "task": cfg.task}, "variants.prior")
    if not resume:
        write_jsonl(folder / "data" / "train.jsonl", annotate_prior(train, prior))
        # The sim_* measurement columns stay off the training file (the trainer carries numeric columns as extras).
        write_jsonl(folder / "data" / "eval.jsonl", annotate_prior(evals, prior))
    rm_cfg = build_dataclass(PCRMRMConfig, {
        **cfg.rm, "dataset": str(folder / "data" / "train.jsonl"),
        "eval_dataset": str(folder / "data" / "eval.jsonl"), "output_dir": str(folder / "rm"),
        "pair_term": "none" if variant == "baseline" else "upper_bound", "eval_each_epoch": cfg.eval_each_epoch,
        "overwrite": cfg.overwrite,
    }, f"variants.rm[{variant}]")
    if resume:
        print(f"reusing the finished RM of variant {variant}: {finished}", flush=True)
        rm_metrics = json.loads(finished.read_text())
    else:
        rm_metrics = train_pcrm_rm(rm_cfg)
    scores = read_jsonl(folder / "rm" / "eval_scores.jsonl")
    chosen = [s["chosen_score"] for s in scores]
    rejected = [s["rejected_score"] for s in scores]
    margins = [c - r for c, r in zip(chosen, rejected)]
    row: dict[str, Any] = {"variant": variant, **pairwise_accuracy(chosen, rejected), **margin_stats(margins),
                           **oriented_correlation(chosen, rejected, cfg.seed)}
    deltas = [s.get("delta_star") for s in scores]
    if all(d is not None for d in deltas):
        row["share_above_delta"] = float(np.mean([m > d for m, d in zip(margins, deltas)]))
    row["epochs"] = [{k: e[k] for k in ("epoch", "eval_accuracy", "eval_margin_mean", "eval_margin_p95",
                                        "eval_margin_max")} for e in rm_metrics.get("epochs", [])]
    row["train_pairs"] = rm_metrics["train_pairs"]
    for kind in SIMILARITY_KINDS:
        sims = [s[f"sim_{kind}"] for s in scores]  # eval_scores rows carry the eval records' extra columns
        plot_similarity_vs_margin(sims, margins, folder / f"similarity_{kind}_vs_margin.png",
                                  title=f"{variant}: {kind} similarity vs margin")
    return row


def variant_table(rows: list[dict]) -> str:
    """Markdown: one row per variant; the epoch columns show the margin's growth (mean / p95 / max)."""
    head = ("| variant | accuracy | Kendall τ_b | Spearman ρ | margin mean | margin p95 | margin max | share > δ* | "
            "margin mean/p95/max per epoch |")
    lines = [head, "|" + "---|" * 9]

    def f(x: Any) -> str:
        return "–" if x is None else f"{x:.3f}"

    for r in rows:
        per_epoch = "; ".join(f"{e['eval_margin_mean']:.2f}/{e['eval_margin_p95']:.2f}/{e['eval_margin_max']:.2f}"
                              for e in r["epochs"])
        lines.append(f"| {r['variant']} | {f(r['accuracy'])} | {f(r['kendall_tau'])} | {f(r['spearman_rho'])} | "
                     f"{f(r['margin_mean'])} | {f(r['margin_p95'])} | {f(r['margin_max'])} | "
                     f"{f(r.get('share_above_delta'))} | {per_epoch} |")
    return "\n".join(lines)


def plot_margin_growth(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for r in rows:
        epochs = [e["epoch"] for e in r["epochs"]]
        axes[0].plot(epochs, [e["eval_margin_mean"] for e in r["epochs"]], marker="o", label=r["variant"])
        axes[1].plot(epochs, [e["eval_margin_max"] for e in r["epochs"]], marker="o", label=r["variant"])
    for ax, name in zip(axes, ("held-out margin mean", "held-out margin max")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_variants(cfg: VariantsConfig) -> dict[str, Any]:
    data = Path(cfg.data_dir)
    if not (data / "train.jsonl").is_file() or not (data / "eval.jsonl").is_file():
        raise UserError(f"variants.data_dir: {data} must hold train.jsonl and eval.jsonl (run pcrm.data first)")
    run = RunDir.start(cfg.output_dir, cfg, seed=cfg.seed, overwrite=cfg.overwrite)
    train, evals = read_jsonl(data / "train.jsonl"), read_jsonl(data / "eval.jsonl")
    evals = similarity_columns(evals, cfg.prior, cfg.task)
    rows = [run_variant(v, train, evals, cfg) for v in cfg.variants]
    table = variant_table(rows)
    atomic_write_text(run.path / "variants.md", table + "\n")
    (run.path / "variants.json").write_text(json.dumps(rows, indent=2) + "\n")
    plot_margin_growth(rows, run.path / "margin_per_epoch.png", Path(cfg.data_dir).name)
    print(table, flush=True)
    metrics = {f"{r['variant']}_{k}": r[k] for r in rows for k in ("accuracy", "margin_mean", "margin_max")}
    first = f"{rows[0]['variant']}_accuracy"
    return run.finish(metrics, key_metric=first)


def main(argv: list[str] | None = None) -> None:
    stage_cli(VariantsConfig, run_variants, "variants", __doc__.split("\n")[0], argv)


if __name__ == "__main__":
    main()
