"""One cross-paper fidelity table from every paper's claims, a forest plot per paper, the README's status block.

    python -m common.fidelity [--runs runs] [--records reports/fidelity/claims] [--out reports/fidelity] [--readme README.md]
                              [--paper-readmes]

Each paper's fidelity target (``make <paper>-fidelity``) ends by writing ``claims.json`` (``common.stats.write_claims``)
at its output root under ``<runs>/<paper>/``: one row per claim of the paper it tested, with our estimate, its 95 %
bootstrap interval, the number of units and the verdict. Run folders are not tracked (they hold models and caches),
so this module keeps the evidence in two steps:

1. **record**: every paper that has ``claims.json`` files under ``<runs>/<paper>/`` gets its record
   ``<records>/<paper>.json`` (tracked) rewritten: its claims, the date, and the run files they came from. A paper
   with no run under ``<runs>`` keeps its earlier record, so one paper's rerun does not wipe the others'. A record
   that changes is announced on stderr with the date of the one it replaces (git keeps the old one).
2. **table**: from the records only, ``<out>/fidelity.md`` (per-paper verdict counts with each record's date and
   source, then one row per claim: paper, claim, paper's figure, ours with interval and n, verdict, what a conclusive
   answer would need), ``<out>/fidelity_<paper>.png`` (a forest plot: our interval, the paper's figure as a cross,
   zero dashed) and, with ``--readme``, the block between ``<!-- fidelity:begin -->`` and ``<!-- fidelity:end -->``
   in that file (nothing else in the file changes). With ``--paper-readmes``, each paper's own table too: the block
   between ``<!-- fidelity:<paper>:begin -->`` and ``<!-- fidelity:<paper>:end -->`` in ``<paper>/README.md`` gets
   that paper's claims from its record, so a paper's README cannot drift from the evidence (tests/common checks that
   the tracked READMEs equal what the tracked records generate).

A paper with no record is listed as "not run" rather than left out, so a missing run cannot pass for a clean one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import textwrap
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from common.artifacts import atomic_write_text
from common.config import UserError, run_cli
from common.report import PAPERS
from common.stats import CLAIMS_FILE, VERDICTS, Claim, read_claims

BEGIN, END = "<!-- fidelity:begin -->", "<!-- fidelity:end -->"


def paper_markers(paper: str) -> tuple[str, str]:
    """The markers of a paper README's generated claims table."""
    return f"<!-- fidelity:{paper}:begin -->", f"<!-- fidelity:{paper}:end -->"


@dataclass
class Record:
    """A paper's last recorded fidelity run: its claims, when, and from which files (a run folder or a transcription)."""

    paper: str
    recorded: str
    sources: list[str]
    claims: list[Claim]

    def to_dict(self) -> dict:
        return {"paper": self.paper, "recorded": self.recorded, "sources": self.sources,
                "claims": [c.to_dict() for c in self.claims]}

    @classmethod
    def read(cls, path: str | Path) -> Record:
        path = Path(path)
        try:
            row = json.loads(path.read_text())
            record = cls(paper=row["paper"], recorded=row["recorded"], sources=list(row["sources"]),
                         claims=[Claim.from_dict(c) for c in row["claims"]])
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
            raise UserError(f"{path}: not a fidelity record ({type(e).__name__}: {e})") from e
        if record.paper != path.stem or any(c.paper != record.paper for c in record.claims):
            raise UserError(f"{path}: holds claims of another paper than {path.stem!r}")
        return record


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


def write_record(records: str | Path, record: Record) -> Path:
    """``<records>/<paper>.json``; says on stderr when it replaces a different earlier record."""
    path = Path(records) / f"{record.paper}.json"
    if path.is_file():
        old = Record.read(path)
        if [c.to_dict() for c in old.claims] != [c.to_dict() for c in record.claims]:
            print(f"{path}: replacing the record of {old.recorded} ({len(old.claims)} claims) with "
                  f"{len(record.claims)} claims from {', '.join(record.sources)}", file=sys.stderr)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(record.to_dict(), indent=1, ensure_ascii=False) + "\n")
    return path


def record_runs(runs: str | Path, records: str | Path, today: str | None = None) -> list[str]:
    """Rewrite the record of every paper with claims under ``runs``; return those papers."""
    today = today or dt.date.today().isoformat()
    done = []
    for paper, rows in gather(runs).items():
        if rows:
            sources = sorted({str(p) for p, _ in rows})
            write_record(records, Record(paper, today, sources, [c for _, c in rows]))
            done.append(paper)
    return done


def read_records(records: str | Path) -> dict[str, Record | None]:
    root = Path(records)
    unknown = sorted(p.stem for p in root.glob("*.json") if p.stem not in PAPERS) if root.is_dir() else []
    if unknown:
        raise UserError(f"{root}: records of unknown papers {unknown} (papers: {', '.join(PAPERS)})")
    return {paper: Record.read(root / f"{paper}.json") if (root / f"{paper}.json").is_file() else None
            for paper in PAPERS}


def summary_table(found: dict[str, Record | None]) -> str:
    lines = ["| paper | claims tested | reproduced | refuted | inconclusive | recorded | from |",
             "|---|---:|---:|---:|---:|---|---|"]
    for paper, record in found.items():
        if record is None or not record.claims:
            lines.append(f"| {paper.upper()} | not run | | | | | |")
            continue
        counts = Counter(claim.verdict for claim in record.claims)
        lines.append(f"| {paper.upper()} | {len(record.claims)} | " + " | ".join(str(counts[v]) for v in VERDICTS)
                     + f" | {record.recorded} | {_cell('; '.join(_short_source(s) for s in record.sources))} |")
    return "\n".join(lines)


def _short_source(source: str) -> str:
    """The summary names a source by its head (a path, or '<paper>/README.md, ...' for a transcription)."""
    head = source.split(" (")[0].split(":")[0]
    return head + (" (transcribed: run folder not kept)" if "transcribed" in source and head != source else "")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _claim_cells(c: Claim) -> str:
    """claim | metric | setting | paper's figure | ours | verdict | n for a conclusive answer (no outer bars)."""
    need = f"≈ {c.needed_n:,} {c.unit}" if c.needed_n else ""
    return (f"{_cell(c.claim)} | {_cell(c.metric)} | {_cell(c.setting)} | {c.paper_text()} | {c.ours_text()} | "
            f"**{c.verdict}** | {need}")


def claims_table(found: dict[str, Record | None]) -> str:
    lines = [("| paper | claim | metric | setting | paper's figure | ours, 95 % interval (n) | verdict | "
             "n for a conclusive answer |"), "|---|---|---|---|---:|---|---|---:|"]
    for paper, record in found.items():
        for c in record.claims if record else []:
            lines.append(f"| {paper.upper()} | {_claim_cells(c)} |")
    return "\n".join(lines)


def paper_table(record: Record, records: str | Path) -> str:
    """A paper README's claims table: every claim of the record, with where it came from and how to regenerate it."""
    where = Path(records) / f"{record.paper}.json"
    provenance = (f"Generated by `make fidelity-table` from `{where.as_posix()}` (recorded {record.recorded} from "
                  f"{', '.join(f'`{s}`' for s in record.sources)}); do not edit by hand. Intervals: 95 % percentile "
                  "bootstrap (`common.stats`); *n for a conclusive answer*: the units an interval of this width per "
                  "unit would need to exclude 0 if the estimate held.")
    header = ("| claim | metric | setting | paper's figure | ours, 95 % interval (n) | verdict | "
              "n for a conclusive answer | note |")
    lines = [provenance, "", header, "|---|---|---|---:|---|---|---:|---|"]
    lines += [f"| {_claim_cells(c)} | {_cell(c.note)} |" for c in record.claims]
    return "\n".join(lines)


def fill_paper_readmes(found: dict[str, Record | None], records: str | Path, root: str | Path = ".") -> list[str]:
    """Replace the ``fidelity:<paper>`` block of ``<root>/<paper>/README.md`` for every paper with a record."""
    filled = []
    for paper, record in found.items():
        if record is None:
            continue
        readme = Path(root) / paper / "README.md"
        if not readme.is_file():
            raise UserError(f"{readme}: no such file (--paper-readmes fills each paper's README)")
        atomic_write_text(readme, replace_block(readme.read_text(), paper_table(record, records), str(readme),
                                                *paper_markers(paper)))
        filled.append(str(readme))
    return filled


def _label(text: str, width: int = 58, lines: int = 3) -> str:
    wrapped = textwrap.wrap(text, width)
    return "\n".join(wrapped[:lines]) + (" …" if len(wrapped) > lines else "")


def forest_plot(paper: str, claims: list[Claim], path: Path) -> Path:
    """One panel per metric (claims in different units never share an axis), a row per claim."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"reproduced": "tab:green", "refuted": "tab:red", "inconclusive": "tab:gray"}
    panels: dict[tuple[str, float], list[Claim]] = {}
    for c in claims:
        panels.setdefault((c.metric, c.scale), []).append(c)
    fig, axes = plt.subplots(len(panels), 1, squeeze=False, figsize=(11, 0.62 * len(claims) + 1.1 * len(panels) + 0.6),
                             gridspec_kw={"height_ratios": [len(rows) + 0.8 for rows in panels.values()]})
    for ax, ((metric, scale), rows) in zip(axes[:, 0], panels.items()):
        for y, c in enumerate(reversed(rows)):
            ax.errorbar(c.ours.estimate * scale, y, xerr=[[(c.ours.estimate - c.ours.low) * scale],
                                                          [(c.ours.high - c.ours.estimate) * scale]],
                        fmt="o", color=colours[c.verdict], capsize=3)
            if c.paper_value is not None:
                ax.plot(c.paper_value * scale, y, "x", color="black", markersize=8)
        ax.axvline(0, linestyle="--", color="black", linewidth=0.8)
        ax.set_ylim(-0.6, len(rows) - 0.4)
        ax.set_yticks(range(len(rows)), [_label(c.claim) for c in reversed(rows)], fontsize=7.5)
        ax.set_xlabel(_label(metric + (" (points)" if scale == 100 else ""), 110, 1), fontsize=8)
    axes[0, 0].set_title(f"{paper.upper()} fidelity: our estimate with 95 % interval (green reproduced, red refuted, "
                         "grey inconclusive); x = paper's figure", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def replace_block(text: str, block: str, where: str, begin: str = BEGIN, end: str = END) -> str:
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        raise UserError(f"{where}: no '{begin}' ... '{end}' block to replace")
    return pattern.sub(lambda _: f"{begin}\n{block}\n{end}", text, count=1)


def build(runs: str | Path | None, out: str | Path, readme: str | Path | None = None,
          records: str | Path | None = None, today: str | None = None, paper_readmes: str | Path | None = None) -> dict:
    """Record the runs under ``runs`` (if given), then write fidelity.md and the plots into ``out`` from the records
    (default ``<out>/claims``), fill the README block and, with ``paper_readmes`` (the folder holding the paper
    folders), every recorded paper's own block; return the verdict counts."""
    out = Path(out)
    records = Path(records) if records else out / "claims"
    recorded = record_runs(runs, records, today) if runs else []
    found = read_records(records)
    out.mkdir(parents=True, exist_ok=True)
    summary, table = summary_table(found), claims_table(found)
    text = (f"# Fidelity across papers\n\nFrom `python -m common.fidelity` (each paper's record in `{records}`: "
            f"the claims.json of its last fidelity run; intervals: 95 % percentile bootstrap, common/stats.py).\n\n"
            f"{summary}\n\n{table}\n\nSources in full:\n\n"
            + "".join(f"- {paper.upper()}: {source}\n" for paper, r in found.items() if r for source in r.sources))
    atomic_write_text(out / "fidelity.md", text)
    plots = [str(forest_plot(paper, r.claims, out / f"fidelity_{paper}.png"))
             for paper, r in found.items() if r and r.claims]
    if readme:
        readme = Path(readme)
        atomic_write_text(readme, replace_block(readme.read_text(), f"{summary}\n\n{table}", str(readme)))
    filled = fill_paper_readmes(found, records, paper_readmes) if paper_readmes is not None else []
    counts = Counter(c.verdict for r in found.values() if r for c in r.claims)
    return {"claims": sum(counts.values()), **{v: counts[v] for v in VERDICTS}, "recorded_now": recorded,
            "papers_not_run": [p for p, r in found.items() if not (r and r.claims)], "plots": plots,
            "paper_readmes": filled}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m common.fidelity", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="runs",
                        help="folder holding <paper>/.../claims.json, recorded first (default: runs; '' = none)")
    parser.add_argument("--records", default="",
                        help="folder of the per-paper records <paper>.json (default: <out>/claims)")
    parser.add_argument("--out", default="reports/fidelity", help="where fidelity.md and the plots go")
    parser.add_argument("--readme", default="", help="a markdown file whose fidelity:begin/end block is replaced")
    parser.add_argument("--paper-readmes", action="store_true",
                        help="also replace the fidelity:<paper>:begin/end block of every recorded <paper>/README.md")
    args = parser.parse_args(argv)

    def go() -> None:
        runs = args.runs if args.runs and Path(args.runs).is_dir() else None
        if args.runs and runs is None:
            print(f"{args.runs}: no runs folder; the table comes from the records alone", file=sys.stderr)
        counts = build(runs, args.out, args.readme or None, args.records or None,
                       paper_readmes="." if args.paper_readmes else None)
        print((Path(args.out) / "fidelity.md").read_text())
        print(json.dumps(counts))

    run_cli(go)


if __name__ == "__main__":
    main()
