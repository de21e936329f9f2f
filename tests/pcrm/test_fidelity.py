"""pcrm.fidelity claims: per-pair values averaged over seeds, paired against the baseline, from constructed scores."""

from __future__ import annotations

import pytest

from common.artifacts import write_jsonl
from common.config import UserError
from common.stats import read_claims
from pcrm.fidelity import claims


def _seed(root, seed, margins: dict[str, list[float]]):
    folder = root / "sst2" / f"seed{seed}" / "variants"
    for variant, ms in margins.items():
        write_jsonl(folder / variant / "rm" / "eval_scores.jsonl",
                    [{"index": i, "chosen_score": m, "rejected_score": 0.0} for i, m in enumerate(ms)])
    (folder / "metrics.json").write_text("{}\n")


def test_claims_average_seeds_per_pair_then_pair_against_the_baseline(tmp_path):
    # 4 held-out pairs. Baseline: margins ±4 (right on 3 of 4 in both seeds); fixed: small margins, right on all 4
    # in seed 0 and on 2 in seed 1 (a tie on the last counts ½).
    base = [4.0, 4.0, 4.0, -4.0]
    others = {v: [1.0, 1.0, 1.0, 1.0] for v in ("len_rat", "cos_sim", "random")}
    _seed(tmp_path, 0, {"baseline": base, "fixed": [1.0, 1.0, 1.0, 1.0], **others})
    _seed(tmp_path, 1, {"baseline": base, "fixed": [1.0, 1.0, -1.0, 0.0], **others})
    (tmp_path / "sst2" / "seed2").mkdir()  # an unfinished seed (no metrics.json) is left out
    rows = {c.metric: c for c in claims(str(tmp_path), ["sst2"], {})}
    assert rows["pairwise accuracy − 0.5"].ours.estimate == pytest.approx(0.25)
    # fixed per pair over seeds: 1, 1, 0.5, 0.75 -> mean 0.8125; baseline 0.75
    acc = rows["accuracy(fixed) − accuracy(baseline)"]
    assert acc.ours.estimate == pytest.approx(0.8125 - 0.75) and acc.ours.n == 4
    # |margin| 1 (or 0 for the tie) against 4 on every pair: bounded, and the interval excludes 0
    width = rows["mean abs margin(fixed) − mean abs margin(baseline)"]
    assert width.ours.estimate == pytest.approx((1 + 1 + 1 + 0.5) / 4 - 4)
    assert width.verdict == "reproduced" and width.direction == -1
    assert (tmp_path / "claims.json").is_file() and len(read_claims(tmp_path / "claims.json")) == 9
    assert (tmp_path / "per_pair.jsonl").read_text().count("\n") == 4


def test_seeds_scored_on_other_pairs_are_refused(tmp_path):
    _seed(tmp_path, 0, {v: [1.0, 1.0] for v in ("baseline", "len_rat", "cos_sim", "random", "fixed")})
    _seed(tmp_path, 1, {v: [1.0, 1.0, 1.0] for v in ("baseline", "len_rat", "cos_sim", "random", "fixed")})
    with pytest.raises(UserError, match="other held-out pairs"):
        claims(str(tmp_path), ["sst2"], {})


def test_accuracy_rows_of_a_set_the_baseline_cannot_rank_are_marked_not_carried(tmp_path):
    _seed(tmp_path, 0, {"baseline": [1.0, -1.0, 1.0, -1.0], **{v: [1.0, 1.0, 1.0, -1.0] for v in
                                                                ("len_rat", "cos_sim", "random", "fixed")}})
    rows = {c.metric: c for c in claims(str(tmp_path), ["sst2"], {})}
    assert rows["pairwise accuracy − 0.5"].verdict == "inconclusive"
    assert rows["accuracy(fixed) − accuracy(baseline)"].setting.startswith("NOT CARRIED (baseline RM +0.0")
    assert not rows["mean abs margin(fixed) − mean abs margin(baseline)"].setting.startswith("NOT CARRIED")
