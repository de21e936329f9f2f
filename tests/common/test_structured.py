"""Strict parsers and the re-ask loop: malformed answers are re-asked with the error, lasting failures recorded."""

from __future__ import annotations

import pytest

from common.generation import GenerationConfig, Generator
from common.structured import (
    ParseError,
    ask_structured,
    parse_choice,
    parse_int_in_range,
    parse_json_object,
    parse_tagged,
)


class ScriptedGenerator(Generator):
    """Answers the k-th ask of a conversation (k = number of assistant turns so far) from a script."""

    def __init__(self, script: dict[str, list[str]]):
        super().__init__(GenerationConfig(backend="hf", model="scripted", progress=False))
        self.script = script
        self.seen: list[list[dict]] = []

    def _generate(self, requests, params, emit):
        for req in requests:
            self.seen.append(req.messages)
            turn = sum(m["role"] == "assistant" for m in req.messages)
            emit(req, {"text": self.script[req.messages[0]["content"]][turn], "finish_reason": "stop"})


def score(text: str) -> int:
    return parse_int_in_range(parse_tagged(text, "score"), 1, 10)


def test_reask_fixes_malformed_answers_and_records_lasting_failures():
    gen = ScriptedGenerator({
        "good": ["<score>7</score>"],
        "late": ["I would say 7", "<score>11</score>", "<score>8</score>"],
        "never": ["seven", "<score>seven</score>", "<score></score>"],
    })
    convs = [[{"role": "user", "content": name}] for name in ("good", "late", "never")]
    good, late, never = ask_structured(gen, convs, score, max_attempts=3, reask_message="Fix it: {error}")

    assert (good.value, good.attempts, good.error, good.raw) == (7, 1, None, ["<score>7</score>"])
    assert (late.value, late.attempts, late.error) == (8, 3, None) and len(late.raw) == 3
    assert never.value is None and never.attempts == 3 and "is empty" in never.error and not never.ok

    # The third ask of "late" carried both bad answers, each followed by the parser's complaint.
    third = next(m for m in gen.seen if m[0]["content"] == "late" and len(m) == 5)
    assert [m["role"] for m in third] == ["user", "assistant", "user", "assistant", "user"]
    assert third[1]["content"] == "I would say 7" and third[2]["content"] == "Fix it: no <score>...</score> found; " \
        "put the answer between <score> and </score>"
    assert "11 is outside the allowed range 1 to 10" in third[4]["content"]
    assert len(gen.seen) == 1 + 3 + 3  # answered conversations are not asked again


def test_max_attempts_one_never_reasks():
    gen = ScriptedGenerator({"q": ["nope", "<score>3</score>"]})
    (answer,) = ask_structured(gen, [[{"role": "user", "content": "q"}]], score, max_attempts=1)
    assert answer.value is None and answer.attempts == 1 and len(gen.seen) == 1


def test_parse_tagged_wants_exactly_one_non_empty_block():
    assert parse_tagged("reasoning... <label> yes </label>", "label") == "yes"
    for bad, why in [("yes", "no <label>"), ("<label>a</label><label>b</label>", "found 2"),
                     ("<label> </label>", "empty")]:
        with pytest.raises(ParseError, match=why):
            parse_tagged(bad, "label")


def test_parse_json_object_finds_the_first_object_and_checks_types():
    text = 'Sure!\n```json\n{"rank": [2, 1], "score": 4, "why": "short"}\n```\n{"other": 1}'
    assert parse_json_object(text, {"rank": list, "score": float, "why": str})["rank"] == [2, 1]
    with pytest.raises(ParseError, match="no key 'score'"):
        parse_json_object('{"rank": [1]}', {"score": int})
    with pytest.raises(ParseError, match="'score' must be int, got True"):
        parse_json_object('{"score": true}', {"score": int})
    with pytest.raises(ParseError, match="no JSON object"):
        parse_json_object("[1, 2] {broken", {})


@pytest.mark.parametrize("text, expected", [("7", 7), ("Score: 7.", 7), ("  -2 ", -2), ("10", 10)])
def test_parse_int_in_range_reads_the_one_integer(text, expected):
    assert parse_int_in_range(text, -5, 10) == expected


@pytest.mark.parametrize("text, why", [("7/10", "several integers"), ("seven", "no integer"),
                                       ("11", "outside"), ("7.5", "no integer")])
def test_parse_int_in_range_refuses_to_guess(text, why):
    with pytest.raises(ParseError, match=why):
        parse_int_in_range(text, 1, 10)


def test_parse_choice_takes_the_whole_answer_or_the_only_named_choice():
    assert parse_choice("(A)", ["A", "B"]) == "A"
    assert parse_choice("b.", ["A", "B"]) == "B"
    assert parse_choice("This is a hard one; I pick B", ["A", "B"]) == "B"  # the article "a" is not choice A
    assert parse_choice("Response 2 is better", ["Response 1", "Response 2"]) == "Response 2"
    with pytest.raises(ParseError, match="several choices"):
        parse_choice("A or B", ["A", "B"])
    with pytest.raises(ParseError, match="none of"):
        parse_choice("neither", ["A", "B"])
