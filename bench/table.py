"""Benchmark records (jsonl from ``bench.run --out``) -> the markdown table of bench/RESULTS.md.

    python -m bench.table results.jsonl

One row per stage: ours, TRL default and TRL best in tokens/s (PPO: episodes/s, with the generation / scoring /
training split of each), ours / TRL best as ``1.42x``, model GFLOP/s or MFU, and peak memory. When a file holds several
records of one (stage, implementation), the median run (by throughput; the lower middle for an even count) stands
for it, so repeated runs damp the noise of a shared machine.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

LABELS = ("ours", "trl-default", "trl-best")


def _throughput(rec: dict) -> float:
    return rec["episodes_per_s"] if rec["stage"] == "ppo" else rec["tokens_per_s"]


def load(path: str | Path) -> dict[tuple[str, str], dict]:
    runs: dict[tuple[str, str], list[dict]] = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            runs.setdefault((rec["stage"], rec["label"]), []).append(rec)
    out = {}
    for key, recs in runs.items():
        recs = sorted(recs, key=_throughput)
        out[key] = {**recs[(len(recs) - 1) // 2], "n_runs": len(recs)}
    return out


def ratio(ours: dict | None, base: dict | None, key: str) -> str:
    if not ours or not base or not base.get(key):
        return "n/a"
    return f"{ours[key] / base[key]:.2f}x"


def _speed(rec: dict | None, key: str) -> str:
    if rec is None:
        return "—"
    if rec["label"].startswith("ours") and rec["stage"] != "ppo":
        layout = "padded" if rec["label"] == "ours-padded" else "packed"
        return f"{rec[key]:,.0f} tok/s ({layout}){_n(rec)}"
    if key == "episodes_per_s":
        return (f"{rec[key]:.3g} ep/s (gen {rec['generation_s']:.2f} s, score {rec['scoring_s']:.2f} s, "
                f"train {rec['training_s']:.2f} s)")
    return f"{rec[key]:,.0f} tok/s{_n(rec)}"


def _n(rec: dict) -> str:
    return f", median of {rec['n_runs']}" if rec.get("n_runs", 1) > 1 else ""


def _flops(rec: dict | None) -> str:
    if rec is None or rec.get("model_tflops_per_s") is None:
        return "—"
    if rec.get("mfu") is not None:
        return f"{100 * rec['mfu']:.1f}% MFU"
    return f"{1000 * rec['model_tflops_per_s']:.2f} GFLOP/s"


def markdown(records: dict[tuple[str, str], dict]) -> str:
    """The headline table; "ours" is the faster of our packed and padded runs (marked), like TRL's best column."""
    head = ("| stage | ours | TRL default | TRL best | ours / TRL best | ours FLOPs | TRL best FLOPs "
            "| peak mem ours / TRL best (GB) |\n|---|---|---|---|---|---|---|---|")
    rows = [head]
    for stage in ("sft", "rm", "dpo", "ppo"):
        ours, default, best = (records.get((stage, label)) for label in LABELS)
        padded = records.get((stage, "ours-padded"))
        if padded and (ours is None or padded["tokens_per_s"] > ours["tokens_per_s"]):
            ours = padded  # our best configuration, as TRL's column is its best
        if not any((ours, default, best)):
            continue
        key = "episodes_per_s" if stage == "ppo" else "tokens_per_s"
        mem = " / ".join(f"{r['peak_mem_gb']:.2f}" if r else "—" for r in (ours, best))
        rows.append(f"| {stage} | {_speed(ours, key)} | {_speed(default, key)} | {_speed(best, key)} | "
                    f"{ratio(ours, best, key)} | {_flops(ours)} | {_flops(best)} | {mem} |")
    return "\n".join(rows)


def lever_markdown(records: dict[tuple[str, str], dict]) -> str:
    """Our stages with and without padding-free packing (the lever bench.run's --ours-padding-free toggles)."""
    rows = ["| stage | ours, padded | ours, padding-free | padding-free / padded |", "|---|---|---|---|"]
    for stage in ("sft", "rm", "dpo"):
        padded, packed = records.get((stage, "ours-padded")), records.get((stage, "ours"))
        if padded and packed:
            rows.append(f"| {stage} | {_speed(padded, 'tokens_per_s')} | {_speed(packed, 'tokens_per_s')} | "
                        f"{ratio(packed, padded, 'tokens_per_s')} |")
    return "\n".join(rows) if len(rows) > 2 else ""


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(prog="python -m bench.table", description=__doc__.split("\n\n")[0])
    p.add_argument("results", help="jsonl written by bench.run --out")
    records = load(p.parse_args(argv).results)
    text = markdown(records)
    levers = lever_markdown(records)
    text += f"\n\nPadding-free packing in our stages:\n\n{levers}" if levers else ""
    print(text)
    return text


if __name__ == "__main__":
    main()
