"""The fidelity run: its summary over splits (intervals, gap closed), its claims, and its CLI settings reaching the
loop (input format -> the texts embedded; patience / min_selected / retrain_from / sizes -> the SER config and RM)."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from common.config import ConfigError
from common.stats import read_claims
from ser import fidelity
from ser.encoder_head import FrozenEncoderHead, ppo_reward
from ser.fidelity import FidelityConfig, gap_closed_interval, make_claims, summary_rows, summary_table


def _results(runs: dict) -> dict:
    return {f"sst2/seed_{100 * float(f):g}pct/split_{s}": {"seed_only_accuracy": a, "ser_accuracy": b,
                                                           "full_label_accuracy": c, "best_loop": 1}
            for (f, s), (a, b, c) in runs.items()}


def test_summary_averages_split_seeds_and_measures_the_gap_closed():
    cfg = FidelityConfig(datasets=["sst2"], seed_fractions=[0.01, 0.15], seeds=[1, 2], resamples=2000)
    results = _results({("0.01", 1): (0.70, 0.76, 0.85), ("0.01", 2): (0.72, 0.74, 0.87),
                        ("0.15", 1): (0.86, 0.85, 0.85), ("0.15", 2): (0.84, 0.85, 0.85)})
    low, high = summary_rows(results, cfg)
    assert low["seed_only"][0] == pytest.approx(0.71) and low["ser"][0] == pytest.approx(0.75)
    assert low["seed_only"][1] == pytest.approx(0.0141421, rel=1e-4)  # sample sd of 0.70, 0.72
    assert low["gap_closed"] == pytest.approx(0.04 / 0.15)
    assert low["ser_gain_per_split"] == pytest.approx([0.06, 0.02])
    # two splits, differences +6 and +2 points: the bootstrap means lie in {2, 4, 6} points
    ci = low["ser_minus_seed_ci"]
    assert (ci["estimate"], ci["low"], ci["high"], ci["n"]) == pytest.approx((0.04, 0.02, 0.06, 2))
    assert low["ser_minus_full_ci"]["estimate"] == pytest.approx(-0.11)  # (−9 − 13) / 2
    assert high["gap_closed"] is None and high["gap_closed_ci"] is None  # nothing to close
    table = summary_table([low, high], 2)
    assert "| sst2 | 1 | 71.0 ± 1.4 | 75.0 ± 1.4 | 86.0 ± 1.4 | +4.0 [+2.0, +6.0] |" in table
    assert "n/a (no gap)" in table
    one = summary_rows({k: v for k, v in results.items() if k.endswith("_1")}, FidelityConfig(
        datasets=["sst2"], seed_fractions=[0.01, 0.15], seeds=[1]))
    assert "| sst2 | 1 | 70.0 | 76.0 | 85.0 | +6.0 |" in summary_table(one, 1)  # one split: no spread, no interval


def test_gap_closed_is_a_ratio_of_means_with_a_bootstrap_over_splits():
    ci = gap_closed_interval([0.70, 0.72, 0.74], [0.75, 0.75, 0.77], [0.85, 0.85, 0.89], resamples=2000)
    assert ci.estimate == pytest.approx(11 / 43)  # (2.27 − 2.16) / (2.59 − 2.16), sums over 3 splits
    assert ci.low <= ci.estimate <= ci.high and ci.n == 3
    same = gap_closed_interval([0.7, 0.7], [0.8, 0.8], [0.9, 0.9], resamples=100)
    assert (same.low, same.high) == pytest.approx((0.5, 0.5))
    assert gap_closed_interval([0.9, 0.9], [0.9, 0.9], [0.9, 0.9]) is None


def test_claims_carry_the_split_intervals_and_verdicts():
    cfg = FidelityConfig(datasets=["sst2"], seed_fractions=[0.05], seeds=[1, 2, 3, 4], resamples=2000)
    results = _results({("0.05", s): (0.70 + 0.01 * s, 0.75 + 0.01 * s, 0.90) for s in (1, 2, 3, 4)})
    claims = make_claims(summary_rows(results, cfg), cfg)
    beats, on_par = claims
    assert beats.verdict == "reproduced" and beats.ours.estimate == pytest.approx(0.05) and beats.unit == "splits"
    assert beats.ours_text() == "+5.0 [+5.0, +5.0] (n=4 splits)"  # every split gains exactly 5 points
    assert on_par.verdict == "refuted" and on_par.ours.high < 0 and on_par.paper_value == 0.0  # SER ~13 below 100 %
    assert "gap closed 29 %" in on_par.note and "5% labels" in on_par.claim
    assert "100%-label RM 90.0 % (− chance: +40.0 [+40.0, +40.0] points)" in beats.note  # can the RM carry it
    assert "NOT CARRIED" not in beats.note
    near_chance = _results({("0.05", s): (0.50, 0.51, 0.52 + 0.01 * s) for s in (1, 2, 3, 4)})
    assert all(c.note.startswith("NOT CARRIED") and c.setting.startswith("NOT CARRIED (100%-label RM +4.5 points")
               for c in make_claims(summary_rows(near_chance, cfg), cfg))


class RecordingEncoder:
    def __init__(self):
        self.texts = []

    def encode(self, texts, **_):
        self.texts.extend(texts)
        return np.array([[float(len(t)), 1.0] for t in texts], dtype=np.float32)


@pytest.mark.parametrize("fmt,expected", [("qa_frame", "Question: Write a review.\n\nAnswer: Great fun."),
                                          ("bare", "Great fun.")])
def test_input_format_decides_the_text_the_head_embeds(tmp_path, fmt, expected):
    head = FrozenEncoderHead({"input_format": fmt, "steps": 5})
    head._encoder = RecordingEncoder()
    head.train([{"prompt": "Write a review.", "chosen": "Great fun.", "rejected": "Dull."}], tmp_path / "m", None)
    assert head._encoder.texts[0] == expected
    assert json.loads((tmp_path / "m" / "head.json").read_text())["input_format"] == fmt
    # PPO scores a sample with the text the head was trained on
    from ser.encoder_head import _PPO_HEADS
    from ser.reward_backends import ppo_reward_fields, question_header

    kwargs = ppo_reward_fields("frozen_encoder", {"input_format": fmt}, str(tmp_path / "m"))["reward_function_kwargs"]
    assert kwargs["input_format"] == fmt
    ppo = FrozenEncoderHead({"input_format": fmt})
    ppo._encoder = RecordingEncoder()
    _PPO_HEADS[(kwargs["encoder"], kwargs["max_length"], kwargs["head_dir"], fmt)] = (ppo, np.ones(2))
    try:
        ppo_reward([question_header("Write a review.")], ["Great fun."], **kwargs)
    finally:
        _PPO_HEADS.clear()
    assert ppo._encoder.texts == [expected]


def test_an_unknown_input_format_or_loop_choice_is_refused():
    with pytest.raises(ConfigError, match="input_format"):
        FrozenEncoderHead({"input_format": "framed"})
    with pytest.raises(ConfigError, match="input_format"):
        FidelityConfig(input_format="framed")
    with pytest.raises(ConfigError, match="keep_loop"):
        FidelityConfig(keep_loop="best")


def test_cli_settings_reach_the_loop_and_the_run_writes_claims(tmp_path, minilm, monkeypatch):
    """A real run on the shipped SST-2 rows (2 splits x 40 training pairs): the SERConfig each loop runs with, the
    RM's warm start, the embedded texts (bare reviews), per-pair outcomes and claims.json."""
    root = tmp_path / "data" / "glue" / "sst2"
    shutil.copytree(Path(__file__).resolve().parents[2] / "common" / "tiny_data" / "glue" / "sst2", root)
    seen, inits = [], []
    real_run, real_train = fidelity.run_ser, FrozenEncoderHead.train
    monkeypatch.setattr(fidelity, "run_ser", lambda sub: seen.append(sub) or real_run(sub))
    monkeypatch.setattr(FrozenEncoderHead, "train",
                        lambda self, pairs, out, init: inits.append(init) or real_train(self, pairs, out, init))
    out = tmp_path / "fid"
    fidelity.main([f"output_dir={out}", f"data_root={tmp_path / 'data'}", "datasets=[sst2]", "seeds=[1, 2]",
                   "seed_fractions=[0.25]", "train_size=40", "heldout_size=10", "selection_size=10",
                   "input_format=bare", "patience=3", "min_selected=1", "max_loops=1", "retrain_from=previous",
                   "min_delta=0.01", "resamples=200"])
    assert [(s.patience, s.min_selected, s.retrain_from, s.min_delta, s.selection_size, s.heldout_size, s.limit,
             s.rm["input_format"]) for s in seen] == [(3, 1, "previous", 0.01, 10, 10, 60, "bare")] * 2
    state = json.loads((out / "sst2/seed_25pct/split_1/state.json").read_text())
    assert state["sizes"] == {"seed": 10, "pool": 30, "selection": 10, "heldout": 10}
    if any(r["loop"] == 1 and r["trained"] for r in state["loops"]):  # loop 1 starts from loop 0's head
        assert str(inits[1]).endswith("split_1/loop_0/model")
    assert inits[0] is None
    # bare: the cache holds the reviews themselves, not "Question: ... Answer: ..." texts
    heldout = [json.loads(line) for line in (out / "sst2/seed_25pct/split_1/data/heldout.jsonl").open()]
    with np.load(out / "sst2" / "embeddings.npz") as z:
        keys = set(z["keys"].tolist())
    assert hashlib.sha1(heldout[0]["chosen"].encode()).hexdigest() in keys
    outcomes = json.loads((out / "sst2/seed_25pct/split_1/heldout_outcomes.json").read_text())
    metrics = json.loads((out / "sst2/seed_25pct/split_1/metrics.json").read_text())
    assert len(outcomes["seed_only"]) == 10
    assert np.mean(outcomes["seed_only"]) == pytest.approx(metrics["seed_only_accuracy"])
    claims = read_claims(out / "claims.json")
    assert [c.ours.n for c in claims] == [2, 2] and all(c.paper == "ser" for c in claims)
    assert "input_format bare" in (out / "results.md").read_text()
    # a second call with the same settings reads the finished split runs back and only re-summarises
    (out / "claims.json").unlink()
    fidelity.main([f"output_dir={out}", f"data_root={tmp_path / 'data'}", "datasets=[sst2]", "seeds=[1, 2]",
                   "seed_fractions=[0.25]", "train_size=40", "heldout_size=10", "selection_size=10",
                   "input_format=bare", "patience=3", "min_selected=1", "max_loops=1", "retrain_from=previous",
                   "min_delta=0.01", "resamples=100"])
    assert len(seen) == 2 and len(read_claims(out / "claims.json")) == 2  # no split run redone
