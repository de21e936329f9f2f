"""PCRM fidelity: every RM variant over several seeds on the same held-out pairs, then claims with bootstrap intervals.

    python -m pcrm.fidelity train  --config pcrm/configs/fidelity.yaml --section variants_sst2 \
        --data runs/pcrm/fidelity/sst2/data --out runs/pcrm/fidelity/sst2 --seeds 0 1 2
    python -m pcrm.fidelity claims --root runs/pcrm/fidelity --sets sst2 hh

``train`` runs ``pcrm.variants`` once per seed into ``<out>/seed<k>/variants`` (RM seed k: head init and batch order;
the data are the same pairs for every seed, so every variant is scored on the same held-out pairs). Only the first
seed scores the held-out pairs after every epoch (the margin-growth table; ``--no-epoch-eval``: none does); later
seeds score them once, at the end.

``claims`` reads each finished seed's ``<variant>/rm/eval_scores.jsonl`` and writes ``<root>/claims.json``
(``common.stats``) with, per set:

- each constrained variant (len_rat, cos_sim; random, fixed as the paper's ablations) minus baseline in held-out
  pairwise accuracy: per pair, correct = r(chosen) > r(rejected) (a tie counts ½), averaged over seeds, then a
  paired bootstrap over the pairs. The paper reports RM accuracy as an evaluation axis and claims PCRM helps
  alignment [PAPER: arXiv 2404.00978]; our notes confirm no number, so the paper's figure is left empty;
- each constrained variant minus baseline in the mean absolute held-out margin |r(chosen) − r(rejected)| (the bound
  is the method: margins must not grow without limit; expected sign −);
- the baseline's accuracy above chance 0.5 (can this RM learn the set at all?). When its interval does not exclude
  chance, the set's accuracy rows say ``NOT CARRIED`` in their setting: their verdicts are about noise.

``per_pair.jsonl`` keeps the per-pair, per-seed correctness and margins so every interval can be recomputed;
``fidelity.png`` plots the paired differences per set.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from common.artifacts import atomic_write_text, read_jsonl
from common.config import UserError, build_dataclass, read_yaml, run_cli
from common.stats import Claim, bootstrap_mean, paired_bootstrap, write_claims
from pcrm.variants import VariantsConfig, run_variants

PAPER = "pcrm"
SOURCE = "arXiv 2404.00978 (RM accuracy axis; no confirmed number)"
CONSTRAINED = ("len_rat", "cos_sim", "random", "fixed")
SET_NAMES = {"sst2": "SST-2 sentiment pairs", "hh": "HH-RLHF (helpful+harmless test splits)"}


def train(config: str, section: str, data: str, out: str, seeds: list[int], overwrite: bool,
          epoch_eval: bool = True) -> None:
    raw = read_yaml(config).get(section)
    if not isinstance(raw, dict):
        raise UserError(f"{config}: no section {section!r} (a mapping of pcrm.variants settings)")
    for i, seed in enumerate(seeds):
        values = {**raw, "data_dir": data, "output_dir": str(Path(out) / f"seed{seed}" / "variants"), "seed": seed,
                  "rm": {**raw.get("rm", {}), "seed": seed}, "eval_each_epoch": epoch_eval and i == 0, "overwrite": overwrite}
        cfg = build_dataclass(VariantsConfig, values, f"{section}[seed {seed}]")
        if (Path(cfg.output_dir) / "metrics.json").is_file() and not overwrite:
            print(f"skip (finished): {cfg.output_dir}", flush=True)
            continue
        print(f"=== pcrm fidelity: {section} seed {seed} ===", flush=True)
        run_variants(cfg)


def load_set(folder: Path, variants: tuple[str, ...]) -> dict[str, Any]:
    """Per seed and variant: correctness and margins of the held-out pairs, aligned by the pair's ``index``."""
    seeds = sorted(int(p.name[4:]) for p in folder.glob("seed*") if (p / "variants" / "metrics.json").is_file())
    if not seeds:
        raise UserError(f"{folder}: no finished seed (expected seed<k>/variants/metrics.json; run train first)")
    correct: dict[str, list[np.ndarray]] = {v: [] for v in variants}
    margin: dict[str, list[np.ndarray]] = {v: [] for v in variants}
    index = None
    for seed in seeds:
        for v in variants:
            rows = read_jsonl(folder / f"seed{seed}" / "variants" / v / "rm" / "eval_scores.jsonl")
            idx = [r["index"] for r in rows]
            if index is None:
                index = idx
            elif idx != index:
                raise UserError(f"{folder}: seed {seed} {v} scored other held-out pairs than the first run; the "
                                "paired comparison needs the same pairs")
            d = np.array([r["chosen_score"] - r["rejected_score"] for r in rows])
            correct[v].append((d > 0) + 0.5 * (d == 0))
            margin[v].append(d)
    return {"seeds": seeds, "index": index, "correct": {v: np.stack(c) for v, c in correct.items()},
            "margin": {v: np.stack(m) for v, m in margin.items()}}


def set_claims(name: str, data: dict[str, Any], setting: str) -> list[Claim]:
    """The claim rows of one preference set (module docstring); per-pair values are averaged over seeds first."""
    acc = {v: c.mean(axis=0) for v, c in data["correct"].items()}
    absm = {v: np.abs(m).mean(axis=0) for v, m in data["margin"].items()}
    seeds, label = data["seeds"], SET_NAMES.get(name, name)
    unit = f"held-out pairs (mean of {len(seeds)} seed{'s' * (len(seeds) > 1)})"

    def per_seed(values: dict[str, np.ndarray], v: str, fmt: str) -> str:
        diffs = (values[v] - values["baseline"]).mean(axis=1)
        return "per seed " + ", ".join(f"{fmt.format(x)}" for x in diffs)

    chance = bootstrap_mean(acc["baseline"], reference=0.5)
    acc_setting = setting
    if not chance.low > 0:  # an RM that does not rank above chance cannot say which variant ranks better
        acc_setting = (f"NOT CARRIED (baseline RM {100 * chance.estimate:+.1f} [{100 * chance.low:+.1f}, "
                       f"{100 * chance.high:+.1f}] points over chance): {setting}")
    out = [Claim(PAPER, f"{label}: the baseline RM ranks held-out pairs above chance (setting check)",
                 "pairwise accuracy − 0.5", +1, chance, unit,
                 None, "setting check (not a paper number)", setting, scale=100,
                 note="accuracy per seed " + ", ".join(f"{x:.3f}" for x in data["correct"]["baseline"].mean(axis=1)))]
    for v in CONSTRAINED:
        if v not in acc:
            continue
        role = "PCRM" if v in ("len_rat", "cos_sim") else "ablation bound"
        out.append(Claim(PAPER, f"{label}: {v} ({role}) RM ranks held-out pairs at least as well as the baseline RM",
                         f"accuracy({v}) − accuracy(baseline)", +1, paired_bootstrap(acc[v], acc["baseline"]), unit,
                         None, SOURCE, acc_setting, scale=100,
                         note=per_seed({k: c for k, c in data["correct"].items()}, v, "{:+.3f}")))
        out.append(Claim(PAPER, f"{label}: {v} bounds the held-out margins (smaller mean absolute margin than the baseline)",
                         f"mean abs margin({v}) − mean abs margin(baseline)", -1,
                         paired_bootstrap(absm[v], absm["baseline"]), unit, None,
                         "arXiv 2404.00978 (method: soft upper bound δ* on the margin)", setting,
                         note=per_seed({k: np.abs(m) for k, m in data["margin"].items()}, v, "{:+.2f}")))
    return out


def plot(claims: list[Claim], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [c for c in claims if "accuracy(" in c.metric]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.2))
    for i, c in enumerate(rows):
        ax.plot([100 * c.ours.low, 100 * c.ours.high], [i, i], color="C0")
        ax.plot([100 * c.ours.estimate], [i], "o", color="C0")
    ax.axvline(0, ls="--", color="grey")
    ax.set_yticks(range(len(rows)), [c.claim.split(" RM ranks")[0] for c in rows], fontsize=7)
    ax.set_xlabel("held-out accuracy, variant − baseline (points, 95% paired bootstrap)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def claims(root: str, sets: list[str], settings: dict[str, str]) -> list[Claim]:
    rows: list[Claim] = []
    per_pair = []
    variants = ("baseline", *CONSTRAINED)
    for name in sets:
        data = load_set(Path(root) / name, variants)
        n = len(data["index"])
        setting = settings.get(name, "") or f"MiniLM-L6 RM, {n} held-out pairs, seeds {data['seeds']}"
        rows += set_claims(name, data, setting)
        for j, idx in enumerate(data["index"]):
            per_pair.append({"set": name, "index": idx, **{
                f"{v}_{what}": [float(x) for x in arr[v][:, j]] for v in variants
                for what, arr in (("correct", data["correct"]), ("margin", data["margin"]))}})
    path = write_claims(root, rows)
    atomic_write_text(Path(root) / "per_pair.jsonl", "".join(json.dumps(r) + "\n" for r in per_pair))
    plot(rows, Path(root) / "fidelity.png")
    print(f"wrote {path}", flush=True)
    for c in rows:
        print(f"{c.verdict:<13} {c.ours_text():<52} {c.claim}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="one pcrm.variants run per seed")
    t.add_argument("--config", required=True, help="recipe (pcrm/configs/fidelity.yaml)")
    t.add_argument("--section", required=True, help="pcrm.variants section (variants_sst2, variants_hh)")
    t.add_argument("--data", required=True, help="pcrm.data output folder (train.jsonl, eval.jsonl)")
    t.add_argument("--out", required=True, help="set folder: seed<k>/variants/ go under it")
    t.add_argument("--seeds", type=int, nargs="+", default=[0], help="RM seeds (default: 0)")
    t.add_argument("--overwrite", action="store_true", help="retrain finished seeds")
    t.add_argument("--no-epoch-eval", dest="epoch_eval", action="store_false",
                   help="score the held-out pairs at the end only, also for the first seed (saves CPU on long pairs)")
    c = sub.add_parser("claims", help="claims.json, per_pair.jsonl and fidelity.png from the finished seeds")
    c.add_argument("--root", required=True, help="folder holding one sub-folder per set (sst2/, hh/)")
    c.add_argument("--sets", nargs="+", default=["sst2", "hh"], help="set sub-folders to read")
    args = parser.parse_args(argv)

    def go() -> int:
        if args.command == "train":
            train(args.config, args.section, args.data, args.out, args.seeds, args.overwrite, args.epoch_eval)
        else:
            claims(args.root, args.sets, {})
        return 0

    return run_cli(go)


if __name__ == "__main__":
    raise SystemExit(main())
