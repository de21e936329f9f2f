"""PCRM's prior bound δ*: each variant against hand-computed values, and δ* staying with its own pair."""

from __future__ import annotations

import math
import random

import pytest
import torch

from common.config import ConfigError
from pcrm.prior import PriorConfig, angular_similarity, annotate_prior, delta_from_similarity, length_ratio

PAIRS = [
    {"prompt": "Q: what is 2+2?\nA:", "chosen": " It is four.", "rejected": " Four, obviously, as everyone knows.",
     "source_id": "a"},
    {"prompt": "Write a movie review.", "chosen": "A warm, funny and moving film.", "rejected": "Dull.",
     "source_id": "b"},
    {"prompt": "Say hi.", "chosen": "Hello there!", "rejected": "Hello there!", "source_id": "c"},
    {"prompt": "Name a colour.", "chosen": "Blue is my favourite colour of all.", "rejected": "Red.",
     "source_id": "d"},
]


def test_delta_from_similarity_follows_the_upstream_division():
    # 20/(1+0.001) − 15 and 20/(0.5+0.001) − 15: the bounds quoted in the paper notes (≈5 at s=1, ≈25 at s=0.5)
    got = delta_from_similarity(torch.tensor([1.0, 0.5]), 20.0, 0.001, -15.0)
    assert torch.allclose(got, torch.tensor([4.98001998, 24.92015968], dtype=torch.float64))


def test_length_ratio_counts_tokens_after_the_shared_prefix():
    assert length_ratio([1, 2, 3, 4], [1, 2, 5]) == 0.5  # after [1, 2]: 2 tokens vs 1
    assert length_ratio([7, 8, 9], [1, 2, 3, 4, 5, 6]) == 0.5  # no shared prefix: 3 vs 6
    assert length_ratio([1, 2], [1, 2, 3]) == 0.0  # one side is used up: s = 0, the loosest bound
    assert length_ratio([1, 2, 3], [1, 2, 3]) == 1.0  # both used up: s = 1 by definition


def test_angular_similarity_clamps_negative_cosines_to_orthogonal():
    e = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    other = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.5, math.sqrt(3) / 2]])
    s = angular_similarity(e, other)
    # cos 1 -> 1; cos 0 -> (π − π/2)/π = 0.5; cos −1 clamps to 0 -> 0.5; cos 0.5 -> (π − π/3)/π = 2/3
    assert torch.allclose(s, torch.tensor([1.0, 0.5, 0.5, 2 / 3], dtype=torch.float64))


def test_len_rat_annotates_each_pair_with_its_similarity_and_bound(tiny_llama):
    cfg = PriorConfig(kind="len_rat", task="tldr", tokenizer=tiny_llama)
    out = annotate_prior(PAIRS, cfg)
    from common.models import load_tokenizer

    tok = load_tokenizer(tiny_llama)
    n = [(len(tok(p["chosen"], add_special_tokens=False)["input_ids"]),
          len(tok(p["rejected"], add_special_tokens=False)["input_ids"])) for p in PAIRS]
    assert out[1]["similarity"] == pytest.approx(min(n[1]) / max(n[1]))
    assert out[2]["similarity"] == 1.0  # identical responses
    for rec in out:  # tldr preset (10, 0.001, −5)
        assert rec["delta_star"] == pytest.approx(10.0 / (rec["similarity"] + 0.001) - 5.0)
    assert [r["source_id"] for r in out] == ["a", "b", "c", "d"] and "delta_star" not in PAIRS[0]


def test_random_bounds_are_seeded_uniform_draws_and_fixed_is_constant():
    a = annotate_prior(PAIRS, PriorConfig(kind="random", seed=1))
    b = annotate_prior(PAIRS, PriorConfig(kind="random", seed=1))
    c = annotate_prior(PAIRS, PriorConfig(kind="random", seed=2))
    deltas = [r["delta_star"] for r in a]
    assert deltas == [r["delta_star"] for r in b] and deltas != [r["delta_star"] for r in c]
    assert all(4.0 <= d <= 5.0 for d in deltas) and len(set(deltas)) == len(deltas)  # dialogue U(4, 5)
    assert {r["delta_star"] for r in annotate_prior(PAIRS, PriorConfig(kind="fixed", task="tldr"))} == {5.0}
    assert all("delta_star" not in r for r in annotate_prior(PAIRS, PriorConfig(kind="baseline")))


def test_presets_fill_only_unset_numbers_and_bad_kinds_fail():
    cfg = PriorConfig(kind="cos_sim", task="tldr", beta3=-20.0)
    assert (cfg.beta1, cfg.beta2, cfg.beta3) == (30.0, 0.001, -20.0)
    with pytest.raises(ConfigError, match="prior.kind"):
        PriorConfig(kind="cosine")


def test_cos_sim_stays_with_its_pair_when_the_data_is_shuffled(minilm):
    cfg = PriorConfig(kind="cos_sim", encoder=minilm, batch_size=3, max_length=64)
    ordered = {r["source_id"]: r for r in annotate_prior(PAIRS, cfg)}
    shuffled = PAIRS[:]
    random.Random(0).shuffle(shuffled)
    for rec in annotate_prior(shuffled, PriorConfig(kind="cos_sim", encoder=minilm, batch_size=2, max_length=64)):
        assert rec["similarity"] == pytest.approx(ordered[rec["source_id"]]["similarity"], abs=1e-5)
    assert ordered["c"]["similarity"] == pytest.approx(1.0)  # identical responses
    sims = [r["similarity"] for r in ordered.values()]
    assert all(0.5 <= s <= 1.0 for s in sims) and len({round(s, 4) for s in sims}) == 4
    assert ordered["a"]["delta_star"] == pytest.approx(20 / (ordered["a"]["similarity"] + 0.001) - 15)
