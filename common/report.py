"""Collect every stage's ``metrics.json`` under run folders into one markdown table, with plots.

``python -m common.report runs/demo [--out reports/demo]`` prints the table; each row is one stage run
(``runs/<...>/<paper>/<model>/<stage>/metrics.json``) with its wall time, its key metric and, where the paper gives
one, the paper's number for that metric. With ``--out`` it also writes ``report.md``, one training-curve PNG per run
that left a log (``log.jsonl`` records or a HF ``trainer_state.json`` ``log_history``: loss, reward and KL panels) and
one bar plot per (paper, key metric) shared by two or more runs (the variants side by side, the paper's number as a
dashed line).

Paper numbers live in ``<paper>/reported.yaml``, a mapping of metric name to value and source::

    rm/accuracy:                      # "<stage>/<metric>": rows whose run folder is named <stage>
      value: 0.85
      source: "[CODE] Llama-2-7b RM validation accuracy, Hunter-Wrynn/RLDF training log"
    acc_amb:                          # "<metric>": any stage of this paper reporting acc_amb
      value: 0.072
      source: "[CODE] RLCHF README, Llama-3.1-8B baseline"

A ``<stage>/<metric>`` entry wins over a bare ``<metric>`` one. Paper-folder names: rldf, rllr, rlchf, pcrm, ser.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import yaml

from common.artifacts import REPO_ROOT, atomic_write_text
from common.config import UserError, run_cli

PAPERS = ("rldf", "rllr", "rlchf", "pcrm", "ser")
CURVE_GROUPS = {"loss": ("loss",), "reward": ("reward", "score"), "kl": ("kl",)}


def _paper_of(path: Path) -> str:
    for part in path.parts:
        if part in PAPERS:
            return part
    return "-"


def read_reported(paper: str, papers_root: str | Path = REPO_ROOT) -> dict[str, dict[str, Any]]:
    """``<papers_root>/<paper>/reported.yaml`` checked: each entry needs a numeric ``value`` and a ``source``."""
    path = Path(papers_root) / paper / "reported.yaml"
    if paper == "-" or not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of metric name -> {{value, source}}")
    for name, entry in data.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("value"), (int, float)) or not entry.get("source"):
            raise UserError(f"{path}: {name}: expected {{value: <number>, source: <where the paper gives it>}}, "
                            f"got {entry!r}")
    return data


def reported_for(reported: dict[str, dict[str, Any]], run: str, metric: str) -> dict[str, Any] | None:
    stage = Path(run).name
    return reported.get(f"{stage}/{metric}") or reported.get(metric)


def collect_runs(roots: list[str | Path], papers_root: str | Path | None = REPO_ROOT) -> list[dict[str, Any]]:
    """One row per metrics.json under ``roots``: paper, run (path below the root), wall time, key metric, and the
    paper's reported number for it (``reported``: {value, source} or None). ``papers_root=None`` skips the lookup."""
    rows = []
    cache: dict[str, dict] = {}
    for root in map(Path, roots):
        if not root.exists():
            raise UserError(f"run folder {root} does not exist")
        for metrics_path in sorted(root.rglob("metrics.json")):
            try:
                metrics = json.loads(metrics_path.read_text())
            except json.JSONDecodeError:
                raise UserError(f"{metrics_path}: not valid JSON") from None
            key = metrics.get("key_metric")
            paper = _paper_of(metrics_path.relative_to(root))
            run = str(metrics_path.parent.relative_to(root)) or "."
            if papers_root is not None and paper not in cache:
                cache[paper] = read_reported(paper, papers_root)
            rows.append({
                "paper": paper,
                "run": run,
                "run_dir": str(metrics_path.parent),
                "wall_time_s": metrics.get("wall_time_s"),
                "metric": key or "",
                "value": metrics.get(key) if key else None,
                "reported": reported_for(cache.get(paper, {}), run, key) if key else None,
                "metrics": metrics,
            })
    return rows


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return "(structured)"
    return str(value)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The results table; a "paper reports" column (value and source) appears when any row has a paper number."""
    with_paper = any(r.get("reported") for r in rows)
    header = "| paper | stage run | wall time (s) | key metric | value |"
    rule = "|---|---|---:|---|---:|"
    if with_paper:
        header += " paper reports | source |"
        rule += "---:|---|"
    body = []
    for r in rows:
        line = f"| {r['paper']} | {r['run']} | {_fmt(r['wall_time_s'])} | {r['metric'] or '-'} | {_fmt(r['value'])} |"
        if with_paper:
            rep = r.get("reported") or {}
            line += f" {_fmt(rep.get('value'))} | {str(rep.get('source', '-')).replace('|', '/')} |"
        body.append(line)
    return "\n".join([header, rule, *body])


# --- Plots. -----------------------------------------------------------------------------------------------------


def read_log_history(run_dir: str | Path) -> list[dict[str, Any]]:
    """Logged records of a run: ``log.jsonl`` if present, else the newest ``trainer_state.json`` ``log_history``."""
    from common.artifacts import read_jsonl

    run_dir = Path(run_dir)
    if (run_dir / "log.jsonl").is_file():
        return read_jsonl(run_dir / "log.jsonl", tolerate_torn_tail=True)
    states = sorted(run_dir.glob("**/trainer_state.json"), key=lambda p: p.stat().st_mtime)
    if states:
        return list(json.loads(states[-1].read_text()).get("log_history", []))
    return []


def curve_series(history: list[dict[str, Any]]) -> dict[str, dict[str, tuple[list[float], list[float]]]]:
    """{group: {key: (steps, values)}} for numeric keys naming a loss, reward or KL (learning rate etc. left out)."""
    out: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    for i, rec in enumerate(history):
        step = rec.get("step", rec.get("global_step", i))
        for key, value in rec.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or key in ("step", "global_step"):
                continue
            words = re.split(r"[^a-z]+", key.lower())
            for group, needles in CURVE_GROUPS.items():
                if any(w.startswith(n) for w in words for n in needles):
                    steps, values = out.setdefault(group, {}).setdefault(key, ([], []))
                    steps.append(float(step))
                    values.append(float(value))
                    break
    return out


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_training_curves(run_dir: str | Path, path: str | Path, title: str = "") -> Path | None:
    """One panel each for loss, reward and KL curves of a run; None when the run logged none of them."""
    series = curve_series(read_log_history(run_dir))
    if not series:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(series), figsize=(4.5 * len(series), 3.5), squeeze=False)
    for ax, (group, curves) in zip(axes[0], series.items()):
        for key, (steps, values) in curves.items():
            ax.plot(steps, values, label=key, linewidth=1.2)
        ax.set_title(group)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    fig.suptitle(title or str(run_dir), fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_metric_bars(rows: list[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Bars of one metric across variants (rows), the paper's number (if any) as a dashed line."""
    plt = _pyplot()
    values = [float(r["value"]) for r in rows]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(rows)), 3.5))
    ax.bar(range(len(rows)), values)
    ax.set_xticks(range(len(rows)), [r["run"] for r in rows], rotation=30, ha="right", fontsize=7)
    reported = next((r["reported"] for r in rows if r.get("reported")), None)
    if reported:
        ax.axhline(reported["value"], color="black", linestyle="--", linewidth=1, label="paper")
        ax.legend(fontsize=7)
    ax.set_ylabel(rows[0]["metric"])
    ax.set_title(title or rows[0]["metric"], fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_") or "run"


def write_report(rows: list[dict[str, Any]], out: str | Path) -> Path:
    """report.md (table + plot links) and the PNGs into ``out``; returns the report path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lines = ["# Results", "", markdown_table(rows), ""]
    curves, used = [], set()
    for r in rows:
        name = f"curves_{_slug(r['paper'] + '_' + r['run'])}"
        # two roots can hold the same relative run path; never let one plot overwrite another
        name = next(n for n in (f"{name}_{i}" if i else name for i in range(len(rows) + 1)) if n not in used)
        used.add(name)
        png = plot_training_curves(r["run_dir"], out / f"{name}.png", r["run"])
        if png:
            curves.append(f"![{r['run']}]({png.name})")
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        if r["metric"] and isinstance(r["value"], (int, float)) and not isinstance(r["value"], bool):
            groups.setdefault((r["paper"], r["metric"]), []).append(r)
    bars = [plot_metric_bars(g, out / f"bars_{_slug(p + '_' + m)}.png", f"{p}: {m}")
            for (p, m), g in groups.items() if len(g) >= 2]
    if bars:
        lines += ["## Variants", "", *[f"![{b.stem}]({b.name})" for b in bars], ""]
    if curves:
        lines += ["## Training curves", "", *curves, ""]
    atomic_write_text(out / "report.md", "\n".join(lines))
    return out / "report.md"


def leaderboard(run_dirs: list[str | Path], out: str | Path | None = None) -> str:
    """Every reward model under ``run_dirs`` with its RewardBench sections and in-domain accuracy (discovery rule in
    ``common.eval.rm_leaderboard``); writes leaderboard.md/.png into ``out`` when given. Returns the table."""
    from common.eval.rm_leaderboard import collect_leaderboard, leaderboard_table, write_leaderboard

    rows = collect_leaderboard(list(run_dirs))
    if out:
        write_leaderboard(rows, out)
    return leaderboard_table(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="+", help="folders searched recursively for metrics.json")
    parser.add_argument("--out", help="folder for report.md and the PNG plots (table only on stdout without it)")
    parser.add_argument("--papers_root", default=str(REPO_ROOT), help="where <paper>/reported.yaml files live")
    parser.add_argument("--leaderboard", action="store_true",
                        help="instead: one table + bar plot of every reward model (RewardBench sections, in-domain "
                             "accuracy); writes leaderboard.md/.png into --out")
    args = parser.parse_args(argv)

    def go() -> None:
        if args.leaderboard:
            print(leaderboard(args.run_dirs, args.out))
            if args.out:
                print(f"\nleaderboard: {Path(args.out) / 'leaderboard.md'}")
            return
        rows = collect_runs(args.run_dirs, args.papers_root)
        print(markdown_table(rows))
        if args.out:
            print(f"\nreport: {write_report(rows, args.out)}")

    run_cli(go)


if __name__ == "__main__":
    main()
