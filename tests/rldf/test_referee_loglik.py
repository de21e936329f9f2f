"""The loglik referee: argmax over the finite answer set maps to the right scores, ranks follow the documented tie
rule, a scripted scorer drives the whole debate to the expected pair, and the real tiny model always yields a valid
verdict."""

import math
from pathlib import Path

import pytest
from scripted_debate import ScriptedGenerator

from common.artifacts import read_jsonl
from common.config import ConfigError
from rldf.bias_types import get_bias_type
from rldf.debate import DebateConfig, build_dataset
from rldf.referee_loglik import (
    SCORE_OPTIONS,
    ModelOptionScorer,
    expected_score,
    loglik_labels,
    loglik_verdicts,
    verdict_from_logprobs,
)

AGE = get_bias_type("age")
KEYS = AGE.keys


def peaked(score: int, second: int | None = None, gap: float = 1.0) -> list[float]:
    """Log-likelihoods over 0..10 with the maximum at ``score`` and (optionally) a runner-up at ``second``."""
    lp = [-20.0] * 11
    lp[score] = -1.0
    if second is not None:
        lp[second] = -1.0 - gap
    return lp


def test_score_is_the_argmax_option_and_ranks_follow_scores():
    v = verdict_from_logprobs({"60-year-old": peaked(7), "40-year-old": peaked(2), "20-year-old": peaked(10)}, KEYS)
    assert v.scores == {"60-year-old": 7, "40-year-old": 2, "20-year-old": 10}
    assert v.ranks == {"20-year-old": 1, "60-year-old": 2, "40-year-old": 3}


def test_equal_scores_are_ranked_by_expected_score_then_role_order():
    # both score 5; the 40-year-old's runner-up is 9 (expected score higher) -> more biased than the 60-year-old's 1
    logps = {"60-year-old": peaked(5, 1, gap=0.5), "40-year-old": peaked(5, 9, gap=0.5), "20-year-old": peaked(0)}
    v = verdict_from_logprobs(logps, KEYS)
    assert expected_score(logps["40-year-old"]) > 5 > expected_score(logps["60-year-old"])
    assert (v.ranks["40-year-old"], v.ranks["60-year-old"], v.ranks["20-year-old"]) == (1, 2, 3)
    same = verdict_from_logprobs({k: peaked(3) for k in KEYS}, KEYS)
    assert [same.ranks[k] for k in KEYS] == [1, 2, 3]
    assert expected_score([math.log(0.5), math.log(0.5)] + [-math.inf] * 9) == pytest.approx(0.5)


class TableScorer:
    """Scripted OptionScorer: the log-likelihoods come from a rule on the asked conversation."""

    def __init__(self, rule):
        self.rule, self.calls = rule, []

    def __call__(self, conversations, options):
        self.calls.append(len(conversations))
        return [self.rule(conv[-1]["content"], opts) for conv, opts in zip(conversations, options)]


def test_verdicts_are_batched_and_map_each_debater_to_its_own_options():
    wanted = {"60-year-old": 8, "40-year-old": 1, "20-year-old": 4}

    def rule(question, opts):
        assert opts == SCORE_OPTIONS
        key = next(k for k in KEYS if f"argument of the {k} rely" in question)
        return peaked(wanted[key])

    scorer = TableScorer(rule)
    out = loglik_verdicts(scorer, AGE, [("t1", [(k, "x") for k in KEYS], ""), ("t2", [(k, "y") for k in KEYS], "")],
                          "You are a referee.")
    assert scorer.calls == [6]  # every debater of every topic in one call
    for verdict, logps in out:
        assert verdict.scores == wanted and verdict.most_biased() == "60-year-old"
        assert logps["40-year-old"] == peaked(1)


def test_label_takes_the_argmax_and_never_the_same_utterance_twice():
    def rule(question, opts):
        lp = [-5.0] * len(opts)
        lp[opts.index("3")] = -1.0  # both questions prefer utterance 3
        if "least" in question:
            lp[opts.index("5")] = -2.0
        return lp

    numbered = [(i, KEYS[(i - 1) % 3], f"u{i}") for i in range(1, 7)]
    [(most, least, logps)] = loglik_labels(TableScorer(rule), AGE, [("t", numbered)], "You are a referee.")
    assert (most, least) == (3, 5) and len(logps["most_biased"]) == 6


@pytest.mark.parametrize("mode", ["self", "teacher"])
def test_scripted_loglik_referee_gives_the_expected_pair_and_records_its_mode(tmp_path, mode):
    scores = {"60-year-old": [8, 6, 4], "40-year-old": [3, 2, 1], "20-year-old": [5, 3, 0]}

    def rule(question, opts):
        if "utterance number" in question:  # teacher label: 2 = most, 6 = least
            lp = [-9.0] * len(opts)
            lp[opts.index("2" if "the most" in question else "6")] = 0.0
            return lp
        key = next(k for k in KEYS if f"argument of the {k} rely" in question)
        rnd = int(question.split("round ")[1][0]) if ", round " in question else 0
        return peaked(scores[key][rnd])

    cfg = DebateConfig(output_dir=str(tmp_path / mode), mode=mode, model="scripted", n_topics=2, eval_fraction=0.0,
                       referee_mode="loglik")
    metrics = build_dataset(cfg, generator=ScriptedGenerator(cfg.generation()), scorer=TableScorer(rule))
    out = Path(cfg.output_dir)
    pairs = read_jsonl(out / "pairs" / "train.jsonl")
    topic = "Should the retirement age be raised?"
    pair = next(p for p in pairs if p["topic"] == topic)
    if mode == "self":
        expected = (f"60-year-old on {topic}, round 0", f"20-year-old on {topic}, round 2")
        assert (pair["rejected"], pair["chosen"]) == expected
        assert (pair["rejected_score"], pair["chosen_score"]) == (8, 0)
    else:
        expected = (f"40-year-old on {topic}, round 0", f"20-year-old on {topic}, round 1")
        assert (pair["rejected"], pair["chosen"]) == expected
    log = read_jsonl(out / "transcripts.jsonl")
    assert {t["referee_mode"] for t in log} == {"loglik"}
    assert log[0]["rounds"][0]["referee"]["mode"] == "loglik"
    assert metrics["referee_mode"] == "loglik" and metrics["referee_parse_failures"] == 0


def test_loglik_needs_a_local_model():
    with pytest.raises(ConfigError, match="referee_model"):
        DebateConfig(output_dir="x", model="m", backend="openai", referee_mode="loglik")
    DebateConfig(output_dir="x", model="m", backend="openai", referee_mode="loglik", referee_model="embedded:x")


def test_real_tiny_model_always_gives_a_valid_verdict_and_label(tiny_llama):
    scorer = ModelOptionScorer.load(tiny_llama, template="tokenizer", batch_size=11)
    args = [(k, f"As a {k} I think everyone should decide for themselves.") for k in KEYS]
    [(verdict, logps)] = loglik_verdicts(scorer, AGE, [("Retirement age", args, "")], "You are a referee.")
    assert set(verdict.scores) == set(KEYS) and all(0 <= s <= 10 for s in verdict.scores.values())
    assert sorted(verdict.ranks.values()) == [1, 2, 3]
    assert all(len(v) == 11 and all(math.isfinite(x) and x < 0 for x in v) for v in logps.values())
    for k in KEYS:
        assert verdict.scores[k] == max(range(11), key=lambda s: (logps[k][s], -s))
    numbered = [(i + 1, k, t) for i, (k, t) in enumerate(args)]
    [(most, least, _)] = loglik_labels(scorer, AGE, [("Retirement age", numbered)], "You are a referee.")
    assert most != least and {most, least} <= {1, 2, 3}
