"""Judge answers -> ballots: strict ranking parsing, label mapping back to candidates, abstentions, position stats."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from common.structured import ParseError
from rlchf.rank import (
    RankConfig,
    ballot_record,
    ballot_request,
    judge_rng,
    parse_pairwise,
    parse_ranking,
    position_stats,
)

ROW = {"prompt_id": "p1", "prompt": "How do I boil an egg?", "chosen_id": "chosen", "rejected_id": "rejected",
       "candidates": [{"id": "chosen", "text": "Boil it for 8 minutes."}, {"id": "rejected", "text": "No."},
                      {"id": "s0", "text": "Use a pan of water."}]}
JUDGE = {"judge_id": "j00", "persona": "A chef from Lyon."}


def answer(value, error=None, attempts=1, raw="..."):
    return SimpleNamespace(value=value, error=error, attempts=attempts, raw=raw)


def test_parse_ranking_reads_the_last_tag_with_ties():
    text = "I think <ranking>A > B > C</ranking> no wait: <ranking> (B) = a > C </ranking>"
    assert parse_ranking(text, "ABC") == [["B", "A"], ["C"]]


@pytest.mark.parametrize("text, why", [
    ("B > A > C", "no <ranking>"),
    ("<ranking>A > B</ranking>", "leaves out"),
    ("<ranking>A > B > B > C</ranking>", "twice"),
    ("<ranking>A > D > B > C</ranking>", "not one of"),
    ("<ranking>A > > B > C</ranking>", "not one of"),
    ("<ranking>1 > 2 > 3</ranking>", "not one of"),
])
def test_parse_ranking_rejects_malformed_answers(text, why):
    with pytest.raises(ParseError, match=why):
        parse_ranking(text, "ABC")


def test_parse_ranking_refuses_ties_when_they_are_not_allowed():
    with pytest.raises(ParseError, match="ties"):
        parse_ranking("<ranking>A = B > C</ranking>", "ABC", allow_ties=False)


def test_parse_pairwise_reads_upstream_ans_tags():
    assert parse_pairwise("Reasoning... <Ans>b</Ans>") == "B"
    assert parse_pairwise("<ans> C </ans>") == "C"
    with pytest.raises(ParseError):
        parse_pairwise("<Ans>D</Ans>")


def test_each_judge_sees_its_own_seeded_order_and_labels_map_back():
    cfg = RankConfig(candidates="c", judges="j", seed=0)
    orders = {tuple(ballot_request(ROW, {**JUDGE, "judge_id": f"j{i}"}, cfg)[1]) for i in range(12)}
    assert len(orders) > 1  # not one order shared by every judge
    conv, shown = ballot_request(ROW, JUDGE, cfg)
    assert shown == ballot_request(ROW, JUDGE, cfg)[1]
    assert "A chef from Lyon." in conv[0]["content"] and "Response C:" in conv[1]["content"]
    rec = ballot_record(ROW, JUDGE, "ranking", shown, answer([["C"], ["A", "B"]]))
    assert rec["ranking"] == [[shown[2]], [shown[0], shown[1]]] and rec["abstained"] is False
    assert judge_rng(0, "p1", "j00").random() == judge_rng(0, "p1", "j00").random()


def test_an_unparseable_answer_becomes_an_abstention_not_a_guess():
    rec = ballot_record(ROW, JUDGE, "ranking", ["s0", "chosen", "rejected"],
                        answer(None, error="no <ranking> tag", attempts=3, raw="I like eggs"))
    assert rec["ranking"] is None and rec["abstained"] is True and rec["attempts"] == 3


def test_pairwise_answer_c_is_a_tie_and_gold_position_is_recorded():
    rec = ballot_record(ROW, JUDGE, "pairwise", ["rejected", "chosen"], answer("C"))
    assert rec["ranking"] == [["rejected", "chosen"]] and rec["gold_position"] == "B"
    rec = ballot_record(ROW, JUDGE, "pairwise", ["rejected", "chosen"], answer("A"))
    assert rec["ranking"] == [["rejected"], ["chosen"]]


def test_position_stats_count_first_place_by_display_slot():
    ballots = [
        {"mode": "ranking", "abstained": False, "shown_order": ["x", "y", "z"], "ranking": [["x"], ["y"], ["z"]]},
        {"mode": "ranking", "abstained": False, "shown_order": ["y", "x", "z"], "ranking": [["y", "x"], ["z"]]},
        {"mode": "ranking", "abstained": True, "shown_order": ["z", "y", "x"], "ranking": None},
    ]
    stats = position_stats(ballots)
    assert stats == {"position_A_win_rate": 0.75, "position_B_win_rate": 0.25, "position_C_win_rate": 0.0}
