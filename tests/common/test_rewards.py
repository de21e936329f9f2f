"""Reward sources: function rewards, the combiner registry, and a real (tiny) reward model scorer."""

from __future__ import annotations

import pytest
import torch

from common.config import ConfigError, UserError
from common.rewards import (
    REWARD_COMBINERS,
    CombinedReward,
    FunctionReward,
    RewardModelScorer,
    build_reward_source,
    get_reward_combiner,
    register_reward_combiner,
)


def _length(prompts, responses):
    return [float(len(r)) for r in responses]


def _label_hits(prompts, responses, records=None):
    return [float(rec["label"] in r) for rec, r in zip(records, responses)]


@pytest.fixture
def capped_combiner():
    name = "test_capped_plus"

    @register_reward_combiner(name)
    def capped(scores, tau):  # RLLR-mixed shape: min(r_label, τ) + r_rat
        return torch.minimum(scores["label"], torch.tensor(tau)) + scores["rat"]

    yield name
    REWARD_COMBINERS.pop(name)


def test_combiner_applies_its_formula_to_two_sources(capped_combiner):
    source = CombinedReward({"label": FunctionReward(_length), "rat": FunctionReward(lambda p, r: [0.5, -1.0])},
                            combine=capped_combiner, combine_kwargs={"tau": 3.0})
    out = source.score(["q1", "q2"], ["ab", "abcdef"])
    assert torch.allclose(out, torch.tensor([min(2.0, 3.0) + 0.5, min(6.0, 3.0) - 1.0]))
    assert set(source.last_components) == {"label", "rat"}


def test_builtin_sum_and_mean():
    scores = {"a": torch.tensor([1.0, 2.0]), "b": torch.tensor([3.0, -2.0])}
    assert torch.equal(get_reward_combiner("sum")(scores, weights={"b": 0.5}), torch.tensor([2.5, 1.0]))
    assert torch.equal(get_reward_combiner("mean")(scores), torch.tensor([2.0, 0.0]))


def test_unknown_combiner_names_the_registry():
    with pytest.raises(ConfigError, match="not a registered reward combiner; known: .*'mean'.*'sum'"):
        get_reward_combiner("nope")


def test_duplicate_combiner_is_refused():
    with pytest.raises(KeyError, match="already registered"):
        register_reward_combiner("sum")(lambda s: s)


def test_combiner_by_import_path():
    assert get_reward_combiner("common.rewards:combine_mean") is REWARD_COMBINERS["mean"]
    with pytest.raises(ConfigError, match="cannot import module"):
        get_reward_combiner("no_such_pkg.mod:fn")


def test_function_reward_gets_records_when_it_asks():
    source = FunctionReward(_label_hits)
    out = source.score(["q", "q"], ["it is blue", "red"], records=[{"label": "blue"}, {"label": "blue"}])
    assert out.tolist() == [1.0, 0.0]


def test_function_reward_with_wrong_count_is_a_user_error():
    with pytest.raises(UserError, match="returned 1 scores for 2 responses"):
        FunctionReward(lambda p, r: [1.0]).score(["a", "b"], ["x", "y"])


def test_reward_function_spec_errors_are_clear():
    with pytest.raises(ConfigError, match="has no callable 'nope'"):
        build_reward_source({"reward_function": "common.rewards:nope"})
    with pytest.raises(ConfigError, match="no reward source"):
        build_reward_source({})
    with pytest.raises(ConfigError, match=r"reward_models\[0\]\.pth: unknown key"):
        build_reward_source({"reward_models": [{"path": "x", "pth": "y"}]})


def test_reward_model_scorer_matches_the_rm_forward(tiny_llama):
    from common.train.rm import format_rm_input

    scorer = RewardModelScorer(tiny_llama, template="tokenizer", batch_size=2)
    prompts, responses = ["Name a color.", "Hi", "Name a fruit."], ["Blue.", "Hello there, friend!", "Apple"]
    scores = scorer.score(prompts, responses)
    assert scores.shape == (3,) and torch.isfinite(scores).all()
    text = format_rm_input(prompts[1], responses[1], "tokenizer", scorer.tokenizer)
    ids = scorer.tokenizer(text, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        alone = scorer.model(**ids).logits[0, 0]
    assert torch.isclose(scores[1], alone, atol=1e-4)  # batching and padding do not change a score
