"""The RLLR comparison table: label-only SFT, SFT with rationales, RLHF, RLLR, RLLR-mixed per task, beside the paper.

    python -m rllr.compare --root runs/rllr/llama2/sst2

Reads ``<root>/predict/<system>/metrics.json`` for each system and ``<root>/rm_{rat,label}/metrics.json`` (each RM's
accuracy on the held-out label-sensitive pairs); writes ``<root>/comparison.md`` and ``comparison.json``. Missing
runs are shown as "-" and left out of the deltas.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from common.artifacts import atomic_write_json, atomic_write_text

SYSTEMS = {"sft_label": "SFT (label only)", "sft_wrat": "SFT (with rationales)", "ppo_rlhf": "RLHF (RM_rat)",
           "ppo_rllr": "RLLR (RM_label)", "ppo_rllr_mixed": "RLLR-mixed"}
# [PAPER] abstract: average accuracy gain of RLLR over SFT and over RLHF, in points.
PAPER_GAIN = {"rllr_vs_sft": 1.54, "rllr_vs_rlhf": 0.69}


def _metrics(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def compare(root: Path) -> dict[str, Any]:
    systems = {k: _metrics(root / "predict" / k / "metrics.json") for k in SYSTEMS}
    tasks = sorted({t for m in systems.values() if m for t in m.get("tasks", {})})
    acc = {k: ({t: m["tasks"][t]["accuracy"] for t in tasks if t in m.get("tasks", {})} if m else {})
           for k, m in systems.items()}
    mean = {k: (sum(v.values()) / len(v) if v else None) for k, v in acc.items()}

    def gain(a: str, b: str) -> float | None:
        return None if mean[a] is None or mean[b] is None else 100 * (mean[a] - mean[b])

    rms = {k: _metrics(root / k / "metrics.json") for k in ("rm_rat", "rm_label")}
    out = {"tasks": tasks, "accuracy": acc, "mean_accuracy": mean,
           "gain_points": {"rllr_vs_sft": gain("ppo_rllr", "sft_wrat"), "rllr_vs_rlhf": gain("ppo_rllr", "ppo_rlhf"),
                           "mixed_vs_sft": gain("ppo_rllr_mixed", "sft_wrat"),
                           "mixed_vs_rlhf": gain("ppo_rllr_mixed", "ppo_rlhf")},
           "paper_gain_points": PAPER_GAIN,
           "rm_accuracy_on_label_pairs": {k: (m or {}).get("eval_accuracy") for k, m in rms.items()}}
    return out


def markdown(result: dict[str, Any]) -> str:
    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.1f}"

    def pts(x: float | None) -> str:
        return "-" if x is None else f"{x:+.2f}"

    tasks = result["tasks"]
    lines = ["| system | " + " | ".join(tasks) + " | mean |", "|---" * (len(tasks) + 2) + "|"]
    for key, name in SYSTEMS.items():
        row = result["accuracy"][key]
        lines.append(f"| {name} | " + " | ".join(pct(row.get(t)) for t in tasks) +
                     f" | {pct(result['mean_accuracy'][key])} |")
    g, p = result["gain_points"], result["paper_gain_points"]
    lines += ["", "| gain (accuracy points) | ours | paper |", "|---|---|---|",
              f"| RLLR − SFT (with rationales) | {pts(g['rllr_vs_sft'])} | +{p['rllr_vs_sft']} |",
              f"| RLLR − RLHF | {pts(g['rllr_vs_rlhf'])} | +{p['rllr_vs_rlhf']} |",
              f"| RLLR-mixed − SFT | {pts(g['mixed_vs_sft'])} | - |",
              f"| RLLR-mixed − RLHF | {pts(g['mixed_vs_rlhf'])} | - |",
              "", "| reward model | accuracy on held-out label-sensitive pairs |", "|---|---|"]
    for key, name in (("rm_rat", "RM_rat (RLHF: rationale pairs)"), ("rm_label", "RM_label (RLLR: label pairs)")):
        lines.append(f"| {name} | {pct(result['rm_accuracy_on_label_pairs'][key])} |")
    return "\n".join(lines) + "\n"


def compare_and_write(root: Path) -> str:
    """Write ``comparison.json`` and ``comparison.md`` under ``root``; returns the markdown."""
    result = compare(root)
    atomic_write_json(root / "comparison.json", result)
    text = markdown(result)
    atomic_write_text(root / "comparison.md", text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", required=True, help="the task folder holding sft_label/, ppo_rllr/, rm_label/...")
    args = parser.parse_args(argv)
    print(compare_and_write(Path(args.root)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
