"""Structured answers from an LLM: strict parsers, a re-ask loop, and failures recorded instead of guessed.

    answers = ask_structured(gen, conversations, lambda t: parse_int_in_range(parse_tagged(t, "score"), 1, 10))
    answers[0].value   # an int, or None with answers[0].error saying why after max_attempts tries

A parser takes the raw text and returns a value or raises ``ParseError`` with a message written for the model: the
re-ask appends the bad answer and a correction quoting that message, so the model learns what was wrong. Re-asked
conversations go through the generator's cache like any other, so a rerun replays the same attempts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")

DEFAULT_REASK = ("Your answer could not be used: {error}. Answer again, following the required format exactly "
                 "and adding nothing else.")


class ParseError(ValueError):
    """The answer does not have the required form; the message is shown to the model when re-asking."""


@dataclass
class StructuredAnswer(Generic[T]):
    """``value`` parsed from the last answer (None if every attempt failed), every raw answer, and the last error."""

    value: T | None
    raw: list[str] = field(default_factory=list)
    attempts: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def ask_structured(generator, conversations: list[list[dict]], parse: Callable[[str], T], max_attempts: int = 3,
                   reask_message: str = DEFAULT_REASK, desc: str | None = None,
                   **sampling_overrides: Any) -> list[StructuredAnswer[T]]:
    """Ask every conversation, parse strictly, and re-ask the failures (batched) up to ``max_attempts`` in all.

    ``reask_message`` may contain ``{error}``. Exceptions other than ParseError from ``parse`` are bugs and propagate.
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts = {max_attempts}: must be >= 1")
    results = [StructuredAnswer(value=None) for _ in conversations]
    current = {i: list(conv) for i, conv in enumerate(conversations)}
    for attempt in range(1, max_attempts + 1):
        if not current:
            break
        idx = sorted(current)
        label = f"{desc or 'structured'} (attempt {attempt})"
        texts = generator.chat([current[i] for i in idx], n=1, desc=label, **sampling_overrides)
        for i, (text,) in zip(idx, texts):
            res = results[i]
            res.raw.append(text)
            res.attempts = attempt
            try:
                res.value, res.error = parse(text), None
                del current[i]
            except ParseError as exc:
                res.error = str(exc)
                current[i] = current[i] + [{"role": "assistant", "content": text},
                                           {"role": "user", "content": reask_message.format(error=exc)}]
    return results


# -- parsers ------------------------------------------------------------------------------------------------------


def one_answer(found: Sequence[T], what: str) -> T:
    """The one answer among ``found`` (every answer a parser located, in order): repeats of the same answer count
    once; none, or two different ones, is a ParseError. An answer that names two verdicts has not decided, and
    taking the first or the last would turn that into a verdict: it is re-asked like any other parse error."""
    distinct = list(dict.fromkeys(found))
    if not distinct:
        raise ParseError(f"no {what} found in the answer")
    if len(distinct) > 1:
        raise ParseError(f"the answer gives {len(distinct)} different {what}s ({', '.join(map(str, distinct))}); "
                         "give exactly one")
    return distinct[0]


def parse_tagged(text: str, tag: str) -> str:
    """The stripped content of exactly one ``<tag>...</tag>`` (non-empty)."""
    found = re.findall(rf"<{re.escape(tag)}>(.*?)</{re.escape(tag)}>", text, flags=re.DOTALL | re.IGNORECASE)
    if not found:
        raise ParseError(f"no <{tag}>...</{tag}> found; put the answer between <{tag}> and </{tag}>")
    if len(found) > 1:
        raise ParseError(f"found {len(found)} <{tag}> blocks; give exactly one")
    content = found[0].strip()
    if not content:
        raise ParseError(f"<{tag}></{tag}> is empty")
    return content


def _type_ok(value: Any, tp: type | tuple) -> bool:
    types = tp if isinstance(tp, tuple) else (tp,)
    if isinstance(value, bool) and bool not in types:
        return False  # JSON true is not a number here
    if float in types and isinstance(value, int):
        return True
    return isinstance(value, types)


def parse_json_object(text: str, required: dict[str, type | tuple] | None = None) -> dict:
    """The first JSON object in ``text`` (code fences and prose around it are fine), with ``required`` keys typed."""
    decoder = json.JSONDecoder()
    obj = None
    for match in re.finditer(r"\{", text):
        try:
            candidate, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(candidate, dict):
            obj = candidate
            break
    if obj is None:
        raise ParseError("no JSON object found; answer with one JSON object")
    for key, tp in (required or {}).items():
        if key not in obj:
            raise ParseError(f"the JSON object has no key {key!r}; required keys: {list(required or {})}")
        if not _type_ok(obj[key], tp):
            name = tp.__name__ if isinstance(tp, type) else " or ".join(t.__name__ for t in tp)
            raise ParseError(f"{key!r} must be {name}, got {obj[key]!r}")
    return obj


def parse_int_in_range(text: str, lo: int, hi: int) -> int:
    """The one integer in ``text``, within [lo, hi]. Several different integers ("7/10") are ambiguous: an error."""
    found = {int(m) for m in re.findall(r"(?<![\w.])[-+]?\d+(?![\w.]*\d)", text)}
    if not found:
        raise ParseError(f"no integer found; answer with one integer from {lo} to {hi}")
    if len(found) > 1:
        raise ParseError(f"several integers found ({sorted(found)}); answer with exactly one from {lo} to {hi}")
    value = found.pop()
    if not lo <= value <= hi:
        raise ParseError(f"{value} is outside the allowed range {lo} to {hi}")
    return value


def parse_choice(text: str, choices: Sequence[str]) -> str:
    """The one choice named in ``text``: the whole answer (any case, ignoring quotes/brackets/final period), else
    the only choice appearing as a whole word (exact case first, then any case)."""
    bare = text.strip().strip("\"'`*()[]").rstrip(".").strip().lower()
    for choice in choices:
        if bare == choice.lower():
            return choice
    for flags in (0, re.IGNORECASE):
        hits = [c for c in choices if re.search(rf"(?<!\w){re.escape(c)}(?!\w)", text, flags)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise ParseError(f"several choices named ({hits}); answer with exactly one of {list(choices)}")
    raise ParseError(f"none of {list(choices)} found; answer with exactly one of them")
