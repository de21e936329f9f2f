"""Judge win rates: both-order pairwise outcomes and rubric scores from a scripted judge, then one tiny real run."""

import json
import re

import pytest

from common.config import UserError
from common.eval.judge import (
    JudgeEvalConfig,
    evaluate_judge,
    judge_pairwise,
    judge_scores,
    pairwise_outcomes,
    parse_score,
    parse_verdict,
    score_outcomes,
)
from common.generation import GenerationConfig, Generator


class ScriptedJudge(Generator):
    """Prefers the response containing GOOD; on prompt p3 always says A (position bias); p4 never parses."""

    def _generate(self, requests, params, emit):
        for req in requests:
            first_user = next(m["content"] for m in req.messages if m["role"] == "user")  # re-asks keep it
            emit(req, {"text": self.answer(first_user), "finish_reason": "stop"})

    @staticmethod
    def answer(user: str) -> str:
        if "p4" in user:
            return "I cannot decide."
        pair = re.search(r"\[Response A\]\n(.*?)\n\n\[Response B\]\n(.*?)\n\n", user, re.DOTALL)
        if pair is None:  # rubric
            return "Some points.\n<score>4</score>" if "GOOD" in user else "<score>1</score>"
        if "p3" in user:
            return "<verdict>A</verdict>"
        a, b = ("GOOD" in pair.group(1)), ("GOOD" in pair.group(2))
        return f"Reasons.\n<verdict>{'A' if a and not b else 'B' if b and not a else 'tie'}</verdict>"


PROMPTS = [f"p{i}" for i in range(6)]
SYS_1 = ["GOOD 0", "bad 1", "GOOD 2", "x3", "x4", "meh 5"]
SYS_2 = ["bad 0", "GOOD 1", "bad 2", "y3", "y4", "meh 5"]


def scripted(tmp_path):
    return ScriptedJudge(GenerationConfig(backend="hf", model="scripted-judge", progress=False,
                                          cache_path=str(tmp_path / "judge_cache.jsonl")))


def test_repeated_tags_must_agree_two_different_verdicts_are_unparseable():
    from common.structured import ParseError

    assert parse_verdict("<verdict>B</verdict>, so: <verdict>b</verdict>") == "B"
    assert parse_verdict("<verdict>Tie</verdict> <verdict>tie</verdict>") == "tie"
    assert parse_score("<score>3</score> in total <score>3</score>") == 3
    with pytest.raises(ParseError, match=r"2 different .*\(A, tie\)"):
        parse_verdict("<verdict>A</verdict> no wait <verdict>Tie</verdict>")
    with pytest.raises(ParseError, match=r"2 different .*\(2, 5\)"):
        parse_score("<score>2</score>\n<score>5</score>")
    with pytest.raises(ParseError, match="no <score>"):
        parse_score("<score>7</score>")


class WaveringJudge(Generator):
    """Names two different verdicts on its first ask and one on the re-ask; on p1 it wavers every time."""

    def _generate(self, requests, params, emit):
        for req in requests:
            reasked = any(m["role"] == "assistant" for m in req.messages)
            wavers = "p1" in req.messages[1]["content"] or not reasked
            emit(req, {"text": "<verdict>A</verdict> or rather <verdict>B</verdict>" if wavers
                       else "<verdict>A</verdict>", "finish_reason": "stop"})


def test_two_different_verdicts_are_re_asked_and_then_counted_as_failed(tmp_path):
    judge = WaveringJudge(GenerationConfig(backend="hf", model="wavering", progress=False, cache_path=None))
    records, m = judge_pairwise(judge, ["p0", "p1"], ["x", "y"], ["u", "v"], max_attempts=2)
    assert records[0]["verdict_ab"] == "A" and len(records[0]["raw_ab"]) == 2  # re-asked once, then decided
    assert records[1]["verdict_ab"] is None and len(records[1]["raw_ab"]) == 2  # never decided: no verdict
    assert (m["n_judged"], m["n_failed"]) == (1, 1)


def test_both_orders_cancel_position_bias(tmp_path):
    records, m = judge_pairwise(scripted(tmp_path), PROMPTS, SYS_1, SYS_2, max_attempts=2)
    # p0, p2 win; p1 loss; p3 (A both times) and p5 (tie both times) ties; p4 unparseable
    assert (m["wins"], m["ties"], m["losses"], m["n_failed"], m["n_judged"]) == (2, 2, 1, 1, 5)
    assert m["win_rate"] == pytest.approx((2 + 0.5 * 2) / 5)
    assert m["position_consistency"] == pytest.approx(4 / 5)  # only p3 flips with the order
    assert m["first_position_rate"] == pytest.approx(5 / 8)  # A in p0, p1 (ba), p2, p3 twice of 8 decided
    assert records[3] == {**records[3], "verdict_ab": "A", "verdict_ba": "A"}


def test_rubric_scores_and_score_win_rate(tmp_path):
    gen = scripted(tmp_path)
    s1 = [s["score"] for s in judge_scores(gen, PROMPTS, SYS_1, max_attempts=2)]
    s2 = [s["score"] for s in judge_scores(gen, PROMPTS, SYS_2, max_attempts=2)]
    assert s1 == [4, 1, 4, 1, None, 1] and s2 == [1, 4, 1, 1, None, 1]
    m = score_outcomes(s1, s2)
    assert m["score_mean_1"] == pytest.approx(11 / 5) and m["score_mean_2"] == pytest.approx(8 / 5)
    assert (m["score_wins"], m["score_ties"], m["score_losses"]) == (2, 2, 1)
    assert m["score_win_rate"] == pytest.approx(3 / 5) and m["score_unparsed_1"] == 1


def test_rerun_is_served_from_the_cache(tmp_path):
    judge_pairwise(scripted(tmp_path), PROMPTS, SYS_1, SYS_2)
    again = scripted(tmp_path)
    judge_pairwise(again, PROMPTS, SYS_1, SYS_2)
    assert again.usage.generated == 0 and again.usage.cached > 0


def test_pairwise_outcomes_edge_cases():
    assert pairwise_outcomes([], [])["win_rate"] is None
    m = pairwise_outcomes(["B"], ["A"])  # system 1 shown as A loses, shown as B loses
    assert (m["losses"], m["position_consistency"]) == (1, 1.0)


def write_systems(tmp_path, prompts, sys_1, sys_2):
    for name, responses in (("a", sys_1), ("b", sys_2)):
        (tmp_path / f"{name}.jsonl").write_text("".join(
            json.dumps({"prompt": p, "response": r}) + "\n" for p, r in zip(prompts, responses)))


def test_cli_joins_files_on_prompt_and_writes_both_modes(tmp_path, monkeypatch):
    import common.generation

    monkeypatch.setattr(common.generation, "build_generator", lambda cfg: ScriptedJudge(cfg))
    write_systems(tmp_path, PROMPTS, SYS_1, SYS_2)
    (tmp_path / "b.jsonl").write_text("".join(reversed((tmp_path / "b.jsonl").read_text().splitlines(True))))
    out = evaluate_judge(JudgeEvalConfig(a=str(tmp_path / "a.jsonl"), b=str(tmp_path / "b.jsonl"), model="scripted",
                                         output_dir=str(tmp_path / "run")))
    assert out["win_rate"] == pytest.approx(0.6) and out["score_win_rate"] == pytest.approx(0.6)
    assert out["key_metric"] == "win_rate" and (tmp_path / "run" / "judge_cache.jsonl").exists()
    (tmp_path / "b.jsonl").write_text(json.dumps({"prompt": "other", "response": "x"}) + "\n")
    with pytest.raises(UserError, match="same prompts"):
        evaluate_judge(JudgeEvalConfig(a=str(tmp_path / "a.jsonl"), b=str(tmp_path / "b.jsonl"), model="scripted",
                                       output_dir=str(tmp_path / "run2")))


def test_cli_runs_a_real_tiny_judge(tmp_path, smollm2):
    write_systems(tmp_path, ["Capital of France?"], ["Paris."], ["London."])
    cfg = JudgeEvalConfig(a=str(tmp_path / "a.jsonl"), b=str(tmp_path / "b.jsonl"), backend="hf", model=smollm2,
                          modes=["pairwise"], max_new_tokens=8, max_attempts=1, output_dir=str(tmp_path / "run"))
    out = evaluate_judge(cfg)
    assert out["n_prompts"] == 1 and out["n_judged"] + out["n_failed"] == 1
    rows = [json.loads(line) for line in (tmp_path / "run" / "judgements.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and len(rows[0]["raw_ab"]) == 1 and isinstance(rows[0]["raw_ab"][0], str)
