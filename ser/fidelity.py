"""`make ser-fidelity`: the SER loop on two real preference sets at seed fractions 1%, 5%, 15%, on two CPU cores.

    python -m ser.fidelity --output_dir runs/ser/fidelity [--data_root /work/shared/data]

Sets: HH-RLHF test rows (hard for a small encoder) and SST-2 sentiment pairs (positive review ≻ negative review),
each split into held-out (reported only) / selection (steers the loop) / labelled seed / unlabelled pool. RM: the embedded MiniLM encoder kept frozen, with a
linear head trained by Bradley-Terry (``ser.encoder_head``); embeddings are cached per set, so the 6 runs and their
baselines share one encoding pass. Writes each run's folder, ``results.md`` (all per-loop tables) and
``fidelity.png``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from common.artifacts import RunDir, atomic_write_text
from common.config import stage_cli
from ser.loop import SERConfig, run_ser
from ser.loop_report import loop_table


@dataclass
class FidelityConfig:
    output_dir: str = "runs/ser/fidelity"
    data_root: str = "/work/shared/data"
    datasets: list[str] = field(default_factory=lambda: ["sst2", "hh_local"])
    seed_fractions: list[float] = field(default_factory=lambda: [0.01, 0.05, 0.15])
    pairs: int = 1800  # per set: held-out + selection + 1,100 seed/pool pairs (>= 1,000 asked)
    heldout_size: int = 400  # reported only
    selection_size: int = 300  # steers the loop (plateau, loop kept)
    max_loops: int = 4
    l2: float = 1e-4
    status_schedule: str = "both"
    seed: int = 42
    overwrite: bool = False


def run_fidelity(cfg: FidelityConfig) -> dict:
    out = Path(cfg.output_dir)
    run = RunDir.start(out, cfg, seed=cfg.seed, overwrite=cfg.overwrite)
    sections, results = [], {}
    for ds in cfg.datasets:
        for frac in cfg.seed_fractions:
            name = f"{ds}/seed_{100 * frac:g}pct"
            sub = SERConfig(output_dir=str(out / name), dataset=ds, data_path=cfg.data_root, limit=cfg.pairs,
                            heldout_size=cfg.heldout_size, selection_size=cfg.selection_size, seed_fraction=frac,
                            max_loops=cfg.max_loops,
                            status_schedule=cfg.status_schedule, backend="frozen_encoder", seed=cfg.seed,
                            rm={"cache_path": str(out / ds / "embeddings.npz"), "l2": cfg.l2, "seed": cfg.seed},
                            overwrite=cfg.overwrite)
            m = run_ser(sub)
            results[name] = {k: m[k] for k in ("seed_only_accuracy", "ser_accuracy", "full_label_accuracy",
                                               "best_loop", "stop_reason", "self_labelled_total", "sizes")}
            results[name]["loops"] = m["loops"]
            table = loop_table(m["loops"], m["seed_only_accuracy"], m["full_label_accuracy"], m["best_loop"])
            sections.append(f"### {ds}, seed {100 * frac:g}% ({m['sizes']['seed']} labelled, "
                            f"{m['sizes']['pool']} pool, {m['sizes']['selection']} selection, "
                            f"{m['sizes']['heldout']} held-out; stop: {m['stop_reason']})\n\n{table}\n")
    summary = ["| set | seed % | seed-only RM | SER RM (loop kept) | 100%-label RM | gap closed |",
               "|---|---:|---:|---:|---:|---:|"]
    for name, r in results.items():
        ds, frac = name.split("/")
        gap = r["full_label_accuracy"] - r["seed_only_accuracy"]
        closed = f"{100 * (r['ser_accuracy'] - r['seed_only_accuracy']) / gap:.0f}%" if gap > 0 else "n/a"
        summary.append(f"| {ds} | {frac[5:-3]} | {100 * r['seed_only_accuracy']:.1f} | {100 * r['ser_accuracy']:.1f} "
                       f"(loop {r['best_loop']}) | {100 * r['full_label_accuracy']:.1f} | {closed} |")
    text = "\n".join(summary) + "\n\n" + "\n".join(sections)
    atomic_write_text(out / "results.md", "# SER fidelity\n\n" + text)
    atomic_write_text(out / "results.json", json.dumps(results, indent=2))
    _plot(out / "fidelity.png", results, cfg)
    print(text, flush=True)
    best15 = [r["ser_accuracy"] for n, r in results.items() if n.startswith("sst2/seed_15")]
    return run.finish({"runs": {n: {k: v for k, v in r.items() if k != "loops"} for n, r in results.items()},
                       "sst2_ser_accuracy_15pct": best15[0] if best15 else None},
                      key_metric="sst2_ser_accuracy_15pct" if best15 else None)


def _plot(path: Path, results: dict, cfg: FidelityConfig) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(cfg.datasets), figsize=(5 * len(cfg.datasets), 3.6), squeeze=False)
    for ax, ds in zip(axes[0], cfg.datasets):
        for i, frac in enumerate(cfg.seed_fractions):
            r = results[f"{ds}/seed_{100 * frac:g}pct"]
            trained = [x for x in r["loops"] if x["trained"]]
            ax.plot([x["loop"] for x in trained], [100 * x["heldout_accuracy"] for x in trained], "o-",
                    color=f"C{i}", label=f"SER, seed {100 * frac:g}%")
        full = results[f"{ds}/seed_{100 * cfg.seed_fractions[0]:g}pct"]["full_label_accuracy"]
        ax.axhline(100 * full, color="k", ls="--", label="100%-label RM")
        ax.set_title(f"{ds}: held-out pairwise accuracy")
        ax.set_xlabel("loop (0 = seed-only RM)")
        ax.set_ylabel("%")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    stage_cli(FidelityConfig, run_fidelity, "fidelity", "SER fidelity run (MiniLM frozen encoder + head, CPU).", argv)


if __name__ == "__main__":
    main()
