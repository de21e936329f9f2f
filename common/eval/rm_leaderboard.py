"""One leaderboard of every reward model under the run folders: RewardBench sections beside in-domain accuracy.

``python -m common.report --leaderboard runs/ [--out reports/rm]`` prints the table; with ``--out`` it also writes
``leaderboard.md`` and ``leaderboard.png`` (grouped bars: the four sections, overall and in-domain accuracy per RM).

Discovery rule (only what the run folders hold; nothing is guessed from folder names except the paper):
- an **RM run** is a folder whose ``metrics.json`` has ``eval_accuracy`` and ``eval_margin_mean``
  (``common.train.rm``; in-domain accuracy = ``eval_accuracy``) or ``eval_reward_accuracy`` (``common.train.dpo``: a
  DPO policy read as an implicit RM; in-domain accuracy = its reward accuracy);
- a **RewardBench run** is a folder whose ``metrics.json`` has ``benchmark: rewardbench``
  (``common.eval.rewardbench``); it belongs to the RM run whose folder is its ``model_path`` (the resolved
  ``--model``), wherever the two sit. The newest such run wins when one RM was scored several times;
- RM runs without a RewardBench run get a row with "-" sections; RewardBench runs of a model that is not an RM run
  under the roots (a hub RM as a baseline) get a row of their own.
Paper = the first path part named like a paper folder (rldf, rllr, rlchf, pcrm, ser); variant = the run's path below
that paper folder; base model = ``model_name_or_path`` of the run's ``config.yaml``, followed through local run
folders (SFT -> RM) down to the first name that is not a run folder (a hub id).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from common.artifacts import REPO_ROOT, atomic_write_text
from common.config import UserError
from common.eval.rewardbench import SECTION_KEYS

PAPERS = ("rldf", "rllr", "rlchf", "pcrm", "ser")
COLUMNS = (*SECTION_KEYS.values(), "rewardbench_overall")


def _read_metrics(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError:
        raise UserError(f"{path}: not valid JSON") from None
    return data if isinstance(data, dict) else {}


def _config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "config.yaml"
    data = yaml.safe_load(path.read_text()) if path.is_file() else None
    return data if isinstance(data, dict) else {}


def base_model(run_dir: Path, hops: int = 8) -> str:
    """``model_name_or_path`` of the run, followed through local run folders to the model it started from."""
    name = _config(run_dir).get("model_name_or_path")
    for _ in range(hops):
        if not name:
            return "-"
        local = next((p for p in (Path(name), REPO_ROOT / name) if (p / "config.yaml").is_file()), None)
        upstream = _config(local).get("model_name_or_path") if local else None
        if not upstream:
            return str(name)
        name = upstream
    return str(name)


def rm_kind(metrics: dict[str, Any]) -> tuple[str, float] | None:
    """("rm" | "dpo", in-domain accuracy) for an RM or DPO run's metrics; None for any other run."""
    if "eval_accuracy" in metrics and "eval_margin_mean" in metrics:
        return "rm", metrics["eval_accuracy"]
    if "eval_reward_accuracy" in metrics:
        return "dpo", metrics["eval_reward_accuracy"]
    return None


def _paper_and_variant(run_dir: Path, root: Path) -> tuple[str, str]:
    parts = run_dir.relative_to(root).parts
    for i, part in enumerate(parts):
        if part in PAPERS:
            return part, "/".join(parts[i + 1:]) or part
    return "-", "/".join(parts) or "."


def collect_leaderboard(roots: list[str | Path]) -> list[dict[str, Any]]:
    """One row per RM (and per RewardBench run of a model outside the roots), best overall score first."""
    rms: dict[Path, dict[str, Any]] = {}
    benches: dict[str, tuple[float, Path, dict[str, Any]]] = {}
    for root in map(Path, roots):
        if not root.exists():
            raise UserError(f"run folder {root} does not exist")
        for path in sorted(root.rglob("metrics.json")):
            metrics, run_dir = _read_metrics(path), path.parent.resolve()
            kind = rm_kind(metrics)
            if kind:
                paper, variant = _paper_and_variant(path.parent, root)
                rms[run_dir] = {"paper": paper, "variant": variant, "kind": kind[0], "in_domain_accuracy": kind[1],
                                "base_model": base_model(path.parent), "run_dir": str(path.parent)}
            if metrics.get("benchmark") == "rewardbench":
                model = str(metrics.get("model_path") or metrics.get("model"))
                model = str(Path(model).resolve()) if Path(model).exists() else model
                mtime = path.stat().st_mtime
                if model not in benches or mtime > benches[model][0]:
                    benches[model] = (mtime, path.parent, metrics)
    rows = []
    for run_dir, row in rms.items():
        bench = benches.pop(str(run_dir), None)
        rows.append({**row, **_bench_fields(bench[1] if bench else None, bench[2] if bench else {})})
    for model, (_, bench_dir, metrics) in benches.items():
        paper, _ = next(((_paper_and_variant(bench_dir, Path(r))) for r in roots
                         if bench_dir.resolve().is_relative_to(Path(r).resolve())), ("-", ""))
        rows.append({"paper": paper, "variant": metrics.get("model", model), "kind": metrics.get("scorer", {}).get(
            "scoring", "-"), "in_domain_accuracy": None, "base_model": metrics.get("model", model), "run_dir": "-",
            **_bench_fields(bench_dir, metrics)})
    rows.sort(key=lambda r: (r["rewardbench_overall"] is None, -(r["rewardbench_overall"] or 0.0), r["paper"],
                             r["variant"]))
    return rows


def _bench_fields(bench_dir: Path | None, metrics: dict[str, Any]) -> dict[str, Any]:
    return {**{k: metrics.get(k) for k in COLUMNS}, "rewardbench_pairs": metrics.get("n_pairs"),
            "rewardbench_run": str(bench_dir) if bench_dir else None}


def _pct(value: Any) -> str:
    return "-" if not isinstance(value, (int, float)) else f"{100 * value:.1f}"


def leaderboard_table(rows: list[dict[str, Any]]) -> str:
    """Markdown; scores in percent like RewardBench's leaderboard."""
    header = ("| paper | variant | kind | base model | Chat | Chat Hard | Safety | Reasoning | Overall | "
              "in-domain acc | RB pairs |")
    lines = [header, "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        scores = " | ".join(_pct(r[k]) for k in COLUMNS)
        lines.append(f"| {r['paper']} | {r['variant']} | {r['kind']} | {r['base_model']} | {scores} | "
                     f"{_pct(r['in_domain_accuracy'])} | {r['rewardbench_pairs'] or '-'} |")
    return "\n".join(lines)


def plot_leaderboard(rows: list[dict[str, Any]], path: str | Path) -> Path | None:
    """Grouped bars per RM: four sections, overall, in-domain accuracy (hatched); None when no row has a score."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = [r for r in rows if any(isinstance(r[k], (int, float)) for k in (*COLUMNS, "in_domain_accuracy"))]
    if not rows:
        return None
    series = [(name, key) for name, key in SECTION_KEYS.items()] + [("Overall", "rewardbench_overall"),
                                                                     ("in-domain", "in_domain_accuracy")]
    width = 0.8 / len(series)
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.4 * len(rows)), 4.0))
    for j, (name, key) in enumerate(series):
        values = [100 * r[key] if isinstance(r[key], (int, float)) else 0.0 for r in rows]
        ax.bar(x + (j - (len(series) - 1) / 2) * width, values, width, label=name,
               hatch="//" if key == "in_domain_accuracy" else None)
    ax.axhline(50, color="grey", linestyle=":", linewidth=1)  # a coin flip on every pair
    ax.set_xticks(x, [f"{r['paper']}/{r['variant']}" for r in rows], rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7, ncol=3)
    ax.set_title("Reward models: RewardBench sections and in-domain accuracy", fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def write_leaderboard(rows: list[dict[str, Any]], out: str | Path) -> Path:
    """leaderboard.md (table, plot link, discovery rule) and leaderboard.png into ``out``; returns the .md path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    png = plot_leaderboard(rows, out / "leaderboard.png")
    lines = ["# Reward-model leaderboard", "", leaderboard_table(rows), ""]
    if png:
        lines += [f"![leaderboard]({png.name})", ""]
    rule = ("Rows: RM runs (metrics.json with eval_accuracy + eval_margin_mean, or DPO eval_reward_accuracy) and "
            "RewardBench runs (benchmark: rewardbench) joined on the scored model's folder; see "
            "common/eval/rm_leaderboard.py.")
    lines += [rule, ""]
    atomic_write_text(out / "leaderboard.md", "\n".join(lines))
    return out / "leaderboard.md"
