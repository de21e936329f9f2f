"""Collect every stage's ``metrics.json`` under run folders into one markdown table.

``python -m common.report runs/demo`` prints the table; each row is one stage run
(``runs/<...>/<paper>/<model>/<stage>/metrics.json``) with its wall time and its key metric.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from common.config import UserError, run_cli

PAPERS = ("rldf", "rllr", "rlchf", "pcrm", "ser")


def _paper_of(path: Path) -> str:
    for part in path.parts:
        if part in PAPERS:
            return part
    return "-"


def collect_runs(roots: list[str | Path]) -> list[dict[str, Any]]:
    """One row per metrics.json under ``roots``: paper, run (path below the root), wall time, key metric."""
    rows = []
    for root in map(Path, roots):
        if not root.exists():
            raise UserError(f"run folder {root} does not exist")
        for metrics_path in sorted(root.rglob("metrics.json")):
            metrics = json.loads(metrics_path.read_text())
            key = metrics.get("key_metric")
            rows.append({
                "paper": _paper_of(metrics_path.relative_to(root)),
                "run": str(metrics_path.parent.relative_to(root)) or ".",
                "wall_time_s": metrics.get("wall_time_s"),
                "metric": key or "",
                "value": metrics.get(key) if key else None,
                "metrics": metrics,
            })
    return rows


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    header = "| paper | stage run | wall time (s) | key metric | value |\n|---|---|---:|---|---:|"
    body = [
        f"| {r['paper']} | {r['run']} | {_fmt(r['wall_time_s'])} | {r['metric'] or '-'} | {_fmt(r['value'])} |"
        for r in rows
    ]
    return "\n".join([header, *body])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="+", help="folders searched recursively for metrics.json")
    args = parser.parse_args(argv)
    run_cli(lambda: print(markdown_table(collect_runs(args.run_dirs))))


if __name__ == "__main__":
    main()
