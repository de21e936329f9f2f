"""`make ser-fidelity`: the SER loop on two real preference sets at seed fractions 1%, 5%, 15%, on two CPU cores.

    python -m ser.fidelity --output_dir runs/ser/fidelity [--data_root DIR]

Sets: HH-RLHF test rows (hard for a small encoder) and SST-2 sentiment pairs (positive review ≻ negative review),
each split into held-out (reported only) / selection (steers the loop) / labelled seed / unlabelled pool. RM: the embedded MiniLM encoder kept frozen, with a
linear head trained by Bradley-Terry (``ser.encoder_head``); embeddings are cached per set, so the 6 runs and their
baselines share one encoding pass. Every (set, seed fraction) runs on ``seeds`` different splits, so the summary
gives mean ± sd and each split's SER gain. Writes each run's folder, ``results.md`` (summary + every per-loop
table), ``results.json`` and ``fidelity.png``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.artifacts import RunDir, atomic_write_text
from common.config import stage_cli
from ser.loop import SERConfig, run_ser
from ser.loop_report import loop_table


@dataclass
class FidelityConfig:
    output_dir: str = "runs/ser/fidelity"
    # data root holding glue/sst2 and hh-rlhf; mirror: = the shared mirror (common.hub_data; make's DATA_ROOT=<folder>)
    data_root: str = "mirror:"
    datasets: list[str] = field(default_factory=lambda: ["sst2", "hh_local"])
    seed_fractions: list[float] = field(default_factory=lambda: [0.01, 0.05, 0.15])
    pairs: int = 1800  # per set: held-out + selection + 1,100 seed/pool pairs (>= 1,000 asked)
    heldout_size: int = 400  # reported only
    selection_size: int = 300  # steers the loop (plateau, loop kept)
    max_loops: int = 4
    backend: str = "frozen_encoder"  # or common_rm: MiniLM fine-tuned by common.train.rm each loop (finetune_rm)
    l2: float = 1e-4  # frozen_encoder: λ of the head
    finetune_rm: dict = field(default_factory=lambda: {
        "model_name_or_path": "embedded:all-minilm-l6-v2", "template": "plain",
        "learning_rate": 3e-4, "num_train_epochs": 3, "per_device_train_batch_size": 16,
        "per_device_eval_batch_size": 64, "max_length": 64, "report_to": "none", "save_steps": 100000})
    # [GUESS] sized for CPU minutes; at lr 5e-5 x 2 epochs the RM ranks well (81 % at 15 %) but its scores stay
    # within ±0.3, so σ(r) never leaves [0.45, 0.55] and the filter selects nothing
    status_schedule: str = "both"
    # split seeds (the table gives mean ± sd); the pair sample is the first seed's for all, so encodings are reused
    seeds: list[int] = field(default_factory=lambda: [42, 43, 44])
    overwrite: bool = False


def run_fidelity(cfg: FidelityConfig) -> dict:
    out = Path(cfg.output_dir)
    run = RunDir.start(out, cfg, seed=cfg.seeds[0], overwrite=cfg.overwrite)
    sections, results = [], {}
    for ds in cfg.datasets:
        for frac in cfg.seed_fractions:
            for split_seed in cfg.seeds:
                name = f"{ds}/seed_{100 * frac:g}pct/split_{split_seed}"
                sub = SERConfig(output_dir=str(out / name), dataset=ds, data_path=cfg.data_root, limit=cfg.pairs,
                                heldout_size=cfg.heldout_size, selection_size=cfg.selection_size,
                                seed_fraction=frac, max_loops=cfg.max_loops, status_schedule=cfg.status_schedule,
                                backend=cfg.backend, seed=split_seed, data_seed=cfg.seeds[0],
                                overwrite=cfg.overwrite, rm=rm_settings(cfg, out / ds, split_seed),
                                full_label_from=None if frac == cfg.seed_fractions[0] else
                                str(out / ds / f"seed_{100 * cfg.seed_fractions[0]:g}pct" / f"split_{split_seed}"
                                    / "baseline_full"))
                m = run_ser(sub)
                results[name] = {k: m[k] for k in ("seed_only_accuracy", "ser_accuracy", "full_label_accuracy",
                                                   "best_loop", "stop_reason", "self_labelled_total", "sizes",
                                                   "loops")}
                table = loop_table(m["loops"], m["seed_only_accuracy"], m["full_label_accuracy"], m["best_loop"])
                sections.append(f"### {ds}, seed {100 * frac:g}%, split seed {split_seed} ({m['sizes']['seed']} "
                                f"labelled, {m['sizes']['pool']} pool, {m['sizes']['selection']} selection, "
                                f"{m['sizes']['heldout']} held-out; stop: {m['stop_reason']})\n\n{table}\n")
    rows = summary_rows(results, cfg)
    text = summary_table(rows, len(cfg.seeds)) + "\n\n" + "\n".join(sections)
    atomic_write_text(out / "results.md", "# SER fidelity\n\n" + text)
    atomic_write_text(out / "results.json", json.dumps({"summary": rows, "runs": results}, indent=2))
    _plot(out / "fidelity.png", rows, cfg)
    print(text, flush=True)
    at15 = [r for r in rows if r["set"] == "sst2" and r["seed_fraction"] == 0.15]
    return run.finish({"summary": rows, "runs": {n: {k: v for k, v in r.items() if k != "loops"}
                                                  for n, r in results.items()},
                       "sst2_ser_accuracy_15pct": at15[0]["ser"][0] if at15 else None},
                      key_metric="sst2_ser_accuracy_15pct" if at15 else None)


def rm_settings(cfg: FidelityConfig, set_dir: Path, split_seed: int) -> dict:
    if cfg.backend == "frozen_encoder":  # one embedding cache per set, shared by every split and fraction
        return {"cache_path": str(set_dir / "embeddings.npz"), "l2": cfg.l2, "seed": split_seed}
    return {**cfg.finetune_rm, "seed": split_seed}


def summary_rows(results: dict, cfg: FidelityConfig) -> list[dict]:
    """Per set and seed fraction: mean and standard deviation over the split seeds of each RM's held-out accuracy."""
    rows = []
    for ds in cfg.datasets:
        for frac in cfg.seed_fractions:
            runs = [results[f"{ds}/seed_{100 * frac:g}pct/split_{s}"] for s in cfg.seeds]

            def stat(key: str, runs: list[dict] = runs) -> tuple[float, float]:
                values = np.array([r[key] for r in runs], dtype=float)
                return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0

            seed_only, ser, full = stat("seed_only_accuracy"), stat("ser_accuracy"), stat("full_label_accuracy")
            gap = full[0] - seed_only[0]
            rows.append({"set": ds, "seed_fraction": frac, "seed_only": seed_only, "ser": ser, "full": full,
                         "gap_closed": (ser[0] - seed_only[0]) / gap if gap > 0.005 else None,
                         "ser_gain_per_split": [r["ser_accuracy"] - r["seed_only_accuracy"] for r in runs],
                         "loops_kept": [r["best_loop"] for r in runs]})
    return rows


def summary_table(rows: list[dict], n_seeds: int) -> str:
    def ms(x: tuple[float, float]) -> str:  # one split has no spread to show
        return f"{100 * x[0]:.1f} ± {100 * x[1]:.1f}" if n_seeds > 1 else f"{100 * x[0]:.1f}"

    over = f"mean ± sd over {n_seeds} split seeds" if n_seeds > 1 else "one split"
    caption = f"Held-out pairwise accuracy %, {over} (SER = the loop the selection pairs kept):"
    header = ("| set | seed % | seed-only RM | SER RM | 100%-label RM | gap closed | SER − seed-only per split | "
              "loop kept |")
    lines = [caption, "", header, "|---|---:|---:|---:|---:|---:|---|---|"]
    for r in rows:
        closed = "n/a (no gap)" if r["gap_closed"] is None else f"{100 * r['gap_closed']:.0f}%"
        gains = ", ".join(f"{100 * g:+.1f}" for g in r["ser_gain_per_split"])
        lines.append(f"| {r['set']} | {100 * r['seed_fraction']:g} | {ms(r['seed_only'])} | {ms(r['ser'])} | "
                     f"{ms(r['full'])} | {closed} | {gains} | {', '.join(map(str, r['loops_kept']))} |")
    return "\n".join(lines)


def _plot(path: Path, rows: list[dict], cfg: FidelityConfig) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(cfg.datasets), figsize=(5 * len(cfg.datasets), 3.6), squeeze=False)
    for ax, ds in zip(axes[0], cfg.datasets, strict=True):
        mine = [r for r in rows if r["set"] == ds]
        x = [100 * r["seed_fraction"] for r in mine]
        for key, label, style in (("seed_only", "seed-only RM", "s:"), ("ser", "SER RM", "o-"),
                                  ("full", "100%-label RM", "k--")):
            ax.errorbar(x, [100 * r[key][0] for r in mine], yerr=[100 * r[key][1] for r in mine], fmt=style,
                        capsize=3, label=label)
        ax.set_xscale("log")
        ax.set_xticks(x, [f"{v:g}" for v in x])
        ax.set_title(f"{ds}: held-out pairwise accuracy ({len(cfg.seeds)} splits)")
        ax.set_xlabel("labelled seed (% of training pairs)")
        ax.set_ylabel("%")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    stage_cli(FidelityConfig, run_fidelity, "fidelity", "SER fidelity run (MiniLM on CPU: frozen + head, or "
              "fine-tuned).", argv)


if __name__ == "__main__":
    main()
