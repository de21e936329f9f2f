"""One cross-paper fidelity table from every paper's ``claims.json``, a forest plot per paper, the README's status.

    python -m common.fidelity --runs runs [--out reports/fidelity] [--readme README.md]     # = the end of make fidelity

Each paper's fidelity target (``make <paper>-fidelity``) ends by writing ``claims.json`` (``common.stats.write_claims``)
at its output root under ``<runs>/<paper>/``: one row per claim of the paper it tested, with our estimate, its 95 %
bootstrap interval, the number of units and the verdict. This module only gathers them:

- ``<out>/fidelity.md``: one table, a row per claim (paper, claim, paper's figure, ours with interval and n, verdict,
  what a conclusive answer would need), and a per-paper count of verdicts;
- ``<out>/fidelity.json``: the same rows, machine-readable;
- ``<out>/fidelity_<paper>.png``: a forest plot, one line per claim (our interval, the paper's figure as a cross,
  zero as a dashed line);
- with ``--readme``: the block between ``<!-- fidelity:begin -->`` and ``<!-- fidelity:end -->`` in that file is
  replaced by the per-paper counts and the table (nothing else in the file changes).

A paper with no claims file is listed as "not run" rather than left out, so a missing run cannot pass for a clean one.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path

from common.artifacts import atomic_write_text
from common.config import UserError, run_cli
from common.report import PAPERS
from common.stats import CLAIMS_FILE, VERDICTS, Claim, read_claims

BEGIN, END = "<!-- fidelity:begin -->", "<!-- fidelity:end -->"


def gather(runs: str | Path) -> dict[str, list[tuple[Path, Claim]]]:
    """Claims per paper, from every ``claims.json`` under ``<runs>/<paper>/`` (sorted paths: a stable order)."""
    root = Path(runs)
    if not root.is_dir():
        raise UserError(f"{root}: no runs folder (run make fidelity, or pass --runs)")
    found: dict[str, list[tuple[Path, Claim]]] = {paper: [] for paper in PAPERS}
    for paper in PAPERS:
        for path in sorted((root / paper).rglob(CLAIMS_FILE)) if (root / paper).is_dir() else []:
            for claim in read_claims(path):
                if claim.paper != paper:
                    raise UserError(f"{path}: a claim of paper {claim.paper!r} under runs/{paper}/")
                found[paper].append((path, claim))
    return found


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def summary_table(found: dict[str, list[tuple[Path, Claim]]]) -> str:
    lines = ["| paper | claims tested | reproduced | refuted | inconclusive |", "|---|---:|---:|---:|---:|"]
    for paper, rows in found.items():
        if not rows:
            lines.append(f"| {paper.upper()} | not run | | | |")
            continue
        counts = Counter(claim.verdict for _, claim in rows)
        lines.append(f"| {paper.upper()} | {len(rows)} | " + " | ".join(str(counts[v]) for v in VERDICTS) + " |")
    return "\n".join(lines)


def claims_table(found: dict[str, list[tuple[Path, Claim]]]) -> str:
    lines = [("| paper | claim | metric | setting | paper's figure | ours, 95 % interval (n) | verdict | "
             "n for a conclusive answer |"), "|---|---|---|---|---:|---|---|---:|"]
    for paper, rows in found.items():
        for _, c in rows:
            need = f"≈ {c.needed_n:,} {c.unit}" if c.needed_n else ""
            lines.append(f"| {paper.upper()} | {_cell(c.claim)} | {_cell(c.metric)} | {_cell(c.setting)} | "
                         f"{c.paper_text()} | {c.ours_text()} | **{c.verdict}** | {need} |")
    return "\n".join(lines)


def forest_plot(paper: str, rows: list[tuple[Path, Claim]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"reproduced": "tab:green", "refuted": "tab:red", "inconclusive": "tab:gray"}
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(rows) + 1.2))
    for y, (_, c) in enumerate(reversed(rows)):
        s = c.scale
        ax.errorbar(c.ours.estimate * s, y, xerr=[[(c.ours.estimate - c.ours.low) * s],
                                                  [(c.ours.high - c.ours.estimate) * s]],
                    fmt="o", color=colours[c.verdict], capsize=3)
        if c.paper_value is not None:
            ax.plot(c.paper_value * s, y, "x", color="black")
    ax.axvline(0, linestyle="--", color="black", linewidth=0.8)
    ax.set_yticks(range(len(rows)), [c.claim[:60] for _, c in reversed(rows)], fontsize=8)
    ax.set_xlabel("effect (ours: dot with 95 % interval, colour = verdict; paper: x)")
    ax.set_title(f"{paper.upper()} fidelity")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def replace_block(text: str, block: str, where: str) -> str:
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(text):
        raise UserError(f"{where}: no '{BEGIN}' ... '{END}' block to replace")
    return pattern.sub(lambda _: f"{BEGIN}\n{block}\n{END}", text, count=1)


def build(runs: str | Path, out: str | Path, readme: str | Path | None = None) -> dict:
    """Write fidelity.md/.json and the plots into ``out`` (and the README block); return the verdict counts."""
    found = gather(runs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary, table = summary_table(found), claims_table(found)
    text = (f"# Fidelity across papers\n\nFrom `python -m common.fidelity --runs {runs}` (claims.json of each "
            f"paper's fidelity run; intervals: 95 % percentile bootstrap, common/stats.py).\n\n{summary}\n\n{table}\n")
    atomic_write_text(out / "fidelity.md", text)
    atomic_write_text(out / "fidelity.json", json.dumps(
        {paper: [dict(c.to_dict(), source=str(p)) for p, c in rows] for paper, rows in found.items()}, indent=1)
        + "\n")
    plots = [str(forest_plot(paper, rows, out / f"fidelity_{paper}.png")) for paper, rows in found.items() if rows]
    if readme:
        readme = Path(readme)
        atomic_write_text(readme, replace_block(readme.read_text(), f"{summary}\n\n{table}", str(readme)))
    counts = Counter(c.verdict for rows in found.values() for _, c in rows)
    return {"claims": sum(counts.values()), **{v: counts[v] for v in VERDICTS},
            "papers_not_run": [p for p, rows in found.items() if not rows], "plots": plots}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m common.fidelity", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="runs", help="folder holding <paper>/.../claims.json (default: runs)")
    parser.add_argument("--out", default="reports/fidelity", help="where fidelity.md/.json and the plots go")
    parser.add_argument("--readme", default="", help="a markdown file whose fidelity:begin/end block is replaced")
    args = parser.parse_args(argv)

    def go() -> None:
        counts = build(args.runs, args.out, args.readme or None)
        print((Path(args.out) / "fidelity.md").read_text())
        print(json.dumps(counts))

    run_cli(go)


if __name__ == "__main__":
    main()
