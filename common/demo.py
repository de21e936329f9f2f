"""`make demo`: every paper's tiny pipeline, end to end on the embedded models, then one results table."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from common.artifacts import REPO_ROOT, atomic_write_text
from common.report import collect_runs, markdown_table

PAPERS = ("rldf", "rllr", "rlchf", "pcrm", "ser")


def papers_with_tiny_target() -> list[str]:
    found = []
    for paper in PAPERS:
        mk = REPO_ROOT / paper / "paper.mk"
        if mk.exists() and f"{paper}-tiny:" in mk.read_text():
            found.append(paper)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", default="runs/demo", help="folder the tiny runs write into")
    parser.add_argument("--papers", default=",".join(PAPERS), help="comma-separated subset of papers")
    args = parser.parse_args(argv)
    runs = Path(args.runs)
    wanted = [p for p in args.papers.split(",") if p]
    papers = [p for p in papers_with_tiny_target() if p in wanted]
    if not papers:
        print("no paper has a <paper>-tiny target yet", file=sys.stderr)
        return 1
    timings: list[tuple[str, float, int]] = []
    for i, paper in enumerate(papers, 1):
        print(f"\n=== [{i}/{len(papers)}] {paper}-tiny ===", flush=True)
        start = time.time()
        # Each tiny pipeline overwrites its own earlier demo run: the demo is meant to be rerun.
        rc = subprocess.call(["make", "--no-print-directory", f"{paper}-tiny", f"RUNS={runs}", "OVERWRITE=true"],
                             cwd=REPO_ROOT)
        timings.append((paper, time.time() - start, rc))
    print("\n=== pipelines ===")
    for paper, secs, rc in timings:
        print(f"  {paper:<6} {'ok' if rc == 0 else f'FAILED (exit {rc})':<16} {secs:7.1f} s")
    rows = collect_runs([runs])
    table = markdown_table(rows)
    out = runs / "results.md"
    atomic_write_text(out, "# make demo results\n\n" + table + "\n")
    print("\n" + table)
    print(f"\nresults table: {out}")
    return 0 if all(rc == 0 for _, _, rc in timings) else 1


if __name__ == "__main__":
    raise SystemExit(main())
