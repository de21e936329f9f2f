"""The per-loop table and plot of one SER run: pairs selected, self-label agreement, selection and held-out accuracy.

Selection accuracy is what the loop steers by (plateau, loop kept); held-out accuracy is only reported."""

from __future__ import annotations

from pathlib import Path

from common.artifacts import atomic_write_text


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def loop_table(loops: list[dict], seed_only: float | None, full_label: float | None,
               best_loop: int | None = None) -> str:
    """Markdown: one row per loop (the kept one starred), then the baselines (seed-only RM = loop 0; 100% labels)."""
    lines = [("| loop | selected (status 1 / 2) | self-label agreement % | self-labelled total | train pairs | "
             "selection acc % | held-out acc % |"), "|---:|---|---:|---:|---:|---:|---:|"]
    for r in loops:
        sel = "-" if r["loop"] == 0 else f"{r['selected']} ({r['selected_status1']} / {r['selected_status2']})"
        accs = (f"{_pct(r.get('selection_accuracy'))} | {_pct(r.get('heldout_accuracy'))}" if r["trained"]
                else "not trained | not trained")
        star = " (kept)" if r["loop"] == best_loop else ""
        lines.append(f"| {r['loop']}{star} | {sel} | {_pct(r.get('agreement'))} | "
                     f"{r.get('self_labelled_total', '-')} | {r.get('train_pairs', '-')} | {accs} |")
    lines.append(f"| seed-only RM | | | | | | {_pct(seed_only)} |")
    lines.append(f"| 100%-label RM | | | | | | {_pct(full_label)} |")
    return "\n".join(lines)


def plot_loops(path: Path, loops: list[dict], seed_only: float | None, full_label: float | None,
               title: str = "SER") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trained = [r for r in loops if r["trained"]]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot([r["loop"] for r in trained], [100 * r["heldout_accuracy"] for r in trained], "o-",
            label="SER RM, held-out")
    ax.plot([r["loop"] for r in trained], [100 * r["selection_accuracy"] for r in trained], "^:", color="C0",
            alpha=0.6, label="SER RM, selection pairs")
    sel = [r for r in loops if r["loop"] > 0 and r.get("agreement") is not None]
    if sel:
        ax.plot([r["loop"] for r in sel], [100 * r["agreement"] for r in sel], "s--", label="self-label agreement")
    if seed_only is not None:
        ax.axhline(100 * seed_only, color="gray", ls=":", label="seed-only RM")
    if full_label is not None:
        ax.axhline(100 * full_label, color="green", ls="-.", label="100%-label RM")
    ax.set_xlabel("loop")
    ax.set_ylabel("%")
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(out: Path, loops: list[dict], metrics: dict) -> str:
    table = loop_table(loops, metrics["seed_only_accuracy"], metrics["full_label_accuracy"], metrics["best_loop"])
    atomic_write_text(out / "ser_table.md", table + "\n")
    plot_loops(out / "ser_loops.png", loops, metrics["seed_only_accuracy"], metrics["full_label_accuracy"],
               title=f"SER, seed {100 * metrics['seed_fraction']:g}%")
    return table
