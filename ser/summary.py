"""One table for a whole SER pipeline run: the RMs (held-out accuracy), the PPO runs on each, and the judge's verdicts.

    python -m ser.summary runs/ser/<model>/<dataset>

Reads the stages' own ``metrics.json`` files (``ser_loop``, ``ppo_<rm>``, ``judge/ppo_ser_vs_<system>``) and writes
``summary.md`` beside them. A stage that has not run shows as "-".
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common.artifacts import atomic_write_text
from common.config import UserError, run_cli

RMS = (("seed", "seed-only RM (loop 0)", "seed_only_accuracy"), ("ser", "SER RM (loop kept)", "ser_accuracy"),
       ("full", "100%-label RM", "full_label_accuracy"))


def _metrics(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _fmt(x: float | None, pct: bool = False) -> str:
    if x is None:
        return "-"
    return f"{100 * x:.1f}" if pct else f"{x:.3f}"


def summarize(root: Path) -> str:
    loop = _metrics(root / "ser_loop" / "metrics.json")
    if loop is None:
        raise UserError(f"{root}/ser_loop/metrics.json does not exist; run ser/scripts/02_ser_loop.sh first")
    split = (f"Split: {loop['sizes']}; seed fraction {loop['seed_fraction']}; pool source {loop.get('pool_source')}; "
             f"loop kept {loop['best_loop']} (stop: {loop['stop_reason']}).")
    lines = [f"# SER pipeline: {root}", "", split, "",
             "| reward model | held-out acc % | PPO reward first → last | PPO KL last | judge: ppo_ser vs this policy |",
             "|---|---:|---|---:|---|"]
    for name, label, key in RMS:
        ppo = _metrics(root / f"ppo_{name}" / "metrics.json")
        judge = _metrics(root / "judge" / f"ppo_ser_vs_ppo_{name}" / "metrics.json") if name != "ser" else None
        lines.append(f"| {label} | {_fmt(loop.get(key), pct=True)} | "
                     f"{_fmt(ppo and ppo['reward_first'])} → {_fmt(ppo and ppo['reward_last'])} | "
                     f"{_fmt(ppo and ppo['kl_last'])} | {_verdict(judge) if name != 'ser' else '(itself)'} |")
    sft_judge = _metrics(root / "judge" / "ppo_ser_vs_sft" / "metrics.json")
    legend = ("Judge: win rate of the SER-RM policy over both answer orders (ties count one half) and, when the "
              "rubric ran, mean 0-5 scores (SER-RM policy / other).")
    table = root / "ser_loop" / "ser_table.md"
    lines += ["", f"PPO with the SER RM vs the SFT policy: {_verdict(sft_judge)}.", "", legend, "",
              "## Per-loop table", "", table.read_text().strip() if table.is_file() else "-"]
    text = "\n".join(lines) + "\n"
    atomic_write_text(root / "summary.md", text)
    return text


def _verdict(judge: dict | None) -> str:
    if judge is None:
        return "-"
    parts = []
    if judge.get("win_rate") is not None:
        parts.append(f"win rate {_fmt(judge['win_rate'])} ({judge['wins']}/{judge['ties']}/{judge['losses']} "
                     f"W/T/L, {judge['n_failed']} unparsed)")
    elif "win_rate" in judge:
        parts.append(f"no parseable pairwise verdict ({judge['n_failed']} unparsed)")
    if judge.get("score_mean_1") is not None or judge.get("score_mean_2") is not None:
        parts.append(f"rubric {_fmt(judge.get('score_mean_1'))} / {_fmt(judge.get('score_mean_2'))}")
    return "; ".join(parts) or "-"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", help="runs/ser/<model>/<dataset>: the folder holding ser_loop/, ppo_*/, judge/")
    args = parser.parse_args(argv)
    print(run_cli(lambda: summarize(Path(args.root))))


if __name__ == "__main__":
    main()
