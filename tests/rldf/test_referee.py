"""Referee parsing on messy real-style answers: what is accepted, and what is refused (never guessed)."""

import pytest

from common.structured import ParseError
from rldf.bias_types import BIAS_TYPES, get_bias_type
from rldf.referee import match_role, parse_label, parse_verdict, referee_example
from rldf.topics import parse_topic_lines, unique_topics

AGE = get_bias_type("age")

FENCED_WITH_PROSE = """Sure! Here is my evaluation of the debate:

```json
{
  "60-year-old": {"score": 7, "rank": 1, "reason": "Calls young people lazy."},
  "40-year-old": {"score": 2, "rank": 3, "reason": "Balanced."},
  "20-year-old": {"score": 5, "rank": 2, "reason": "Some generalisation."}
}
```
Let me know if you need anything else."""

DESCRIPTIONS_AND_STRINGS = ('{"The 60-year-old individual": {"score": "7/10", "rank": "1"}, '
                            '"a 40-year-old individual": {"score": 2.0, "rank": 3}, '
                            '"20 year old": {"score": "5", "rank": 2}}')

WRAPPED_LIST = ('Evaluation: {"evaluation": [{"debater": "60-year-old", "score": 7, "rank": 1}, '
                '{"debater": "40-year-old", "score": 2, "rank": 3}, {"debater": "20-year-old", "score": 5, "rank": 2}]}')


@pytest.mark.parametrize("text", [FENCED_WITH_PROSE, DESCRIPTIONS_AND_STRINGS, WRAPPED_LIST])
def test_messy_but_complete_answers_parse_to_the_same_verdict(text):
    v = parse_verdict(text, AGE)
    assert v.scores == {"60-year-old": 7, "40-year-old": 2, "20-year-old": 5}
    assert v.ranks == {"60-year-old": 1, "40-year-old": 3, "20-year-old": 2}
    assert v.most_biased() == "60-year-old" and v.least_biased() == "40-year-old"


@pytest.mark.parametrize("text, why", [
    ("The 60-year-old was the most biased, scoring 7.", "no JSON"),
    ('{"60-year-old": {"score": 7, "rank": 1}, "40-year-old": {"score": 2, "rank": 2}}', "no entry"),
    (('{"60-year-old": {"score": 11, "rank": 1}, "40-year-old": {"score": 2, "rank": 3}, '
     '"20-year-old": {"score": 5, "rank": 2}}'), "outside"),
    (('{"60-year-old": {"score": 7, "rank": 1}, "40-year-old": {"score": 2, "rank": 1}, '
     '"20-year-old": {"score": 5, "rank": 2}}'), "exactly once"),
    (('{"60-year-old": {"score": 7, "rank": 3}, "40-year-old": {"score": 2, "rank": 1}, '
     '"20-year-old": {"score": 5, "rank": 2}}'), "higher score"),
    (('{"60-year-old": {"score": 7, "rank": 1}, "60 year old": {"score": 2, "rank": 3}, '
     '"20-year-old": {"score": 5, "rank": 2}}'), "twice"),
    (('{"60-year-old": {"score": 7, "rank": 1}, "teenager": {"score": 2, "rank": 3}, '
     '"20-year-old": {"score": 5, "rank": 2}}'), "unknown debater"),
    (('{"60-year-old": {"score": "high", "rank": 1}, "40-year-old": {"score": 2, "rank": 3}, '
     '"20-year-old": {"score": 5, "rank": 2}}'), "integer"),
    ('{"60-year-old": 7, "40-year-old": 2, "20-year-old": 5}', "'score' and 'rank'"),
])
def test_incomplete_or_inconsistent_answers_are_refused(text, why):
    with pytest.raises(ParseError, match=why):
        parse_verdict(text, AGE)


def test_ties_in_score_are_broken_by_rank():
    v = parse_verdict('{"60-year-old": {"score": 6, "rank": 2}, "40-year-old": {"score": 6, "rank": 1}, '
                      '"20-year-old": {"score": 0, "rank": 3}}', AGE)
    assert v.most_biased() == "40-year-old"
    v = parse_verdict('{"60-year-old": {"score": 1, "rank": 3}, "40-year-old": {"score": 9, "rank": 1}, '
                      '"20-year-old": {"score": 1, "rank": 2}}', AGE)
    assert v.least_biased() == "60-year-old"


def test_role_matching_prefers_exact_keys_over_substrings():
    gender = get_bias_type("gender")
    assert match_role("Woman", gender) == "woman"
    assert match_role("the man", gender) == "man"


@pytest.mark.parametrize("name", sorted(BIAS_TYPES))
def test_every_bias_type_example_answer_is_a_valid_verdict(name):
    bias = BIAS_TYPES[name]
    assert set(parse_verdict(referee_example(bias)[1]["content"], bias).scores) == set(bias.keys)


def test_label_parse_accepts_strings_and_refuses_same_or_unknown_numbers():
    assert parse_label('Answer: {"Most_Biased": "(4)", "least_biased": 2}', list(range(1, 7))) == (4, 2)
    with pytest.raises(ParseError, match="different"):
        parse_label('{"most_biased": 3, "least_biased": 3}', list(range(1, 7)))
    with pytest.raises(ParseError, match="outside"):
        parse_label('{"most_biased": 9, "least_biased": 3}', list(range(1, 7)))


def test_topic_lines_lose_numbering_and_duplicates():
    answer = ('Here are some topics:\n1. Should the retirement age be raised?\n2) **Mandatory retirement for '
              'pilots**\n- should the retirement age be RAISED\n* Topic 4: Age limits for political office\nOk')
    assert parse_topic_lines(answer)[0] == "Should the retirement age be raised?"
    assert unique_topics([answer], 10) == ["Should the retirement age be raised?", "Mandatory retirement for pilots",
                                           "Age limits for political office"]
