"""Every stage × {ours packed, ours padded, TRL default, TRL best}, one ``bench.run`` process each, then the table.

    python -m bench.sweep --device cpu --model-size tiny --out bench/results-cpu.jsonl [-- extra bench.run flags]

Runs are sequential (they would compete for the device otherwise); a failed run is reported and the sweep goes on,
so one broken baseline never hides the others.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from bench.table import load, markdown

# ours runs packed and padded (the table's headline takes the faster); PPO has no padding-free switch
RUNS = [(stage, impl, mode, flags) for stage in ("sft", "rm", "dpo", "ppo")
        for impl, mode, flags in (("ours", "best", ["--ours-padding-free", "true"]),
                                  ("ours", "best", ["--ours-padding-free", "false"]),
                                  ("trl", "default", []), ("trl", "best", []))
        if not (stage == "ppo" and flags == ["--ours-padding-free", "false"])]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.sweep", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="jsonl to append every record to")
    p.add_argument("--stages", default="sft,rm,dpo,ppo", help="comma-separated subset")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="flags passed to every bench.run (after --)")
    a = p.parse_args(argv)
    extra = [x for x in a.rest if x != "--"]
    failed = []
    for stage, impl, mode, flags in RUNS:
        if stage not in a.stages.split(","):
            continue
        cmd = [sys.executable, "-m", "bench.run", "--stage", stage, "--impl", impl, "--trl-mode", mode,
               "--out", a.out, *flags, *extra]
        print("+", " ".join(cmd[1:]), flush=True)
        if subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL).returncode != 0:
            failed.append(f"{stage}/{impl}-{mode}{''.join(flags[1:])}")
    print(markdown(load(a.out)))
    if failed:
        print(f"failed runs: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
