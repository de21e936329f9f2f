"""The RLCHF claims with 95 % intervals, from a finished ``make rlchf-fidelity`` run (the last step of that target).

    python -m rlchf.fidelity --config rlchf/configs/fidelity.yaml --section fidelity run_root=runs/rlchf/fidelity

Reads the run's stages (``candidates/``, ``rank/`` ballots, ``aggregate/``, ``dpo/<row>/`` and, per extra DPO seed
k of ``dpo_seeds``, ``dpo/<row>_seed<k>/``) and writes, under
``output_dir`` (default: the run root, where ``common.fidelity`` looks for it), ``claims.json`` and ``fidelity/``:
per-unit files (``judge_agreement.jsonl`` per prompt, ``bbq_items.jsonl`` per BBQ item and model, the per-model BBQ
score caches) so every interval can be recomputed, plus ``summary.json`` and ``claims.md``.

Upstream (QuentinFitteRey/RLCHF README, Llama-3.1-8B, BBQ accuracy [CODE]): baseline amb 0.072 / disamb 0.899, DPO
gold 0.089 / 0.907, DPO personas 0.604 / 0.605; persona agreement with the gold label 0.54-0.78 per persona, majority
vote 0.913 on HH-Golden (notebooks [CODE]). Upstream's persona-DPO scripts in fact trained on the raw gold pairs
(our method notes, upstream quirks), so its persona row is not an SWF row; it is the figure the README reports.

Claims:

1. A synthetic persona judge agrees with the HH human label (chosen above rejected in its ranking of K candidates)
   above chance. Unit: prompt (mean over its personas' ballots; a tie counts ½), agreement − 0.5.
2. The SWF's collective ranking (each rule the run trained a row on) agrees with the human label above chance;
   upstream's majority vote on HH-Golden: 0.913. Unit: prompt.
3. Per trained SWF row, on the same BBQ items as the base (paired): DPO on the aggregated persona rankings raises
   ambiguous accuracy (upstream persona DPO: +0.532) and lowers disambiguated accuracy (−0.294); it raises ambiguous
   accuracy more than DPO on the gold pairs (+0.515).
4. DPO on the gold pairs raises ambiguous accuracy a little (upstream +0.017).
5. Check, not a paper claim: each trained row moved from the base, KL(row || base) of the BBQ option distribution per
   item; the DPO run's held-out implicit rewards (log-prob shifts) are in summary.json.

With DPO seeds, claims 3-5 pool every seed of a row: a two-level bootstrap over seeds and BBQ items
(``common.stats.seeds_paired_bootstrap``); a row against gold pairs the two rows' runs seed by seed. Each claim's
note gives every seed's own estimate: one DPO run's direction can be luck (rldf/README.md saw it with ReMax seeds).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.artifacts import RunDir, atomic_write_json, atomic_write_text, read_jsonl, recorded_seed, write_jsonl
from common.config import ConfigError, UserError, stage_cli
from common.config import help_meta as _h
from common.stats import Claim, bootstrap_mean, seeds_paired_bootstrap, write_claims

PAPER = "rlchf"
SRC_BBQ = "[CODE] QuentinFitteRey/RLCHF README, Llama-3.1-8B-Instruct BBQ accuracy"
SRC_JUDGE = ("[CODE] RLCHF notebooks: per-persona agreement with the gold label 0.54-0.78 (20 gemma-3-27b personas, "
             "A/B pairs); majority vote 0.913 on HH-Golden")
BASE_AMB, BASE_DIS, GOLD_AMB, PERSONA_AMB, PERSONA_DIS = 0.072, 0.899, 0.089, 0.604, 0.605


@dataclass
class FidelityConfig:
    """Section ``fidelity``: where the run is, which rows, how many BBQ items."""

    run_root: str = field(metadata=_h("the make rlchf-fidelity run folder (candidates/, rank/, aggregate/, dpo/)"))
    output_dir: str = field(default="", metadata=_h("claims.json and fidelity/ go here; '' = run_root"))
    base_model: str = field(default="embedded:smollm2-135m-instruct", metadata=_h("the policy before DPO"))
    rows: list[str] = field(default_factory=lambda: ["gold", "swf_borda"],
                            metadata=_h("DPO rows to compare with the base (dpo/<row>/); 'gold' is the control"))
    dpo_seeds: list[int] = field(default_factory=list, metadata=_h(
        "extra DPO seeds, each trained for every row into dpo/<row>_seed<k>/ (make rlchf-fidelity: RLCHF_DPO_SEEDS); "
        "pooled with the recipe's run, interval over seeds and items"))
    dpo_seed_rows: list[str] = field(default_factory=list, metadata=_h(
        "the rows trained with dpo_seeds (empty = every row); the others have the recipe's run only"))
    template: str = field(default="tokenizer", metadata=_h("chat template"))
    bbq_data: str = field(default="mirror:bbq", metadata=_h("BBQ folder, mirror:bbq or hub id"))
    bbq_categories: list[str] = field(default_factory=list, metadata=_h("pooled categories; empty = all present"))
    bbq_items: int | None = field(default=1000, metadata=_h("BBQ items (whole context groups of 4, nested seeded "
                                                            "sample across the categories); null = all"))
    resamples: int = field(default=10_000, metadata=_h("bootstrap resamples"))
    seed: int = field(default=0, metadata=_h("BBQ sample and bootstrap seed"))
    overwrite: bool = field(default=False, metadata=_h("accepted for the stage scripts; caches are always reused"))

    def __post_init__(self) -> None:
        if self.bbq_items is not None and self.bbq_items < 4:
            raise ConfigError(f"fidelity.bbq_items: {self.bbq_items}; at least one group of 4, or null for all")
        if not self.rows:
            raise ConfigError("fidelity.rows: name at least one DPO row (e.g. swf_borda)")
        if len(set(self.dpo_seeds)) != len(self.dpo_seeds):
            raise ConfigError(f"fidelity.dpo_seeds: {self.dpo_seeds}; name each extra seed once")
        if set(self.dpo_seed_rows) - set(self.rows):
            raise ConfigError(f"fidelity.dpo_seed_rows: {sorted(set(self.dpo_seed_rows) - set(self.rows))} not in "
                              f"rows {self.rows}")

    def seed_runs(self, row: str) -> list[str]:
        """The DPO run folders (under dpo/) of one row: the recipe's run, then one per extra seed."""
        if self.dpo_seed_rows and row not in self.dpo_seed_rows:
            return [row]
        return [row] + [f"{row}_seed{k}" for k in self.dpo_seeds]


def judge_agreement(candidates: list[dict], ballots: list[dict]) -> list[dict]:
    """Per prompt: the mean over its (non-abstaining) ballots of chosen-above-rejected (1, tie ½, 0)."""
    from rlchf.aggregate import gold_agreement

    by_id = {r["prompt_id"]: r for r in candidates}
    per_prompt: dict[str, list[float]] = defaultdict(list)
    for b in ballots:
        if not b["abstained"] and b["ranking"]:
            row = by_id[b["prompt_id"]]
            per_prompt[b["prompt_id"]].append(gold_agreement(b["ranking"], row["chosen_id"], row["rejected_id"]))
    return [{"prompt_id": pid, "n_ballots": len(v), "agreement": sum(v) / len(v)} for pid, v in per_prompt.items()]


def swf_agreement(candidates: list[dict], aggregates: list[dict], rule: str) -> list[dict]:
    from rlchf.aggregate import gold_agreement

    by_id = {r["prompt_id"]: r for r in candidates}
    return [{"prompt_id": a["prompt_id"], "agreement": gold_agreement(
        a["tiers"], by_id[a["prompt_id"]]["chosen_id"], by_id[a["prompt_id"]]["rejected_id"])}
        for a in aggregates if a["rule"] == rule]


def _need(path: Path) -> Path:
    if not path.exists():
        raise UserError(f"{path}: missing; run the earlier stages (make rlchf-fidelity) first")
    return path


def run_fidelity(cfg: FidelityConfig) -> dict[str, Any]:
    from common.eval.bbq import bbq_scores
    from common.eval.bbq_paired import option_kl, outcomes, sample_groups, score_items
    from rlchf.evaluate import model_dir

    root = Path(cfg.run_root)
    out_root = Path(cfg.output_dir or cfg.run_root)
    run = RunDir.start(str(out_root / "fidelity"), cfg, seed=cfg.seed, resume=True)  # keeps the score caches
    fid = run.path
    boot = {"resamples": cfg.resamples, "seed": cfg.seed}
    claims: list[Claim] = []
    summary: dict[str, Any] = {}

    candidates = read_jsonl(_need(root / "candidates" / "candidates.jsonl"))
    ballots = read_jsonl(_need(root / "rank" / "rankings.jsonl"))
    aggregates = read_jsonl(_need(root / "aggregate" / "aggregates.jsonl"))
    judges = sorted({b["judge_id"] for b in ballots})
    k = len(candidates[0]["candidates"])
    setting = (f"SmolLM2-135M guided judge (loglik, calibrated), {len(judges)} personas x {len(candidates)} HH "
               f"harmless prompts, K={k}")
    # 1-2. the judges and the SWFs against the human label
    agree = judge_agreement(candidates, ballots)
    write_jsonl(fid / "judge_agreement.jsonl", agree)
    claims.append(Claim(PAPER, "a persona judge agrees with the HH human label above chance",
                        "agreement - 0.5 (chosen ranked above rejected)", +1,
                        bootstrap_mean([a["agreement"] for a in agree], reference=0.5, **boot), "prompts", None,
                        SRC_JUDGE, setting, "per prompt: mean over its personas' ballots; tie = 1/2"))
    swf_rows = [r for r in cfg.rows if r.startswith("swf_")]
    for row in swf_rows:
        rule = row.removeprefix("swf_")
        sa = swf_agreement(candidates, aggregates, rule)
        write_jsonl(fid / f"swf_agreement_{rule}.jsonl", sa)
        claims.append(Claim(PAPER, f"the {rule} collective ranking agrees with the HH human label above chance",
                            "agreement - 0.5", +1, bootstrap_mean([a["agreement"] for a in sa], reference=0.5, **boot),
                            "prompts", 0.913 - 0.5, SRC_JUDGE + " (majority; the paper's aggregate)", setting))
    # 3-5. BBQ: base vs each row on the same items
    items, info = sample_groups(cfg.bbq_data, cfg.bbq_categories, cfg.bbq_items, cfg.seed)
    models = {"base": cfg.base_model, **{dpo_run: model_dir(_need(root / "dpo" / dpo_run))
                                         for row in cfg.rows for dpo_run in cfg.seed_runs(row)}}
    rows: dict[str, list[dict]] = {}
    for name, path in models.items():
        lps = score_items(path, items, fid / f"bbq_{name}_scores.jsonl", cfg.template, desc=f"bbq {name}")
        rows[name] = outcomes(items, lps)
        summary[f"bbq_{name}"] = bbq_scores(items, [r["pred"] for r in rows[name]])["overall"]
    write_jsonl(fid / "bbq_items.jsonl", [{"key": base["key"], "category": base["category"],
                                          "context_condition": base["context_condition"],
                                          **{name: {"pred": rows[name][i]["pred"], "correct": rows[name][i]["correct"],
                                                    "probs": rows[name][i]["probs"]} for name in models}}
                                         for i, base in enumerate(rows["base"])])
    amb = [i for i, r in enumerate(rows["base"]) if r["context_condition"] == "ambig"]
    dis = [i for i, r in enumerate(rows["base"]) if r["context_condition"] == "disambig"]

    def correct(run: str, idx: list[int]) -> list[float]:
        return [float(rows[run][i]["correct"]) for i in idx]

    def opposite(row: str, other: str) -> list[str]:
        """What each of the row's runs is compared with: the other row's run of the same seed when both have the
        same seeds, else the other's one run (the base, or a row trained once)."""
        mine, theirs = cfg.seed_runs(row), [other] if other == "base" else cfg.seed_runs(other)
        return theirs if len(theirs) == len(mine) else [theirs[0]] * len(mine)

    def diff(row: str, other: str, idx: list[int]):
        """Row minus ``other``, pooled over the row's seeds (``opposite`` says which run each seed meets)."""
        pairs = [[a - b for a, b in zip(correct(r, idx), correct(o, idx))]
                 for r, o in zip(cfg.seed_runs(row), opposite(row, other))]
        return seeds_paired_bootstrap(pairs, [0.0] * len(idx), **boot)

    def per_seed(row: str, other: str, idx: list[int]) -> str:
        """The note's per-seed estimates: the pooled interval hides which seeds agree."""
        if len(cfg.seed_runs(row)) == 1:
            return ""
        others = opposite(row, other)
        return "per DPO seed: " + ", ".join(
            f"{seeds[r]} {(sum(correct(r, idx)) - sum(correct(o, idx))) / len(idx):+.3f}"
            for r, o in zip(cfg.seed_runs(row), others))

    bbq_setting = f"BBQ {len(items)} items pooled over {', '.join(info['categories'])}, option log-likelihood"
    dpo_setting: dict[str, str] = {}
    seeds: dict[str, Any] = {}
    for row in cfg.rows:
        for dpo_run in cfg.seed_runs(row):
            summary[f"dpo_{dpo_run}"] = json.loads((root / "dpo" / dpo_run / "metrics.json").read_text())
            seeds[dpo_run] = recorded_seed(root / "dpo" / dpo_run)
        m = summary[f"dpo_{row}"]
        pooled = (f", {len(cfg.seed_runs(row))} DPO seeds ({', '.join(str(seeds[r]) for r in cfg.seed_runs(row))}) "
                  "pooled" if len(cfg.seed_runs(row)) > 1 else "")
        dpo_setting[row] = (f"DPO (LoRA) on {m.get('train_pairs', '?')} {row} pairs, {m.get('global_step', '?')} steps "
                            f"from SmolLM2-135M{pooled}; {bbq_setting}")
    for row in swf_rows:
        claims.append(Claim(PAPER, f"DPO on {row} rankings raises BBQ ambiguous accuracy over the base",
                            "acc_amb row - base", +1, diff(row, "base", amb), "ambiguous items",
                            PERSONA_AMB - BASE_AMB, SRC_BBQ + " (persona DPO 0.604 vs baseline 0.072)", dpo_setting[row],
                            per_seed(row, "base", amb)))
        claims.append(Claim(PAPER, f"DPO on {row} rankings lowers BBQ disambiguated accuracy",
                            "acc_dis row - base", -1, diff(row, "base", dis), "disambiguated items",
                            PERSONA_DIS - BASE_DIS, SRC_BBQ + " (persona DPO 0.605 vs baseline 0.899)",
                            dpo_setting[row], per_seed(row, "base", dis)))
        if "gold" in cfg.rows:
            claims.append(Claim(PAPER, f"DPO on {row} raises BBQ ambiguous accuracy more than DPO on gold pairs",
                                "acc_amb row - gold", +1, diff(row, "gold", amb), "ambiguous items",
                                PERSONA_AMB - GOLD_AMB, SRC_BBQ + " (persona 0.604 vs gold 0.089)", dpo_setting[row],
                                per_seed(row, "gold", amb) + _gold_pairing(cfg, row)))
    if "gold" in cfg.rows:
        claims.append(Claim(PAPER, "DPO on gold pairs raises BBQ ambiguous accuracy a little", "acc_amb gold - base",
                            +1, diff("gold", "base", amb), "ambiguous items", GOLD_AMB - BASE_AMB,
                            SRC_BBQ + " (gold 0.089 vs baseline 0.072)", dpo_setting["gold"],
                            per_seed("gold", "base", amb)))
    for row in cfg.rows:
        dpo_runs = cfg.seed_runs(row)
        kls = [[option_kl(r["probs"], b["probs"]) for r, b in zip(rows[d], rows["base"])] for d in dpo_runs]
        changed = ", ".join(str(sum(r["pred"] != b["pred"] for r, b in zip(rows[d], rows["base"]))) for d in dpo_runs)
        margins = ", ".join(str(summary[f"dpo_{d}"].get("eval_reward_margin_mean")) for d in dpo_runs)
        kl_seeds = ("per DPO seed: " + ", ".join(f"{seeds[d]} {sum(k) / len(k):+.3f}" for d, k in zip(dpo_runs, kls))
                    + "; " if len(dpo_runs) > 1 else "")
        claims.append(Claim(PAPER, f"(check) DPO on {row} moved the policy from the base on BBQ",
                            "KL(row ‖ base), nats", +1, seeds_paired_bootstrap(kls, [0.0] * len(items), **boot),
                            "BBQ items", None, "not a paper claim: a policy that did not move cannot carry the BBQ "
                            "claims", dpo_setting[row], f"{kl_seeds}{changed} of {len(items)} answers changed; "
                            f"held-out implicit reward margin {margins} (beta x log-prob shift)"))
    summary.update({"bbq_info": {k: v for k, v in info.items() if k != "warnings"},
                    "judge_agreement_per_judge": _per_judge(candidates, ballots),
                    "claims": [c.to_dict() for c in claims]})
    atomic_write_json(fid / "summary.json", summary)
    atomic_write_text(fid / "claims.md", claims_table(claims))
    path = write_claims(out_root, claims)
    print(claims_table(claims) + f"\nclaims: {path}")
    return run.finish({"n_claims": len(claims), **{f"verdict_{i + 1}": c.verdict for i, c in enumerate(claims)}},
                      key_metric="n_claims")


def _gold_pairing(cfg: FidelityConfig, row: str) -> str:
    seeds, gold = len(cfg.seed_runs(row)), len(cfg.seed_runs("gold"))
    if seeds == 1:
        return ""
    if gold == seeds:
        return "; gold and this row paired seed by seed"
    return "; every seed against gold's one run (gold's own seed spread not in the interval)"


def _per_judge(candidates: list[dict], ballots: list[dict]) -> dict[str, float]:
    out = {}
    for judge in sorted({b["judge_id"] for b in ballots}):
        rows = judge_agreement(candidates, [b for b in ballots if b["judge_id"] == judge])
        out[str(judge)] = sum(r["agreement"] for r in rows) / len(rows) if rows else None
    return out


def claims_table(claims: list[Claim]) -> str:
    lines = ["| claim | metric | paper | ours [95 % CI] | n | verdict | needed n |", "|---|---|---:|---|---:|---|---:|"]
    for c in claims:
        paper = "—" if c.paper_value is None else f"{c.paper_value:+.3f}"
        lines.append(f"| {c.claim} | {c.metric} | {paper} | {c.ours.format()} | {c.ours.n} {c.unit} | {c.verdict} | "
                     f"{c.needed_n or '—'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> Any:
    return stage_cli(FidelityConfig, run_fidelity, "fidelity", "RLCHF claims with bootstrap intervals from a finished "
                     "fidelity run -> claims.json.", argv)


if __name__ == "__main__":
    main()
