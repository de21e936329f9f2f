"""The SER loop driver: seed RM, then self-label confident pool pairs and retrain until the RM stops improving.

    python -m ser.loop --config ser/configs/llama3.yaml [--section ser] [--key value ...]

Loop 0 trains RM_0 on the labelled seed. Loop k ≥ 1 scores both responses of every pool pair with RM_{k−1} in one
pass (p = σ(r), pointwise [CODE]), keeps the confident pairs (``ser.filter``), and retrains on seed + every pair
self-labelled so far [GUESS: accumulation], from the initial model or from RM_{k−1} (``retrain_from``). It stops when
held-out accuracy has not risen for ``patience`` loops, when fewer than ``min_selected`` pairs pass, when the pool
is empty, or after ``max_loops``. Upstream runs these steps by hand; here the driver runs them.

State lives in the run folder: ``data/`` (the split; the pool's human labels sit apart in
``data/pool_labels.json`` and are read only to measure self-label agreement), ``loop_<k>/`` (selected.jsonl, model)
and ``state.json`` (written atomically after each loop). A run killed mid-loop resumes at that loop; the self-labelled
set is rebuilt from the committed loops' ``selected.jsonl`` files, so nothing is counted twice.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from common.artifacts import RunDir, atomic_write_json, read_jsonl, write_jsonl
from common.config import ConfigError, UserError, stage_cli
from ser.filter import STATUS_SCHEDULES, FilterThresholds, select_confident, statuses_for_round
from ser.loop_report import write_report
from ser.pairs import SERSplit, load_pairs, split_seed_pool_heldout
from ser.reward_backends import RewardBackend, build_backend

STATE_VERSION = 1


def _h(text: str) -> dict:
    return {"help": text}


@dataclass
class SERConfig:
    """Settings of the SER loop (section ``ser`` of a recipe)."""

    output_dir: str = field(metadata=_h("run folder: data/, loop_<k>/, state.json, table, plot, metrics.json"))
    dataset: str = field(default="hh", metadata=_h("hh | ultrafeedback | summarize | stackexchange | hh_local | "
                                                   "sst2 | jsonl"))
    data_path: str | None = field(default=None, metadata=_h("hub id override, or the local file/folder"))
    data_split: str | None = field(default=None, metadata=_h("split to read (default: the set's training split)"))
    limit: int | None = field(default=None, metadata=_h("use at most this many pairs in all (seeded shuffle)"))
    seed_fraction: float = field(default=0.15, metadata=_h("labelled share of the non-held-out pairs [SECONDARY]"))
    heldout_size: int = field(default=1500, metadata=_h("held-out evaluation pairs [CODE] 1,500"))
    t_low: float = field(default=0.45, metadata=_h("t_L of status 1 [CODE]"))
    t_high: float = field(default=0.55, metadata=_h("t_R of status 1 [CODE]"))
    margin: float = field(default=0.3, metadata=_h("p_j - p_k gap of status 2 [CODE]"))
    status_schedule: str = field(default="both", metadata=_h("both (upstream code) | alternate (1 then 2) "
                                                             "[SECONDARY]"))
    max_loops: int = field(default=4, metadata=_h("self-labelling loops after loop 0 [GUESS] 3-4"))
    patience: int = field(default=1, metadata=_h("stop after this many loops without a held-out gain"))
    min_delta: float = field(default=0.0, metadata=_h("a gain must exceed this to count"))
    min_selected: int = field(default=16, metadata=_h("stop when fewer pool pairs pass the filter [GUESS]"))
    retrain_from: str = field(default="initial", metadata=_h("initial (base/SFT model) | previous (RM_{k-1}) [GUESS]"))
    full_label_baseline: bool = field(default=True, metadata=_h("also train the RM on 100% human labels"))
    backend: str = field(default="common_rm", metadata=_h("common_rm (common.train.rm) | frozen_encoder"))
    rm: dict = field(default_factory=dict, metadata=_h("backend settings: RMConfig fields, or EncoderHeadSettings"))
    rm_model: str | None = field(default=None, metadata=_h("replaces rm.model_name_or_path (scripts: the SFT run)"))
    seed: int = field(default=42, metadata=_h("seed of the split and the pool order"))
    overwrite: bool = field(default=False, metadata=_h("discard an earlier run in output_dir and start over"))

    def __post_init__(self) -> None:
        if self.status_schedule not in STATUS_SCHEDULES:
            raise ConfigError(f"ser.status_schedule: {self.status_schedule!r} is not one of {list(STATUS_SCHEDULES)}")
        if self.retrain_from not in ("initial", "previous"):
            raise ConfigError(f"ser.retrain_from: {self.retrain_from!r} is not one of ['initial', 'previous']")
        for key in ("max_loops", "patience", "min_selected"):
            if getattr(self, key) < (0 if key == "max_loops" else 1):
                raise ConfigError(f"ser.{key}: {getattr(self, key)} is too small")
        try:
            FilterThresholds(self.t_low, self.t_high, self.margin)
        except ValueError as exc:
            raise ConfigError(f"ser.t_low/t_high/margin: {exc}") from None

    @property
    def thresholds(self) -> FilterThresholds:
        return FilterThresholds(self.t_low, self.t_high, self.margin)

    def fingerprint(self) -> str:
        """Hash of the settings a resumed run must share with the interrupted one (not output/overwrite)."""
        keep = {k: v for k, v in asdict(self).items() if k not in ("output_dir", "overwrite")}
        return hashlib.sha1(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()[:12]


# ---------------------------------------------------------------------------------------------------------------
# Run-folder state.


def _write_split(out: Path, split: SERSplit) -> None:
    write_jsonl(out / "data" / "seed.jsonl", split.seed)
    write_jsonl(out / "data" / "pool.jsonl", split.pool)
    write_jsonl(out / "data" / "heldout.jsonl", split.heldout)
    atomic_write_json(out / "data" / "pool_labels.json", split.pool_labels)


def _read_split(out: Path) -> SERSplit:
    d = out / "data"
    return SERSplit(seed=read_jsonl(d / "seed.jsonl"), pool=read_jsonl(d / "pool.jsonl"),
                    pool_labels=json.loads((d / "pool_labels.json").read_text()), heldout=read_jsonl(d / "heldout.jsonl"))


def self_labelled_so_far(out: Path, loops: list[dict]) -> list[dict]:
    """Every pair self-labelled in the committed loops, in loop order; an id twice is an invariant violation."""
    pairs: dict[str, dict] = {}
    for row in loops:
        if row["loop"] == 0 or not row.get("trained"):
            continue
        for rec in read_jsonl(out / f"loop_{row['loop']}" / "selected.jsonl"):
            assert rec["id"] not in pairs, f"pair {rec['id']} self-labelled twice (loop {row['loop']})"
            pairs[rec["id"]] = rec
    return list(pairs.values())


def heldout_accuracy(backend: RewardBackend, model_dir: Path, heldout: list[dict]) -> float:
    """Share of held-out pairs with r(chosen) > r(rejected); a tie counts one half. One scoring pass."""
    prompts = [r["prompt"] for r in heldout]
    r = backend.score(model_dir, prompts + prompts, [x["chosen"] for x in heldout] + [x["rejected"] for x in heldout])
    r_c, r_r = r[: len(heldout)], r[len(heldout):]
    return float(np.mean((r_c > r_r) + 0.5 * (r_c == r_r)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def select_from_pool(backend: RewardBackend, model_dir: Path, pool: list[dict], cfg: SERConfig,
                     round_index: int) -> tuple[list[dict], list[str]]:
    """Score both responses of every pool pair in one pass, filter; -> (self-labelled records, remaining ids)."""
    prompts = [p["prompt"] for p in pool]
    r = backend.score(model_dir, prompts + prompts, [p["response_a"] for p in pool] + [p["response_b"] for p in pool])
    p_a, p_b = _sigmoid(r[: len(pool)]), _sigmoid(r[len(pool):])
    sel = select_confident(p_a, p_b, cfg.thresholds, statuses_for_round(cfg.status_schedule, round_index))
    chosen = []
    for i in sel.selected:
        item, a_wins = pool[i], sel.label[i] > 0
        chosen.append({"id": item["id"], "prompt": item["prompt"],
                       "chosen": item["response_a"] if a_wins else item["response_b"],
                       "rejected": item["response_b"] if a_wins else item["response_a"],
                       "self_label": int(sel.label[i]), "status": int(sel.status[i]),
                       "p_chosen": float(p_a[i] if a_wins else p_b[i]),
                       "p_rejected": float(p_b[i] if a_wins else p_a[i])})
    return chosen, [pool[i]["id"] for i in sel.remaining]


# ---------------------------------------------------------------------------------------------------------------
# The loop.


def _start_state(out: Path, cfg: SERConfig) -> tuple[dict, SERSplit]:
    state_path = out / "state.json"
    if cfg.overwrite:
        for child in out.glob("loop_*"):
            shutil.rmtree(child)
        for name in ("state.json", "data", "baseline_full"):
            target = out / name
            shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    if state_path.exists():
        state = json.loads(state_path.read_text())
        if state.get("fingerprint") != cfg.fingerprint():
            raise UserError(f"{out} holds a SER run with other settings (fingerprint {state.get('fingerprint')} vs "
                            f"{cfg.fingerprint()}); pass --overwrite true or choose another output_dir")
        return state, _read_split(out)
    records = load_pairs(cfg.dataset, cfg.data_path, cfg.data_split, cfg.limit, cfg.seed)
    split = split_seed_pool_heldout(records, cfg.seed_fraction, cfg.heldout_size, cfg.seed)
    _write_split(out, split)
    state = {"version": STATE_VERSION, "fingerprint": cfg.fingerprint(), "next_loop": 0, "loops": [],
             "pool_ids": [p["id"] for p in split.pool], "best_loop": None, "best_accuracy": None,
             "loops_since_best": 0, "stop_reason": None,
             "sizes": {"seed": len(split.seed), "pool": len(split.pool), "heldout": len(split.heldout)}}
    atomic_write_json(state_path, state)
    return state, split


def _update_stopping(state: dict, cfg: SERConfig, k: int, acc: float) -> None:
    if state["best_accuracy"] is None or acc > state["best_accuracy"] + cfg.min_delta:
        state["best_accuracy"], state["best_loop"], state["loops_since_best"] = acc, k, 0
    else:
        state["loops_since_best"] += 1
    if k > 0 and state["loops_since_best"] >= cfg.patience:
        state["stop_reason"] = "plateau"
    elif k >= cfg.max_loops:
        state["stop_reason"] = "max_loops"
    elif not state["pool_ids"]:
        state["stop_reason"] = "pool_exhausted"


def run_loop(cfg: SERConfig, backend: RewardBackend, out: Path) -> dict:
    """Run (or resume) loops until a stopping rule fires; returns the final state."""
    state, split = _start_state(out, cfg)
    pool_by_id = {p["id"]: p for p in split.pool}
    while state["stop_reason"] is None:
        k = state["next_loop"]
        loop_dir = out / f"loop_{k}"
        if loop_dir.exists():  # a loop killed mid-way: redo it from scratch
            shutil.rmtree(loop_dir)
        loop_dir.mkdir(parents=True)
        row: dict = {"loop": k, "trained": False}
        selected: list[dict] = []
        remaining = state["pool_ids"]
        if k > 0:
            pool = [pool_by_id[i] for i in state["pool_ids"]]
            selected, remaining = select_from_pool(backend, out / f"loop_{k - 1}" / "model", pool, cfg, k - 1)
            write_jsonl(loop_dir / "selected.jsonl", selected)
            agree = [s["self_label"] == split.pool_labels[s["id"]] for s in selected]
            row.update(selected=len(selected), selected_status1=sum(s["status"] == 1 for s in selected),
                       selected_status2=sum(s["status"] == 2 for s in selected),
                       agreement=float(np.mean(agree)) if agree else None, pool_before=len(pool))
            if len(selected) < cfg.min_selected:
                state["loops"].append(row)
                state["stop_reason"] = "too_few_selected"
                atomic_write_json(out / "state.json", state)
                break
        earlier = self_labelled_so_far(out, state["loops"])
        train_pairs = split.seed + earlier + selected
        init_from = out / f"loop_{k - 1}" / "model" if (k > 0 and cfg.retrain_from == "previous") else None
        info = backend.train(train_pairs, loop_dir / "model", init_from)
        acc = heldout_accuracy(backend, loop_dir / "model", split.heldout)
        all_self = earlier + selected
        cumulative = [s["self_label"] == split.pool_labels[s["id"]] for s in all_self]
        row.update(trained=True, train_pairs=len(train_pairs), self_labelled_total=len(all_self),
                   cumulative_agreement=float(np.mean(cumulative)) if cumulative else None,
                   heldout_accuracy=acc, pool_after=len(remaining), train_info=info)
        state["loops"].append(row)
        state["pool_ids"] = remaining
        state["next_loop"] = k + 1
        _update_stopping(state, cfg, k, acc)
        atomic_write_json(out / "state.json", state)  # the commit point of loop k
        print(f"[ser] loop {k}: selected {row.get('selected', '-')} agreement {row.get('agreement')} "
              f"held-out accuracy {acc:.4f}", flush=True)
    return state


def full_label_baseline(cfg: SERConfig, backend: RewardBackend, out: Path) -> float:
    """RM on seed + the whole pool with its human labels (cached in baseline_full/ once done)."""
    done = out / "baseline_full" / "result.json"
    if done.exists():
        return json.loads(done.read_text())["heldout_accuracy"]
    split = _read_split(out)
    backend.train(split.seed + split.pool_as_labelled(), out / "baseline_full" / "model", None)
    acc = heldout_accuracy(backend, out / "baseline_full" / "model", split.heldout)
    atomic_write_json(done, {"heldout_accuracy": acc, "train_pairs": len(split.seed) + len(split.pool)})
    return acc


def backend_settings(cfg: SERConfig, out: Path) -> dict:
    settings = dict(cfg.rm)
    if cfg.rm_model:
        settings["model_name_or_path"] = cfg.rm_model
    if cfg.backend == "frozen_encoder":
        settings.setdefault("cache_path", str(out / "embeddings.npz"))
    return settings


def run_ser(cfg: SERConfig, backend: RewardBackend | None = None) -> dict:
    """The whole stage: loop (resumable), the 100%-label baseline, the per-loop table and plot, metrics.json."""
    out = Path(cfg.output_dir)
    run = RunDir.start(out, cfg, seed=cfg.seed, overwrite=cfg.overwrite)
    backend = backend or build_backend(cfg.backend, backend_settings(cfg, out))
    state = run_loop(cfg, backend, out)
    full = full_label_baseline(cfg, backend, out) if cfg.full_label_baseline else None
    trained = [r for r in state["loops"] if r["trained"]]
    metrics = {
        "seed_only_accuracy": trained[0]["heldout_accuracy"],
        "ser_accuracy": state["best_accuracy"],
        "ser_last_accuracy": trained[-1]["heldout_accuracy"],
        "full_label_accuracy": full,
        "best_loop": state["best_loop"],
        "loops_trained": len(trained) - 1,
        "stop_reason": state["stop_reason"],
        "self_labelled_total": trained[-1].get("self_labelled_total", 0),
        "final_model": str(out / f"loop_{state['best_loop']}" / "model"),
        "sizes": state["sizes"],
        "seed_fraction": cfg.seed_fraction,
        "loops": state["loops"],
    }
    table = write_report(out, state["loops"], metrics)
    print(table, flush=True)
    return run.finish(metrics, key_metric="ser_accuracy")


def main(argv: list[str] | None = None) -> None:
    stage_cli(SERConfig, run_ser, "ser", "SER: self-evolved reward learning loop (seed RM -> self-label -> retrain).",
              argv)


if __name__ == "__main__":
    main()
