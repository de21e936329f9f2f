"""Guided (loglik) judging: the answer set, the argmax mapped back through each judge's shown order, and real
ballots from a model that could never write a valid tag on its own."""

from __future__ import annotations

import pytest

from common.artifacts import read_jsonl, write_jsonl
from common.config import ConfigError
from common.eval.option_scoring import option_logprobs
from common.models import load_causal_lm, load_tokenizer
from rlchf.guided import LoglikScorer, guided_answers, ranking_answers
from rlchf.rank import RankConfig, ballot_record, ballot_request, parse_ranking, run_rank

ROW = {"prompt_id": "p1", "prompt": "How do I boil an egg?", "chosen_id": "chosen", "rejected_id": "rejected",
       "candidates": [{"id": "chosen", "text": "Boil it for 8 minutes."}, {"id": "rejected", "text": "No."},
                      {"id": "s0", "text": "Use a pan of water."}]}


@pytest.mark.parametrize("labels, ties, n", [("ABC", False, 6), ("ABCD", False, 24), ("ABC", True, 13),
                                             ("ABCD", True, 75)])
def test_answer_set_is_every_ranking_the_strict_parser_accepts(labels, ties, n):
    answers = ranking_answers(labels, ties)
    assert len(answers) == n == len({text for text, _ in answers})  # K! strict; Fubini numbers with ties
    assert all(parse_ranking(text, labels, allow_ties=ties) == tiers for text, tiers in answers)


def test_argmax_ranking_maps_back_through_each_judges_shown_order():
    def scripted(convs, options):  # the judge always prefers "C > A > B" by 1.5 nats over the runner-up
        return [[(-1.0 if o == "<ranking>C > A > B</ranking>" else -2.5 - i, 13) for i, o in enumerate(options)]
                for _ in convs]

    cfg = RankConfig(candidates="c", judges="j", judge_mode="loglik", allow_ties=False)
    judges = [{"judge_id": f"j{i}", "persona": f"Persona {i}."} for i in range(6)]
    requests = [ballot_request(ROW, j, cfg) for j in judges]
    answers = guided_answers([c for c, _ in requests], ranking_answers("ABC", False), scripted)
    shown_orders = {tuple(shown) for _, shown in requests}
    assert len(shown_orders) > 1  # the same label answer means different candidates for different judges
    for judge, (conv, shown), ans in zip(judges, requests, answers):
        rec = ballot_record(ROW, judge, "ranking", shown, ans)
        assert rec["ranking"] == [[shown[2]], [shown[0]], [shown[1]]] and not rec["abstained"]
        assert rec["judge_mode"] == "loglik" and rec["logprob_gap"] == pytest.approx(1.5)
        assert rec["length_normalised"] is False and judge["persona"] in conv[0]["content"]


def test_unequal_option_lengths_are_compared_per_token():
    answers = [("long", "L"), ("short", "S")]
    (ans,) = guided_answers([[]], answers, lambda convs, opts: [[(-6.0, 6), (-4.0, 2)]])
    assert ans.value == "L" and ans.length_normalised and ans.logprob_gap == pytest.approx(1.0)


def test_loglik_needs_a_local_judge():
    with pytest.raises(ConfigError, match="backend must be 'hf'"):
        RankConfig(candidates="c", judges="j", judge_mode="loglik", judge={"backend": "openai"})


def test_shared_prompt_scoring_equals_one_pass_per_option(tiny_llama):
    tok, model = load_tokenizer(tiny_llama), load_causal_lm(tiny_llama)
    conv = [{"role": "system", "content": "You judge as a nurse."}, {"role": "user", "content": "Rank A, B, C."}]
    options = [text for text, _ in ranking_answers("ABC", False)] + ["<Ans>A</Ans>"]
    plain = option_logprobs(model, tok, [conv], [options], "tokenizer", batch_size=3, desc=None)
    shared = option_logprobs(model, tok, [conv], [options], "tokenizer", batch_size=3, desc=None, share_prompt=True)
    assert [n for _, n in shared[0]] == [n for _, n in plain[0]]
    assert [s for s, _ in shared[0]] == pytest.approx([s for s, _ in plain[0]], abs=1e-3)


def test_tiny_model_ballots_are_always_valid(tmp_path, tiny_llama):
    # tiny-llama is random: with judge_mode generate every one of its ballots abstains (test_pipeline.py)
    write_jsonl(tmp_path / "candidates.jsonl", [ROW, {**ROW, "prompt_id": "p2", "prompt": "Name a black cat."}])
    write_jsonl(tmp_path / "judges.jsonl", [{"judge_id": f"j{i}", "persona": f"Persona {i}."} for i in range(3)])
    metrics = run_rank(RankConfig(candidates=str(tmp_path / "candidates.jsonl"), judges=str(tmp_path / "judges.jsonl"),
                                  judge_mode="loglik", allow_ties=False, output_dir=str(tmp_path / "rank"),
                                  judge={"backend": "hf", "model": tiny_llama, "progress": False}))
    ballots = read_jsonl(tmp_path / "rank" / "rankings.jsonl")
    assert metrics["valid_rate"] == 1.0 and metrics["judge_mode"] == "loglik" and len(ballots) == 6
    assert all(sorted(c for tier in b["ranking"] for c in tier) == ["chosen", "rejected", "s0"] for b in ballots)
    assert all(b["logprob_gap"] >= 0 for b in ballots) and metrics["length_normalised"] is False


def test_a_killed_scorer_resumes_from_its_cache(tmp_path, tiny_llama):
    spec = {"backend": "hf", "model": tiny_llama, "progress": False}
    convs = [[{"role": "user", "content": f"Rank these, case {i}."}] for i in range(3)]
    options = [text for text, _ in ranking_answers("AB", False)]
    first = LoglikScorer(spec, "rank.judge", tmp_path / "cache.jsonl", chunk=2)(convs, options)
    with (tmp_path / "cache.jsonl").open("a") as fh:
        fh.write('{"key": "torn')  # a writer killed mid-line
    again = LoglikScorer(spec, "rank.judge", tmp_path / "cache.jsonl")
    assert again(convs, options) == first and again.model is None  # every score came from the cache
    assert len(read_jsonl(tmp_path / "cache.jsonl")) == 3


def test_content_free_calibration_removes_the_judges_prior_over_answer_strings():
    texts = [text for text, _ in ranking_answers("ABC", False)]
    prior = [(-1.0 if t == "<ranking>A > B > C</ranking>" else -4.0, 13) for t in texts]  # position bias
    content = [(s + (2.0 if t == "<ranking>C > A > B</ranking>" else 0.0), n) for (s, n), t in zip(prior, texts)]
    (ans,) = guided_answers([[]], ranking_answers("ABC", False), lambda convs, opts: [content], baselines=[prior])
    assert ans.uncalibrated == [["A"], ["B"], ["C"]]  # raw argmax: the prior (-1 beats -4 + 2)
    assert ans.value == [["C"], ["A"], ["B"]] and ans.logprob_gap == pytest.approx(2.0)
