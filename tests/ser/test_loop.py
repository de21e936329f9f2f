"""The SER loop's logic with a fake, instant reward backend: accumulation, stopping rules, resume after a kill."""

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from common.artifacts import read_jsonl, write_jsonl
from common.config import UserError
from ser.loop import SERConfig, run_ser


class Killed(Exception):
    pass


class FakeBackend:
    """RM_k is sure (r = ±3) about pool pairs with index i ≡ k (mod groups), and knows nothing (r = 0) about the
    rest; pairs listed in ``flip`` get the wrong order. Accuracy of RM_k is ``sel_acc[k]`` exactly on the selection
    pairs and ``acc[k]`` on the held-out pairs (``sel_acc`` defaults to ``acc``)."""

    def __init__(self, acc, groups=4, flip=(), kill_on_train=None, sel_acc=None):
        self.acc, self.groups, self.flip, self.kill_on_train = acc, groups, set(flip), kill_on_train
        self.sel_acc = acc if sel_acc is None else sel_acc
        self.train_calls: list[tuple[str, list[str]]] = []

    def train(self, pairs, out_dir, init_from):
        if self.kill_on_train == len(self.train_calls):
            raise Killed(out_dir)
        ids = [p["id"] for p in pairs]
        self.train_calls.append((Path(out_dir).parent.name, ids))
        Path(out_dir).mkdir(parents=True)
        return {"pairs": len(ids)}

    def score(self, model_dir, prompts, responses):
        out, name = Path(model_dir).parent.parent, Path(model_dir).parent.name
        k = int(name.split("_")[1]) if name.startswith("loop_") else len(self.acc) - 1
        labelled = {}
        for name, accs in (("heldout", self.acc), ("selection", self.sel_acc)):
            rows = read_jsonl(out / "data" / f"{name}.jsonl")
            labelled.update({r["prompt"]: j < round(accs[k] * len(rows)) for j, r in enumerate(rows)})
        scores = []
        for q, a in zip(prompts, responses):
            i, good = int(q[1:]), a.startswith("good")
            if q in labelled:
                scores.append(1.0 if good == labelled[q] else 0.0)
            elif i % self.groups == k % self.groups:
                scores.append((3.0 if good else -3.0) * (-1 if i in self.flip else 1))
            else:
                scores.append(0.0)
        return np.array(scores)


@pytest.fixture
def pairs_file(tmp_path):
    path = tmp_path / "pairs.jsonl"
    write_jsonl(path, [{"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(140)])
    return str(path)


def _cfg(tmp_path, pairs_file, name="run", **kw):
    base = {"output_dir": str(tmp_path / name), "dataset": "jsonl", "data_path": pairs_file, "seed_fraction": 0.1,
                "heldout_size": 40, "selection_size": 20, "max_loops": 3, "patience": 1, "min_selected": 2, "backend": "fake"}
    return SERConfig(**{**base, **kw})


def test_self_labelled_pairs_accumulate_across_loops_without_duplicates(tmp_path, pairs_file):
    fake = FakeBackend(acc=[0.5, 0.6, 0.7, 0.8, 0.9], flip={4, 8})
    metrics = run_ser(_cfg(tmp_path, pairs_file), fake)
    loops = [ids for name, ids in fake.train_calls if name.startswith("loop_")]
    assert len(loops) == 4
    for before, after in itertools.pairwise(loops):
        assert len(after) == len(set(after)) and set(before) < set(after)
    out = Path(metrics["final_model"]).parent.parent
    selected = [[r["id"] for r in read_jsonl(out / f"loop_{k}" / "selected.jsonl")] for k in (1, 2, 3)]
    assert all(selected) and len(set().union(*map(set, selected))) == sum(map(len, selected))
    assert len(loops[3]) == len(loops[0]) + sum(map(len, selected))
    # loop 1 labels the group i ≡ 0 (mod 4) with RM_0; pairs 4 and 8 come out reversed (if they are in the pool)
    labels = json.loads((out / "data" / "pool_labels.json").read_text())
    rows = {r["id"]: r for r in read_jsonl(out / "loop_1" / "selected.jsonl")}
    agree = np.mean([r["self_label"] == labels[i] for i, r in rows.items()])
    assert metrics["loops"][1]["agreement"] == pytest.approx(agree) and agree < 1.0
    assert [r["heldout_accuracy"] for r in metrics["loops"]] == pytest.approx([0.5, 0.6, 0.7, 0.8])
    assert metrics["stop_reason"] == "max_loops" and metrics["full_label_accuracy"] == pytest.approx(0.9)


def test_plateau_stops_the_loop_and_keeps_the_best_rm(tmp_path, pairs_file):
    metrics = run_ser(_cfg(tmp_path, pairs_file, max_loops=5), FakeBackend(acc=[0.6, 0.7, 0.65, 0.9, 0.9, 0.9]))
    assert metrics["stop_reason"] == "plateau" and metrics["loops_trained"] == 2
    assert metrics["best_loop"] == 1 and metrics["ser_accuracy"] == pytest.approx(0.7)
    assert metrics["final_model"].endswith("loop_1/model")


def test_the_selection_pairs_pick_the_loop_and_the_held_out_pairs_only_report_it(tmp_path, pairs_file):
    # held-out accuracy peaks at loop 1, but the selection pairs say loop 2: loop 2 is kept and reported as is
    fake = FakeBackend(acc=[0.5, 0.9, 0.6, 0.55, 0.5], sel_acc=[0.5, 0.6, 0.7, 0.65, 0.6])
    metrics = run_ser(_cfg(tmp_path, pairs_file, max_loops=4), fake)
    assert metrics["best_loop"] == 2 and metrics["stop_reason"] == "plateau"
    assert metrics["ser_accuracy"] == pytest.approx(0.6) and metrics["ser_selection_accuracy"] == pytest.approx(0.7)
    assert metrics["final_model"].endswith("loop_2/model")
    assert [r["heldout_accuracy"] for r in metrics["loops"]] == pytest.approx([0.5, 0.9, 0.6, 0.55])
    out = tmp_path / "run"
    held = {r["prompt"] for r in read_jsonl(out / "data" / "heldout.jsonl")}
    sel = {r["prompt"] for r in read_jsonl(out / "data" / "selection.jsonl")}
    trained = {i for _, ids in fake.train_calls for i in ids}
    assert len(held) == 40 and len(sel) == 20 and not held & sel
    assert not trained & {r["id"] for name in ("heldout", "selection") for r in read_jsonl(out / "data" / f"{name}.jsonl")}
    assert set(metrics["reward_models"]) == {"seed", "ser", "full"}
    assert metrics["reward_models"]["ser"]["model_dir"] == metrics["final_model"]
    assert "| 2 (kept) |" in (out / "ser_table.md").read_text()


def test_patience_two_tolerates_one_flat_loop(tmp_path, pairs_file):
    metrics = run_ser(_cfg(tmp_path, pairs_file, max_loops=6, patience=2),
                      FakeBackend(acc=[0.6, 0.7, 0.7, 0.8, 0.8, 0.8, 0.8, 0.8], groups=8))
    assert metrics["stop_reason"] == "plateau" and metrics["best_loop"] == 3 and metrics["loops_trained"] == 5


def test_too_few_selected_stops_before_training(tmp_path, pairs_file):
    fake = FakeBackend(acc=[0.6, 0.7, 0.8, 0.9], groups=50)  # RM_0 is sure about i ≡ 0 (mod 50): at most 3 pairs
    metrics = run_ser(_cfg(tmp_path, pairs_file, min_selected=10), fake)
    assert metrics["stop_reason"] == "too_few_selected" and metrics["loops_trained"] == 0
    assert [name for name, _ in fake.train_calls] == ["loop_0", "baseline_full"]
    assert metrics["loops"][1]["trained"] is False


def test_an_empty_pool_stops_the_loop(tmp_path, pairs_file):
    metrics = run_ser(_cfg(tmp_path, pairs_file, max_loops=9), FakeBackend(acc=[0.1 * k for k in range(10)], groups=2))
    assert metrics["stop_reason"] == "pool_exhausted" and metrics["loops"][-1]["pool_after"] == 0


def test_max_loops_bounds_the_loop(tmp_path, pairs_file):
    fake = FakeBackend(acc=[0.5, 0.6, 0.7, 0.8, 0.9])
    metrics = run_ser(_cfg(tmp_path, pairs_file, max_loops=2, full_label_baseline=False), fake)
    assert metrics["stop_reason"] == "max_loops" and [n for n, _ in fake.train_calls] == ["loop_0", "loop_1", "loop_2"]


def test_a_run_killed_mid_loop_resumes_at_that_loop(tmp_path, pairs_file):
    acc = [0.5, 0.6, 0.7, 0.8, 0.9]
    clean = run_ser(_cfg(tmp_path, pairs_file, name="clean"), FakeBackend(acc, flip={4}))
    with pytest.raises(Killed):
        run_ser(_cfg(tmp_path, pairs_file, name="killed"), FakeBackend(acc, flip={4}, kill_on_train=2))
    state = json.loads((tmp_path / "killed" / "state.json").read_text())
    assert state["next_loop"] == 2 and (tmp_path / "killed" / "loop_2" / "selected.jsonl").exists()
    again = FakeBackend(acc, flip={4})
    resumed = run_ser(_cfg(tmp_path, pairs_file, name="killed"), again)
    assert [name for name, _ in again.train_calls] == ["loop_2", "loop_3", "baseline_full"]
    strip = ("train_info",)
    assert [{k: v for k, v in r.items() if k not in strip} for r in resumed["loops"]] == \
        [{k: v for k, v in r.items() if k not in strip} for r in clean["loops"]]


def test_resuming_with_other_settings_is_refused(tmp_path, pairs_file):
    with pytest.raises(Killed):
        run_ser(_cfg(tmp_path, pairs_file), FakeBackend([0.5, 0.6], kill_on_train=1))
    with pytest.raises(UserError, match="other settings"):
        run_ser(_cfg(tmp_path, pairs_file, margin=0.2), FakeBackend([0.5, 0.6]))


def test_a_finished_run_is_not_overwritten_silently(tmp_path, pairs_file):
    run_ser(_cfg(tmp_path, pairs_file, max_loops=1), FakeBackend([0.5, 0.6, 0.7]))
    with pytest.raises(UserError, match="already holds"):
        run_ser(_cfg(tmp_path, pairs_file, max_loops=1), FakeBackend([0.5, 0.6, 0.7]))


def test_a_run_on_the_same_pairs_reuses_the_100_percent_label_rm_and_another_split_is_refused(tmp_path, pairs_file):
    first = run_ser(_cfg(tmp_path, pairs_file, name="a", max_loops=1), FakeBackend([0.5, 0.6, 0.9]))
    shared = str(tmp_path / "a" / "baseline_full")
    fake = FakeBackend([0.5, 0.6, 0.9])
    second = run_ser(_cfg(tmp_path, pairs_file, name="b", max_loops=1, seed_fraction=0.3, full_label_from=shared),
                     fake)
    assert "baseline_full" not in [name for name, _ in fake.train_calls]
    assert second["full_label_accuracy"] == first["full_label_accuracy"]
    assert second["reward_models"]["full"]["model_dir"] == str(tmp_path / "a" / "baseline_full" / "model")
    with pytest.raises(UserError, match="other pairs"):  # another split seed: other held-out pairs
        run_ser(_cfg(tmp_path, pairs_file, name="c", max_loops=1, seed=7, full_label_from=shared),
                FakeBackend([0.5, 0.6, 0.9]))
