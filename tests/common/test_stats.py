"""common.stats: bootstrap intervals and verdicts on constructed cases with known answers."""

import math

import numpy as np
import pytest

from common.config import UserError
from common.stats import (
    Claim,
    Interval,
    bootstrap_mean,
    needed_n,
    paired_bootstrap,
    read_claims,
    seeds_paired_bootstrap,
    unpaired_bootstrap,
    verdict,
    write_claims,
)


def test_bootstrap_interval_of_a_proportion_matches_the_normal_approximation():
    # 600 successes of 1,000: the mean is 0.6, the 95 % half-width about 1.96·sqrt(0.6·0.4/1000) = 0.0304
    values = [1] * 600 + [0] * 400
    ci = bootstrap_mean(values)
    assert ci.estimate == pytest.approx(0.6)
    assert ci.half_width == pytest.approx(1.96 * math.sqrt(0.24 / 1000), abs=0.003)
    assert ci.low < 0.6 < ci.high and ci.n == 1000


def test_reference_shifts_the_estimate_chance_accuracy_is_no_effect():
    ci = bootstrap_mean([1, 0] * 200, reference=0.5)
    assert ci.estimate == pytest.approx(0.0)
    assert verdict(ci, +1) == "inconclusive"


def test_known_effect_is_reproduced_and_its_opposite_refuted():
    rng = np.random.default_rng(1)
    baseline = rng.random(800) < 0.50
    treated = baseline | (rng.random(800) < 0.20)  # a real +10-point effect on shared items
    ci = paired_bootstrap(treated.astype(float), baseline.astype(float))
    assert ci.low > 0
    assert verdict(ci, +1) == "reproduced"
    assert verdict(ci, -1) == "refuted"


def test_no_effect_is_inconclusive_and_needed_n_grows_as_the_effect_shrinks():
    rng = np.random.default_rng(2)
    a = (rng.random(300) < 0.5).astype(float)
    b = (rng.random(300) < 0.5).astype(float)
    ci = paired_bootstrap(a, b)
    assert verdict(ci, +1) == "inconclusive"
    # a 1-point estimate with a 4-point half-width needs 16x the units
    assert needed_n(Interval(0.01, -0.03, 0.05, n=300)) == 300 * 16
    assert needed_n(Interval(0.0, -0.03, 0.03, n=300)) is None


def test_pairing_removes_shared_item_variance():
    # item difficulty dominates: each system gets items right by difficulty, treated one item more per 10
    difficulty = np.repeat([0.0, 1.0], 200)
    treated = difficulty.copy()
    treated[::10] = 1.0
    paired = paired_bootstrap(treated, difficulty)
    unpaired = unpaired_bootstrap(treated, difficulty)
    assert paired.estimate == pytest.approx(unpaired.estimate)
    assert paired.half_width < unpaired.half_width / 2
    assert verdict(paired, +1) == "reproduced"


def test_seeds_that_agree_reproduce_and_seeds_that_disagree_are_inconclusive():
    rng = np.random.default_rng(3)
    baseline = (rng.random(1000) < 0.5).astype(float)

    def seed_run(effect: float) -> np.ndarray:  # flip baseline-wrong items right (effect > 0) or right items wrong
        flip = rng.random(1000) < abs(effect) * 2
        return np.where(flip, float(effect > 0), baseline)

    agree = [seed_run(+0.10) for _ in range(3)]
    ci = seeds_paired_bootstrap(agree, baseline)
    assert ci.estimate == pytest.approx(np.mean([paired_bootstrap(t, baseline).estimate for t in agree]))
    assert verdict(ci, +1) == "reproduced" and ci.n == 1000
    # +10, -10 and 0 points: every seed alone is conclusive (two of them opposite), the seeds together are not
    disagree = [seed_run(+0.10), seed_run(-0.10), seed_run(0.0)]
    assert [verdict(paired_bootstrap(t, baseline), +1) for t in disagree[:2]] == ["reproduced", "refuted"]
    pooled = seeds_paired_bootstrap(disagree, baseline)
    assert verdict(pooled, +1) == "inconclusive"
    assert pooled.half_width > 3 * paired_bootstrap(disagree[0], baseline).half_width
    # one seed is the plain paired bootstrap
    assert seeds_paired_bootstrap(agree[:1], baseline) == paired_bootstrap(agree[0], baseline)
    with pytest.raises(UserError, match="every seed must be scored on the baseline's units"):
        seeds_paired_bootstrap([agree[0], agree[1][:500]], baseline)
    with pytest.raises(UserError, match="no seeds"):
        seeds_paired_bootstrap([], baseline)


def test_constant_differences_give_a_zero_width_interval():
    ci = paired_bootstrap([1.0, 1.0, 1.0], [0.0, 0.0, 0.0])
    assert (ci.estimate, ci.low, ci.high) == (1.0, 1.0, 1.0)


def test_the_interval_is_reproducible_for_a_seed():
    values = np.random.default_rng(3).normal(size=500)
    assert bootstrap_mean(values, seed=7) == bootstrap_mean(values, seed=7)


@pytest.mark.parametrize("treated, baseline, match", [
    ([], [], "no units"),
    ([1, 0], [1], "paired comparison needs"),
    ([1, float("nan")], [1, 0], "non-finite"),
])
def test_bad_inputs_are_one_line_errors(treated, baseline, match):
    with pytest.raises(UserError, match=match):
        paired_bootstrap(treated, baseline)


def test_verdict_rejects_a_direction_that_is_not_a_sign():
    with pytest.raises(UserError, match="direction"):
        verdict(Interval(0.1, 0.05, 0.15, 10), 0)


def test_claims_round_trip_through_the_file(tmp_path):
    claim = Claim(paper="pcrm", claim="len_rat beats baseline", metric="rm accuracy", direction=+1,
                  ours=Interval(0.02, -0.01, 0.05, 400), unit="pairs", paper_value=0.012)
    assert claim.verdict == "inconclusive" and claim.needed_n == math.ceil(400 * (0.03 / 0.02) ** 2)
    path = write_claims(tmp_path, [claim])
    (back,) = read_claims(path)
    assert back.to_dict() == claim.to_dict()
    path.write_text('[{"paper": "pcrm"}]')
    with pytest.raises(UserError, match="malformed claim"):
        read_claims(path)
