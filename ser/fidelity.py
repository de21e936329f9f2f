"""`make ser-fidelity`: the SER loop on real preference sets at seed fractions 1%, 5%, 15%, on two CPU cores.

    python -m ser.fidelity --output_dir runs/ser/fidelity [--data_root DIR] [--input_format qa_frame|bare]
                           [--patience 2] [--selection_size 1000] [--keep_loop selected|last] ...

Sets: SST-2 sentiment pairs (positive review ≻ negative review) and HH-RLHF test rows, each split into held-out
(reported only) / selection (steers the loop) / labelled seed / unlabelled pool; every (set, seed fraction) runs on
``seeds`` different splits of one pair sample. RM: the embedded MiniLM encoder kept frozen, with a linear head trained
by Bradley-Terry (``ser.encoder_head``; ``input_format`` says what text it embeds); embeddings are cached per set
(``cache_dir``), so every split, fraction and baseline shares one encoding pass, and a second run (another input
format, other stopping rules) can reuse the first run's cache.

Statistics (``common.stats``). The unit is the split: each split is an independent draw of seed, pool, selection and
held-out pairs, and the split-to-split spread of an RM trained on 20-300 labels is the variance a claim about the
method has to beat. So every comparison (SER − seed-only, SER − 100%-label) is the mean over splits of the per-split
difference of held-out accuracies, with a percentile bootstrap over the splits. The pooled per-pair paired bootstrap
(all splits' held-out pairs) is reported beside it: it holds each trained RM fixed and samples only test pairs, so it
leaves out the training variance and is narrower than the split interval. The per-pair outcomes of the seed-only,
SER and 100%-label RMs are kept in each run folder (``heldout_outcomes.json``) so every interval can be recomputed.

Writes each run's folder, ``results.md`` (summary, claims, every per-loop table), ``results.json``, ``fidelity.png``
and ``claims.json`` (one row per set, seed fraction and claim, for ``common.fidelity``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from common.artifacts import RunDir, atomic_write_json, atomic_write_text, read_jsonl
from common.config import ConfigError, stage_cli
from common.config import help_meta as _h
from common.stats import Claim, Interval, bootstrap_mean, paired_bootstrap, write_claims
from ser.encoder_head import INPUT_FORMATS
from ser.loop import SERConfig, pairwise_outcomes, run_ser
from ser.loop_report import loop_table
from ser.reward_backends import build_backend

PAPER_SOURCE = ("arXiv 2411.00418 (ICLR 2025), abstract and Evaluation: with ~15% of the human labels the "
                "self-evolved RM matches the RM trained on all of them; no per-loop accuracies are given")
KEEP_LOOPS = ("selected", "last")
# below this margin over chance (accuracy) the 100%-label RM has not learnt the preference: no claim rests on it
CARRY_MARGIN = 0.05


@dataclass
class FidelityConfig:
    output_dir: str = field(default="runs/ser/fidelity", metadata=_h("run folder: <set>/seed_<p>pct/split_<s>/, "
                                                                    "results.md/json, fidelity.png, claims.json"))
    # the shared mirror of the hub sets (common.hub_data; make's DATA_ROOT=<folder> points at another copy)
    data_root: str = field(default="mirror:", metadata=_h("data root holding glue/sst2 and hh-rlhf; mirror: = the "
                                                          "shared mirror"))
    datasets: list[str] = field(default_factory=lambda: ["sst2", "hh_local"], metadata=_h("sst2 | hh_local"))
    seed_fractions: list[float] = field(default_factory=lambda: [0.01, 0.05, 0.15],
                                        metadata=_h("labelled share of the training pairs"))
    train_size: int = field(default=2000, metadata=_h("training pairs per split: labelled seed + unlabelled pool"))
    heldout_size: int = field(default=1000, metadata=_h("held-out pairs per split, reported only"))
    selection_size: int = field(default=1000, metadata=_h("labelled pairs that stop the loop and pick the loop kept; "
                                                          "a loop's gain is 0.5-1 point, below what 300 resolve"))
    input_format: str = field(default="qa_frame", metadata=_h("frozen_encoder: text embedded, qa_frame = 'Question: "
                                                              "{q}\\n\\nAnswer: {a}' (SER's RM input [CODE]) | bare "
                                                              "(the answer alone)"))
    max_loops: int = field(default=4, metadata=_h("self-labelling loops after loop 0"))
    patience: int = field(default=2, metadata=_h("stop after this many loops without a selection-accuracy gain"))
    min_delta: float = field(default=0.0, metadata=_h("a selection-accuracy gain must exceed this to count"))
    min_selected: int = field(default=16, metadata=_h("stop when fewer pool pairs pass the filter"))
    retrain_from: str = field(default="initial", metadata=_h("initial (zero head / base model each loop) | previous "
                                                             "(RM_{k-1})"))
    keep_loop: str = field(default="selected", metadata=_h("the SER RM reported: selected (best loop on the "
                                                           "selection pairs) | last (the last loop trained)"))
    backend: str = field(default="frozen_encoder", metadata=_h("frozen_encoder | common_rm (MiniLM fine-tuned by "
                                                               "common.train.rm each loop, finetune_rm)"))
    l2: float = field(default=1e-4, metadata=_h("frozen_encoder: λ of the head"))
    finetune_rm: dict = field(default_factory=lambda: {
        "model_name_or_path": "embedded:all-minilm-l6-v2", "template": "plain",
        "learning_rate": 3e-4, "num_train_epochs": 3, "per_device_train_batch_size": 16,
        "per_device_eval_batch_size": 64, "max_length": 64, "report_to": "none", "save_steps": 100000},
        metadata=_h("common_rm: RMConfig fields"))
    # [GUESS] sized for CPU minutes; at lr 5e-5 x 2 epochs the RM ranks well (81 % at 15 %) but its scores stay
    # within ±0.3, so σ(r) never leaves [0.45, 0.55] and the filter selects nothing
    status_schedule: str = field(default="both", metadata=_h("both | alternate"))
    # split seeds; the pair sample is the first seed's for all, so encodings are reused
    seeds: list[int] = field(default_factory=lambda: list(range(42, 52)), metadata=_h("split seeds (>= 2 for "
                                                                                     "intervals)"))
    cache_dir: str | None = field(default=None, metadata=_h("frozen_encoder: folder of <set>/embeddings.npz "
                                                            "(default output_dir; another run's folder reuses it)"))
    resamples: int = field(default=10_000, metadata=_h("bootstrap resamples (the pooled per-pair one uses 2,000)"))
    write_claims: bool = field(default=True, metadata=_h("write claims.json for common.fidelity"))
    overwrite: bool = field(default=False, metadata=_h("discard earlier runs in output_dir"))

    def __post_init__(self) -> None:
        if self.input_format not in INPUT_FORMATS:
            raise ConfigError(f"fidelity.input_format: {self.input_format!r} is not one of {list(INPUT_FORMATS)}")
        if self.keep_loop not in KEEP_LOOPS:
            raise ConfigError(f"fidelity.keep_loop: {self.keep_loop!r} is not one of {list(KEEP_LOOPS)}")
        if not self.seeds:
            raise ConfigError("fidelity.seeds: give at least one split seed")
        for key in ("train_size", "heldout_size", "selection_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"fidelity.{key}: {getattr(self, key)} must be >= 1")

    @property
    def pairs(self) -> int:
        """Pairs drawn per set: held-out + selection + training."""
        return self.train_size + self.heldout_size + self.selection_size


def run_name(ds: str, frac: float, split_seed: int) -> str:
    return f"{ds}/seed_{100 * frac:g}pct/split_{split_seed}"


def ser_config(cfg: FidelityConfig, ds: str, frac: float, split_seed: int) -> SERConfig:
    """One loop run of the grid; the 100%-label RM is trained once per split (first fraction) and reused."""
    out = Path(cfg.output_dir)
    first = cfg.seed_fractions[0]
    return SERConfig(output_dir=str(out / run_name(ds, frac, split_seed)), dataset=ds, data_path=cfg.data_root,
                     limit=cfg.pairs, heldout_size=cfg.heldout_size, selection_size=cfg.selection_size,
                     seed_fraction=frac, max_loops=cfg.max_loops, patience=cfg.patience, min_delta=cfg.min_delta,
                     min_selected=cfg.min_selected, retrain_from=cfg.retrain_from,
                     status_schedule=cfg.status_schedule, backend=cfg.backend, seed=split_seed,
                     data_seed=cfg.seeds[0], overwrite=cfg.overwrite, rm=rm_settings(cfg, ds, split_seed),
                     full_label_from=None if frac == first else
                     str(out / run_name(ds, first, split_seed) / "baseline_full"))


def rm_settings(cfg: FidelityConfig, ds: str, split_seed: int) -> dict:
    if cfg.backend == "frozen_encoder":  # one embedding cache per set, shared by every split and fraction
        cache = Path(cfg.cache_dir or cfg.output_dir) / ds / "embeddings.npz"
        return {"cache_path": str(cache), "l2": cfg.l2, "seed": split_seed, "input_format": cfg.input_format}
    return {**cfg.finetune_rm, "seed": split_seed}


def finished_run(sub: SERConfig) -> dict | None:
    """metrics.json of a finished split run whose state has ``sub``'s fingerprint (None: run it)."""
    out = Path(sub.output_dir)
    done, state = out / "metrics.json", out / "state.json"
    if sub.overwrite or not (done.exists() and state.exists()):
        return None
    if json.loads(state.read_text()).get("fingerprint") != sub.fingerprint():
        return None
    return json.loads(done.read_text())


def kept_loop(metrics: dict, keep_loop: str) -> int:
    """The loop reported as SER: the selection pairs' pick, or the last loop trained."""
    if keep_loop == "selected":
        return metrics["best_loop"]
    return max(r["loop"] for r in metrics["loops"] if r["trained"])


def heldout_outcomes(cfg: FidelityConfig, sub: SERConfig, metrics: dict) -> dict:
    """Per held-out pair: 1 / 0.5 / 0 (right, tie, wrong) for the seed-only, SER and 100%-label RMs of one run."""
    out = Path(sub.output_dir)
    heldout = read_jsonl(out / "data" / "heldout.jsonl")
    backend = build_backend(sub.backend, rm_settings(cfg, sub.dataset, sub.seed))  # reads the cache as it is now
    ser_loop = kept_loop(metrics, cfg.keep_loop)
    full_dir = Path(sub.full_label_from) if sub.full_label_from else out / "baseline_full"
    models = {"seed_only": out / "loop_0" / "model", "ser": out / f"loop_{ser_loop}" / "model",
              "full": full_dir / "model"}
    result = {"ids": [p["id"] for p in heldout], "ser_loop": ser_loop}
    for name, model in models.items():
        result[name] = pairwise_outcomes(backend, model, heldout).astype(float).tolist()
    atomic_write_json(out / "heldout_outcomes.json", result)
    return result


def run_fidelity(cfg: FidelityConfig) -> dict:
    out = Path(cfg.output_dir)
    # resume: a finished split run with the same settings is read back, so a killed or re-summarised run (other
    # resamples, keep_loop) redoes only what is missing; a split run with other settings is refused by ser.loop
    run = RunDir.start(out, cfg, seed=cfg.seeds[0], overwrite=cfg.overwrite, resume=True)
    sections, results = [], {}
    for ds in cfg.datasets:
        for frac in cfg.seed_fractions:
            for split_seed in cfg.seeds:
                name = run_name(ds, frac, split_seed)
                sub = ser_config(cfg, ds, frac, split_seed)
                m = finished_run(sub) or run_ser(sub)
                per_pair = heldout_outcomes(cfg, sub, m)
                ser_loop = per_pair["ser_loop"]
                results[name] = {**{k: m[k] for k in ("seed_only_accuracy", "full_label_accuracy", "best_loop",
                                                      "stop_reason", "self_labelled_total", "sizes", "loops")},
                                 "ser_accuracy": next(r["heldout_accuracy"] for r in m["loops"]
                                                      if r["loop"] == ser_loop and r["trained"]),
                                 "ser_loop": ser_loop, "outcomes": per_pair}
                table = loop_table(m["loops"], m["seed_only_accuracy"], m["full_label_accuracy"], ser_loop)
                sections.append(f"### {ds}, seed {100 * frac:g}%, split seed {split_seed} ({m['sizes']['seed']} "
                                f"labelled, {m['sizes']['pool']} pool, {m['sizes']['selection']} selection, "
                                f"{m['sizes']['heldout']} held-out; stop: {m['stop_reason']})\n\n{table}\n")
    rows = summary_rows(results, cfg)
    claims = make_claims(rows, cfg) if len(cfg.seeds) > 1 else []
    text = (settings_line(cfg) + "\n\n" + summary_table(rows, len(cfg.seeds)) + "\n\n"
            + (claims_table(claims) + "\n\n" if claims else "") + "\n".join(sections))
    atomic_write_text(out / "results.md", "# SER fidelity\n\n" + text)
    slim = {n: {k: v for k, v in r.items() if k != "outcomes"} for n, r in results.items()}
    atomic_write_json(out / "results.json", {"summary": rows, "runs": slim,
                                             "claims": [c.to_dict() for c in claims]})
    if cfg.write_claims and claims:
        write_claims(out, claims)
    _plot(out / "fidelity.png", rows, cfg)
    print(text, flush=True)
    at15 = [r for r in rows if r["set"] == "sst2" and r["seed_fraction"] == 0.15]
    return run.finish({"summary": rows, "runs": {n: {k: v for k, v in r.items() if k != "loops"}
                                                  for n, r in slim.items()},
                       "claims": [c.to_dict() for c in claims],
                       "sst2_ser_accuracy_15pct": at15[0]["ser"][0] if at15 else None},
                      key_metric="sst2_ser_accuracy_15pct" if at15 else None)


def settings_line(cfg: FidelityConfig) -> str:
    return (f"Settings: {cfg.backend}, input_format {cfg.input_format}; per split {cfg.train_size} training "
            f"(seed + pool) / {cfg.selection_size} selection / {cfg.heldout_size} held-out pairs; "
            f"{len(cfg.seeds)} splits (seeds {cfg.seeds[0]}-{cfg.seeds[-1]}); max_loops {cfg.max_loops}, patience "
            f"{cfg.patience}, min_delta {cfg.min_delta:g}, min_selected {cfg.min_selected}, retrain_from "
            f"{cfg.retrain_from}, SER = {cfg.keep_loop} loop, schedule {cfg.status_schedule}.")


def gap_closed_interval(seed_only: list[float], ser: list[float], full: list[float], *, resamples: int = 10_000,
                        seed: int = 0) -> Interval | None:
    """(mean SER − mean seed-only) / (mean 100% − mean seed-only), percentile bootstrap over splits.

    A ratio of means, so ``common.stats`` (means only) does not cover it; resamples whose gap is under 0.5 point are
    left out (no gap to close). None when the observed gap is that small."""
    a, b, c = (np.asarray(v, dtype=float) for v in (seed_only, ser, full))

    def ratio(idx: np.ndarray) -> np.ndarray:
        gap = c[idx].mean(axis=-1) - a[idx].mean(axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(gap > 0.005, (b[idx].mean(axis=-1) - a[idx].mean(axis=-1)) / gap, np.nan)

    estimate = float(ratio(np.arange(a.size)))
    if np.isnan(estimate):
        return None
    draws = ratio(np.random.default_rng(seed).integers(0, a.size, size=(resamples, a.size)))
    low, high = np.nanpercentile(draws, [2.5, 97.5])
    return Interval(estimate, float(low), float(high), int(a.size), 0.95, "ratio of means, percentile bootstrap")


def summary_rows(results: dict, cfg: FidelityConfig) -> list[dict]:
    """Per set and seed fraction: mean and sd over splits of each RM's held-out accuracy, and 95 % intervals of the
    split differences (SER − seed-only, SER − 100%), the gap closed and, pooled over pairs, SER − seed-only."""
    rows = []
    for ds in cfg.datasets:
        for frac in cfg.seed_fractions:
            runs = [results[run_name(ds, frac, s)] for s in cfg.seeds]

            def acc(key: str, runs: list[dict] = runs) -> np.ndarray:
                return np.array([r[key] for r in runs], dtype=float)

            def stat(values: np.ndarray) -> tuple[float, float]:
                return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0

            seed_only, ser, full = acc("seed_only_accuracy"), acc("ser_accuracy"), acc("full_label_accuracy")
            gap = full.mean() - seed_only.mean()
            row = {"set": ds, "seed_fraction": frac, "seed_only": stat(seed_only), "ser": stat(ser),
                   "full": stat(full), "gap_closed": float((ser.mean() - seed_only.mean()) / gap) if gap > 0.005
                   else None,
                   "ser_gain_per_split": (ser - seed_only).tolist(), "ser_minus_full_per_split": (ser - full).tolist(),
                   "loops_kept": [r.get("ser_loop", r["best_loop"]) for r in runs],
                   "stop_reasons": [r.get("stop_reason") for r in runs]}
            if len(runs) > 1:  # accuracy differences (fractions; tables print points)
                row["ser_minus_seed_ci"] = asdict(bootstrap_mean(ser - seed_only, resamples=cfg.resamples))
                row["ser_minus_full_ci"] = asdict(bootstrap_mean(ser - full, resamples=cfg.resamples))
                # can the RM carry the claim at all: the 100%-label RM above chance
                row["full_minus_chance_ci"] = asdict(bootstrap_mean(full, reference=0.5, resamples=cfg.resamples))
                closed = gap_closed_interval(seed_only, ser, full, resamples=cfg.resamples)
                row["gap_closed_ci"] = asdict(closed) if closed else None
            if all("outcomes" in r for r in runs):
                pooled_ser = np.concatenate([r["outcomes"]["ser"] for r in runs])
                pooled_seed = np.concatenate([r["outcomes"]["seed_only"] for r in runs])
                row["ser_minus_seed_pooled_pairs_ci"] = asdict(paired_bootstrap(pooled_ser, pooled_seed,
                                                                                resamples=2000))
            rows.append(row)
    return rows


def _iv(d: dict | None) -> Interval | None:
    return Interval(**d) if d else None


def make_claims(rows: list[dict], cfg: FidelityConfig) -> list[Claim]:
    """(a) SER beats the seed-only RM, (b) SER is on par with the 100%-label RM: per set and seed fraction."""
    claims = []
    fmt = {"qa_frame": "'Question: q / Answer: a' input (SER's)", "bare": "bare-answer input"}[cfg.input_format]
    for r in rows:
        pct = f"{100 * r['seed_fraction']:g}"
        setting = (f"{r['set']}, {pct}% seed of {cfg.train_size} pairs, frozen MiniLM + BT head, {fmt}, "
                   f"{cfg.heldout_size} held-out × {len(cfg.seeds)} splits, selection {cfg.selection_size}, "
                   f"patience {cfg.patience}")
        if cfg.backend != "frozen_encoder":
            setting = setting.replace("frozen MiniLM + BT head", f"{cfg.backend} MiniLM")
        chance = _iv(r.get("full_minus_chance_ci"))
        full_level = (f"100%-label RM {100 * r['full'][0]:.1f} %"
                      + (f" (− chance: {chance.format(100, 1)} points)" if chance else "")
                      + f", SER {100 * r['ser'][0]:.1f} %, seed-only {100 * r['seed_only'][0]:.1f} %")
        if chance and chance.estimate < CARRY_MARGIN:
            full_level = (f"NOT CARRIED: the 100%-label RM is within {100 * CARRY_MARGIN:g} points of chance, so this "
                          f"verdict says nothing about SER; {full_level}")
            setting = f"NOT CARRIED (100%-label RM {100 * chance.estimate:+.1f} points over chance): {setting}"
        pooled = _iv(r.get("ser_minus_seed_pooled_pairs_ci"))
        claims.append(Claim(
            paper="ser", claim=f"the SER RM beats the seed-only RM ({r['set']}, {pct}% labels)",
            metric="held-out pairwise accuracy, SER − seed-only (points); mean of per-split differences",
            direction=+1, ours=_iv(r["ser_minus_seed_ci"]), unit="splits", paper_value=None,
            paper_source=PAPER_SOURCE + " (qualitative: the loops improve on loop 0)", setting=setting, scale=100,
            note=f"{full_level}; pooled over {pooled.n} held-out pairs (RMs held fixed): "
                 f"{pooled.format(100, 1)} points" if pooled else full_level))
        closed = _iv(r.get("gap_closed_ci"))
        closed_text = (f"gap closed {100 * closed.estimate:.0f} % [{100 * closed.low:.0f}, {100 * closed.high:.0f}]"
                       if closed else "no gap between seed-only and 100%-label RMs")
        claims.append(Claim(
            paper="ser", claim=f"the SER RM is on par with the 100%-label RM ({r['set']}, {pct}% labels)",
            metric="held-out pairwise accuracy, SER − 100%-label (points); mean of per-split differences",
            direction=+1, ours=_iv(r["ser_minus_full_ci"]), unit="splits", paper_value=0.0,
            paper_source=PAPER_SOURCE + " (on par: a difference of 0)", setting=setting,
            note=f"{full_level}; {closed_text}. An 'on par or better' claim: refuted = SER measurably below the "
                 "100%-label RM; inconclusive = within noise of it", scale=100))
    return claims


def claims_table(claims: list[Claim]) -> str:
    lines = ["| claim | ours, points, 95 % interval over splits (n) | verdict | note |", "|---|---|---|---|"]
    for c in claims:
        lines.append(f"| {c.claim} | {c.ours.format(100, 1)} (n={c.ours.n} {c.unit}) | **{c.verdict}** | {c.note} |")
    return "\n".join(lines)


def summary_table(rows: list[dict], n_seeds: int) -> str:
    def ms(x: tuple[float, float]) -> str:  # one split has no spread to show
        return f"{100 * x[0]:.1f} ± {100 * x[1]:.1f}" if n_seeds > 1 else f"{100 * x[0]:.1f}"

    def ci(d: dict | None, scale: float = 1.0, digits: int = 1) -> str:
        return Interval(**d).format(scale, digits) if d else "-"

    over = f"mean ± sd over {n_seeds} split seeds" if n_seeds > 1 else "one split"
    caption = (f"Held-out pairwise accuracy %, {over} (SER = the loop reported); differences in points with 95 % "
               "bootstrap intervals over splits:")
    header = ("| set | seed % | seed-only RM | SER RM | 100%-label RM | SER − seed-only | SER − 100% | gap closed | "
              "loop kept |")
    lines = [caption, "", header, "|---|---:|---:|---:|---:|---|---|---|---|"]
    for r in rows:
        if r["gap_closed"] is None:
            closed = "n/a (no gap)"
        elif r.get("gap_closed_ci"):
            g = r["gap_closed_ci"]
            closed = f"{100 * g['estimate']:.0f}% [{100 * g['low']:.0f}, {100 * g['high']:.0f}]"
        else:
            closed = f"{100 * r['gap_closed']:.0f}%"
        gain = ci(r.get("ser_minus_seed_ci"), 100) if n_seeds > 1 else \
            ", ".join(f"{100 * g:+.1f}" for g in r["ser_gain_per_split"])
        lines.append(f"| {r['set']} | {100 * r['seed_fraction']:g} | {ms(r['seed_only'])} | {ms(r['ser'])} | "
                     f"{ms(r['full'])} | {gain} | {ci(r.get('ser_minus_full_ci'), 100)} | {closed} | "
                     f"{', '.join(map(str, r['loops_kept']))} |")
    return "\n".join(lines)


def _plot(path: Path, rows: list[dict], cfg: FidelityConfig) -> None:
    """Per set: the three RMs' accuracy (mean ± sd over splits), and the two differences with 95 % intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(cfg.datasets), figsize=(5 * len(cfg.datasets), 6.6), squeeze=False)
    for col, ds in enumerate(cfg.datasets):
        mine = [r for r in rows if r["set"] == ds]
        x = np.array([100 * r["seed_fraction"] for r in mine])
        ax = axes[0][col]
        for key, label, style in (("seed_only", "seed-only RM", "s:"), ("ser", "SER RM", "o-"),
                                  ("full", "100%-label RM", "k--")):
            ax.errorbar(x, [100 * r[key][0] for r in mine], yerr=[100 * r[key][1] for r in mine], fmt=style,
                        capsize=3, label=label)
        ax.set_title(f"{ds} ({cfg.input_format}): held-out accuracy, {len(cfg.seeds)} splits", fontsize=9)
        ax.set_ylabel("% (mean ± sd)")
        ax.legend(fontsize=7)
        ax = axes[1][col]
        for key, label, shift, style in (("ser_minus_seed_ci", "SER − seed-only", 0.94, "o"),
                                         ("ser_minus_full_ci", "SER − 100%", 1.06, "s")):
            ivs = [r.get(key) for r in mine]
            if not all(ivs):
                continue
            est = 100 * np.array([iv["estimate"] for iv in ivs])
            err = 100 * np.array([[iv["estimate"] - iv["low"] for iv in ivs],
                                  [iv["high"] - iv["estimate"] for iv in ivs]])
            ax.errorbar(x * shift, est, yerr=err, fmt=style, capsize=3, label=label)
        ax.axhline(0, color="grey", ls="--", lw=0.8)
        ax.set_ylabel("points (95 % interval over splits)")
        ax.legend(fontsize=7)
        for a in axes[:, col]:
            a.set_xscale("log")
            a.set_xticks(x, [f"{v:g}" for v in x])
            a.set_xlabel("labelled seed (% of training pairs)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    stage_cli(FidelityConfig, run_fidelity, "fidelity", "SER fidelity run (MiniLM on CPU: frozen + head, or "
              "fine-tuned) with 95 % intervals over splits and claims.json.", argv)


if __name__ == "__main__":
    main()
