"""The SER loop driver: seed RM, then self-label confident pool pairs and retrain until the RM stops improving.

    python -m ser.loop --config ser/configs/llama3.yaml [--section ser] [--key value ...]

Loop 0 trains RM_0 on the labelled seed. Loop k ≥ 1 scores both responses of every pool pair with RM_{k−1} in one
pass (p = σ(r), pointwise [CODE]), keeps the confident pairs (``ser.filter``), and retrains on seed + every pair
self-labelled so far [GUESS: accumulation], from the initial model or from RM_{k−1} (``retrain_from``). It stops when
accuracy on the *selection* pairs has not risen for ``patience`` loops, when fewer than ``min_selected`` pairs pass,
when the pool is empty, or after ``max_loops``; the loop it keeps is the best one on the selection pairs. The
*held-out* pairs never steer the loop: they only measure every loop and both baselines, so the reported SER accuracy
is not picked on the set it is reported on. Upstream runs these steps by hand; here the driver runs them.

``pool_source: generate`` replaces each pool pair by two fresh responses to its prompt from ``generator`` (the review's
reading of the paper [SECONDARY]; upstream code re-scores the existing pairs). Those pairs have no human label, so
their self-label agreement is not measured; the 100%-label baseline still trains on the original labelled pool.

State lives in the run folder: ``data/`` (the split; the pool's human labels sit apart in
``data/pool_labels.json`` and are read only to measure self-label agreement), ``loop_<k>/`` (selected.jsonl, model)
and ``state.json`` (written atomically after each loop). A run killed mid-loop resumes at that loop; the self-labelled
set is rebuilt from the committed loops' ``selected.jsonl`` files, so nothing is counted twice.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.artifacts import RunDir, atomic_write_json, read_jsonl, write_jsonl
from common.config import UserError, stage_cli
from common.data import data_metrics
from ser.config import SERConfig
from ser.filter import select_confident, statuses_for_round
from ser.loop_report import write_report
from ser.pairs import SERSplit, load_pairs, split_seed_pool_heldout
from ser.reward_backends import REWARD_BACKENDS, RewardBackend, build_backend, ppo_reward_fields

STATE_VERSION = 2


# ---------------------------------------------------------------------------------------------------------------
# Run-folder state.


@dataclass
class LoopData:
    """The split as the loop sees it: ``split.heldout`` is only reported; ``selection`` steers the loop."""

    split: SERSplit
    selection: list[dict]
    pool: list[dict]  # what the loop self-labels: split.pool, or the generated pairs (pool_source generate)


def load_cfg_pairs(cfg: SERConfig, stats: dict | None = None) -> list[dict]:
    """The run's pairs; ``stats`` receives the HH-RLHF rows read and skipped per reason (ser.pairs.load_pairs)."""
    return load_pairs(cfg.dataset, cfg.data_path, cfg.data_split, cfg.limit,
                      cfg.seed if cfg.data_seed is None else cfg.data_seed, on_bad_row=cfg.on_bad_row, stats=stats)


def split_for_loop(records: list[dict], cfg: SERConfig) -> tuple[SERSplit, list[dict]]:
    """Held-out (reported), selection (steers the loop), then the labelled seed and the unlabelled pool."""
    if cfg.heldout_size + cfg.selection_size >= len(records) - 1:
        raise UserError(f"ser.heldout_size ({cfg.heldout_size}) + ser.selection_size ({cfg.selection_size}) leave "
                        f"no training pairs: the dataset has {len(records)} pairs")
    split = split_seed_pool_heldout(records, cfg.seed_fraction, cfg.heldout_size + cfg.selection_size, cfg.seed)
    apart = split.heldout
    split.heldout = apart[: cfg.heldout_size]
    return split, apart[cfg.heldout_size:]


def _write_split(out: Path, split: SERSplit, selection: list[dict]) -> None:
    write_jsonl(out / "data" / "seed.jsonl", split.seed)
    write_jsonl(out / "data" / "pool.jsonl", split.pool)
    write_jsonl(out / "data" / "heldout.jsonl", split.heldout)
    write_jsonl(out / "data" / "selection.jsonl", selection)
    atomic_write_json(out / "data" / "pool_labels.json", split.pool_labels)


def _read_data(out: Path, cfg: SERConfig) -> LoopData:
    d = out / "data"
    split = SERSplit(seed=read_jsonl(d / "seed.jsonl"), pool=read_jsonl(d / "pool.jsonl"),
                     pool_labels=json.loads((d / "pool_labels.json").read_text()),
                     heldout=read_jsonl(d / "heldout.jsonl"))
    pool = read_jsonl(d / "generated_pool.jsonl") if cfg.pool_source == "generate" else split.pool
    return LoopData(split, read_jsonl(d / "selection.jsonl"), pool)


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


def pairwise_outcomes(backend: RewardBackend, model_dir: Path, pairs: list[dict]) -> np.ndarray:
    """Per pair: 1 if r(chosen) > r(rejected), 0.5 on a tie, else 0. One scoring pass."""
    prompts = [r["prompt"] for r in pairs]
    r = backend.score(model_dir, prompts + prompts, [x["chosen"] for x in pairs] + [x["rejected"] for x in pairs])
    r_c, r_r = r[: len(pairs)], r[len(pairs):]
    return (r_c > r_r) + 0.5 * (r_c == r_r)


def pairwise_accuracy(backend: RewardBackend, model_dir: Path, pairs: list[dict]) -> float:
    """Share of pairs with r(chosen) > r(rejected); a tie counts one half."""
    return float(np.mean(pairwise_outcomes(backend, model_dir, pairs)))


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


def _agreement(selected: list[dict], labels: dict[str, int]) -> float | None:
    """Share of self-labels equal to the hidden human label, over the pairs that have one (generated pairs do not)."""
    agree = [s["self_label"] == labels[s["id"]] for s in selected if s["id"] in labels]
    return float(np.mean(agree)) if agree else None


# ---------------------------------------------------------------------------------------------------------------
# The loop.


def _start_state(out: Path, cfg: SERConfig) -> tuple[dict, LoopData]:
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
        return state, _read_data(out, cfg)
    data_stats: dict = {}
    split, selection = split_for_loop(load_cfg_pairs(cfg, data_stats), cfg)
    _write_split(out, split, selection)
    if cfg.pool_source == "generate":  # cached per answer: a crash here resumes the generation, not restarts it
        from ser.generated_pool import generate_pool

        write_jsonl(out / "data" / "generated_pool.jsonl",
                    generate_pool(split.pool, cfg.generator, out / "data" / "generation_cache.jsonl", cfg.seed))
    data = _read_data(out, cfg)
    if not data.pool:
        raise UserError(f"{out}: the unlabelled pool is empty (pool_source {cfg.pool_source}); lower "
                        "seed_fraction or use more pairs")
    state = {"version": STATE_VERSION, "fingerprint": cfg.fingerprint(), "next_loop": 0, "loops": [],
             "pool_ids": [p["id"] for p in data.pool], "best_loop": None, "best_accuracy": None,
             "loops_since_best": 0, "stop_reason": None,
             "sizes": {"seed": len(split.seed), "pool": len(data.pool), "selection": len(selection),
                       "heldout": len(split.heldout)},
             "data_stats": data_metrics(data_stats)}  # HH sets: rows read, rows skipped per reason
    atomic_write_json(state_path, state)
    return state, data


def _update_stopping(state: dict, cfg: SERConfig, k: int, selection_acc: float) -> None:
    if state["best_accuracy"] is None or selection_acc > state["best_accuracy"] + cfg.min_delta:
        state["best_accuracy"], state["best_loop"], state["loops_since_best"] = selection_acc, k, 0
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
    state, data = _start_state(out, cfg)
    pool_by_id = {p["id"]: p for p in data.pool}
    labels = data.split.pool_labels
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
            row.update(selected=len(selected), selected_status1=sum(s["status"] == 1 for s in selected),
                       selected_status2=sum(s["status"] == 2 for s in selected),
                       agreement=_agreement(selected, labels), pool_before=len(pool))
            if len(selected) < cfg.min_selected:
                state["loops"].append(row)
                state["stop_reason"] = "too_few_selected"
                atomic_write_json(out / "state.json", state)
                break
        earlier = self_labelled_so_far(out, state["loops"])
        train_pairs = data.split.seed + earlier + selected
        init_from = out / f"loop_{k - 1}" / "model" if (k > 0 and cfg.retrain_from == "previous") else None
        info = backend.train(train_pairs, loop_dir / "model", init_from)
        selection_acc = pairwise_accuracy(backend, loop_dir / "model", data.selection)
        acc = pairwise_accuracy(backend, loop_dir / "model", data.split.heldout)
        all_self = earlier + selected
        row.update(trained=True, train_pairs=len(train_pairs), self_labelled_total=len(all_self),
                   cumulative_agreement=_agreement(all_self, labels), selection_accuracy=selection_acc,
                   heldout_accuracy=acc, pool_after=len(remaining), train_info=info)
        state["loops"].append(row)
        state["pool_ids"] = remaining
        state["next_loop"] = k + 1
        _update_stopping(state, cfg, k, selection_acc)
        atomic_write_json(out / "state.json", state)  # the commit point of loop k
        print(f"[ser] loop {k}: selected {row.get('selected', '-')} agreement {row.get('agreement')} "
              f"selection accuracy {selection_acc:.4f} held-out accuracy {acc:.4f}", flush=True)
    return state


def _pairs_fingerprint(data: LoopData) -> str:
    """Which pairs the 100%-label RM trains on and is measured on: equal for two runs on one split, whatever
    their seed fraction (seed + pool is the same set)."""
    ids = {"train": sorted(p["id"] for p in data.split.seed + data.split.pool),
           "heldout": sorted(p["id"] for p in data.split.heldout), "selection": sorted(p["id"] for p in data.selection)}
    return hashlib.sha1(json.dumps(ids).encode()).hexdigest()[:16]


def full_label_baseline(cfg: SERConfig, backend: RewardBackend, out: Path) -> tuple[dict, Path]:
    """RM on seed + the whole pool with its human labels -> (result, model folder). Cached in baseline_full/; with
    ``full_label_from`` the RM of another run on the same pairs is reused (checked by the pairs' fingerprint)."""
    data = _read_data(out, cfg)
    fingerprint = _pairs_fingerprint(data)
    where = Path(cfg.full_label_from) if cfg.full_label_from else out / "baseline_full"
    done = where / "result.json"
    if done.exists():
        result = json.loads(done.read_text())
        if result.get("pairs_fingerprint") != fingerprint:
            raise UserError(f"{done}: that 100%-label RM was trained on other pairs than {out}'s (fingerprint "
                            f"{result.get('pairs_fingerprint')} vs {fingerprint}); drop ser.full_label_from or "
                            "use the same split seed, data sample and sizes")
        return result, where / "model"
    if cfg.full_label_from:
        raise UserError(f"ser.full_label_from: {done} does not exist (run that SER run first)")
    backend.train(data.split.seed + data.split.pool_as_labelled(), where / "model", None)
    result = {"heldout_accuracy": pairwise_accuracy(backend, where / "model", data.split.heldout),
              "selection_accuracy": pairwise_accuracy(backend, where / "model", data.selection),
              "train_pairs": len(data.split.seed) + len(data.split.pool), "pairs_fingerprint": fingerprint}
    atomic_write_json(done, result)
    return result, where / "model"


def backend_settings(cfg: SERConfig, out: Path) -> dict:
    settings = dict(cfg.rm)
    if cfg.rm_model and cfg.backend == "common_rm":
        settings["model_name_or_path"] = cfg.rm_model
    if cfg.backend == "frozen_encoder":
        settings.setdefault("cache_path", str(out / "embeddings.npz"))
    return settings


def run_ser(cfg: SERConfig, backend: RewardBackend | None = None) -> dict:
    """The whole stage: loop (resumable), the 100%-label baseline, the per-loop table and plot, metrics.json.

    ``reward_models`` in metrics.json names the seed-only, SER and 100%-label RM folders with the PPO reward fields
    that score with each (``ser.ppo`` reads them).
    """
    out = Path(cfg.output_dir)
    run = RunDir.start(out, cfg, seed=cfg.seed, overwrite=cfg.overwrite)
    settings = backend_settings(cfg, out)
    backend = backend or build_backend(cfg.backend, settings, cfg.rm_launcher)
    state = run_loop(cfg, backend, out)
    full, full_model = full_label_baseline(cfg, backend, out) if cfg.full_label_baseline else (None, None)
    trained = [r for r in state["loops"] if r["trained"]]
    best = next(r for r in trained if r["loop"] == state["best_loop"])
    models = {"seed": out / "loop_0" / "model", "ser": out / f"loop_{state['best_loop']}" / "model",
              **({"full": full_model} if full else {})}
    metrics = {
        "seed_only_accuracy": trained[0]["heldout_accuracy"],
        "ser_accuracy": best["heldout_accuracy"],
        "ser_last_accuracy": trained[-1]["heldout_accuracy"],
        "full_label_accuracy": full["heldout_accuracy"] if full else None,
        "ser_selection_accuracy": state["best_accuracy"],
        "best_loop": state["best_loop"],
        "loops_trained": len(trained) - 1,
        "stop_reason": state["stop_reason"],
        "self_labelled_total": trained[-1].get("self_labelled_total", 0),
        "final_model": str(models["ser"]),
        # an injected backend (tests) has no registered name and so no PPO reward
        "reward_models": {name: {"model_dir": str(path),
                                 "ppo_fields": ppo_reward_fields(cfg.backend, settings, str(path))
                                 if cfg.backend in REWARD_BACKENDS else None}
                          for name, path in models.items()},
        "pool_source": cfg.pool_source,
        "sizes": state["sizes"],
        **state.get("data_stats", {}),  # data_rows, data_skipped (HH sets; runs started before: absent)
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
